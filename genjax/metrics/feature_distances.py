"""Distances between sets of features of real and of generated images: Frechet distance (FID's formula), kernel
inception distance (KID) and improved precision and recall.

Every function takes feature arrays `[N, D]` (one row per image, from whichever feature network the caller ran),
computes in float64 with NumPy/SciPy and returns Python floats. Extracting the features is not this module's job.
"""

import numpy as np

# Rows per block of pairwise distances in precision_recall: a [1000, 10000] float64 block is 80 MB, so N = 10,000
# features of D = 2048 never need the 800 MB full distance matrix.
DEFAULT_ROW_BLOCK_SIZE = 1000


def _as_features(features, name: str, min_samples: int) -> np.ndarray:
  """`features` as a float64 `[N, D]` array, with at least `min_samples` rows."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise ValueError(f"{name} must be a [N, D] array of features; got shape {features.shape}.")
  if features.shape[0] < min_samples:
    raise ValueError(f"{name} has {features.shape[0]} samples; at least {min_samples} are needed.")
  return features


def _check_same_dimension(real: np.ndarray, fake: np.ndarray) -> None:
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"Feature dimensions differ: real features have D={real.shape[1]}, fake D={fake.shape[1]}.")


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean `[D]` and unbiased covariance `[D, D]` (as np.cov(rowvar=False)) of `features [N, D]`, N >= 2."""
  features = _as_features(features, "features", min_samples=2)
  return np.mean(features, axis=0), np.cov(features, rowvar=False)


def _psd_eigenvalues(matrix: np.ndarray) -> np.ndarray:
  """Eigenvalues of a symmetric positive semi-definite matrix, with round-off below zero clipped to zero."""
  symmetric = 0.5 * (matrix + matrix.T)  # eigh reads one triangle; averaging keeps both halves' information.
  return np.maximum(np.linalg.eigvalsh(symmetric), 0.0)


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
  """Frechet distance between N(mean1, cov1) and N(mean2, cov2): means `[D]`, covariances `[D, D]`.

  ||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2}), the formula of FID (Heusel et al. 2017) on feature statistics.
  """
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  dim = mean1.shape[0]
  if mean1.shape != (dim,) or mean2.shape != (dim,) or cov1.shape != (dim, dim) or cov2.shape != (dim, dim):
    raise ValueError(
        f"Expected means [D] and covariances [D, D] of one D; got {mean1.shape}, {cov1.shape}, {mean2.shape},"
        f" {cov2.shape}."
    )
  # scipy.linalg.sqrtm of the non-symmetric product C1 C2 is ill-conditioned when it is near singular (always so
  # when N < D): it returns complex parts or NaNs, which pytorch-fid papers over by adding eps * I to both
  # covariances. C1 C2 is similar to the symmetric PSD matrix sqrt(C1) C2 sqrt(C1), so their square roots have the
  # same trace, and that trace is the sum of the square roots of eigenvalues that eigh computes stably.
  eigenvalues1, eigenvectors1 = np.linalg.eigh(0.5 * (cov1 + cov1.T))
  sqrt_cov1 = (eigenvectors1 * np.sqrt(np.maximum(eigenvalues1, 0.0))) @ eigenvectors1.T
  trace_sqrt_product = np.sum(np.sqrt(_psd_eigenvalues(sqrt_cov1 @ cov2 @ sqrt_cov1)))
  mean_difference = mean1 - mean2
  distance = mean_difference @ mean_difference + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product
  # The trace term is a squared Bures distance, never negative; round-off can leave -1e-12 for equal covariances.
  return float(max(distance, 0.0))


def frechet_distance_from_features(real, fake) -> float:
  """Frechet distance between Gaussians fitted to `real [N, D]` and `fake [M, D]` features (FID on Inception)."""
  real = _as_features(real, "real", min_samples=2)
  fake = _as_features(fake, "fake", min_samples=2)
  _check_same_dimension(real, fake)
  return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x, y) = (x.y / D + 1)^3 for all pairs: `[M, D], [N, D] -> [M, N]`, KID's kernel."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """The unbiased estimate (a U-statistic) of MMD^2 between the distributions of `x [M, D]` and `y [N, D]`."""
  m, n = x.shape[0], y.shape[0]
  kernel_xx, kernel_yy = _polynomial_kernel(x, x), _polynomial_kernel(y, y)
  # Leaving out the diagonal k(x_i, x_i) is what makes the estimator unbiased.
  within_x = (np.sum(kernel_xx) - np.trace(kernel_xx)) / (m * (m - 1))
  within_y = (np.sum(kernel_yy) - np.trace(kernel_yy)) / (n * (n - 1))
  between = np.sum(_polynomial_kernel(x, y)) / (m * n)
  return float(within_x + within_y - 2.0 * between)


def kernel_inception_distance(
    real, fake, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
  """KID (Binkowski et al. 2018, "Demystifying MMD GANs") between `real [N, D]` and `fake [M, D]` features.

  The unbiased MMD^2 with the cubic kernel (x.y / D + 1)^3, on `num_subsets` pairs of random subsets of
  min(subset_size, N, M) real and fake features (each drawn without replacement). Returns the mean and the standard
  deviation (ddof=0, as torch-fidelity) over subsets. Unlike FID it is unbiased, so it can be slightly negative.
  """
  real = _as_features(real, "real", min_samples=2)
  fake = _as_features(fake, "fake", min_samples=2)
  _check_same_dimension(real, fake)
  subset_size = min(subset_size, real.shape[0], fake.shape[0])
  rng = np.random.default_rng(seed)
  estimates = []
  for _ in range(num_subsets):
    real_subset = real[rng.choice(real.shape[0], subset_size, replace=False)]
    fake_subset = fake[rng.choice(fake.shape[0], subset_size, replace=False)]
    estimates.append(_unbiased_mmd2(real_subset, fake_subset))
  return float(np.mean(estimates)), float(np.std(estimates))


def _squared_distances(x: np.ndarray, y: np.ndarray, y_squared_norms: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances `[M, D], [N, D] -> [M, N]`, as |x|^2 + |y|^2 - 2 x.y (one matrix product)."""
  squared = np.sum(x * x, axis=1)[:, None] + y_squared_norms[None, :] - 2.0 * (x @ y.T)
  return np.maximum(squared, 0.0)  # Cancellation can leave tiny negatives between (near) equal points.


def _squared_knn_radii(features: np.ndarray, k: int, block_size: int) -> np.ndarray:
  """Squared distance from each of `features [N, D]` to its k-th nearest neighbour among the others: `[N]`."""
  squared_norms = np.sum(features * features, axis=1)
  radii = np.empty(features.shape[0])
  for start in range(0, features.shape[0], block_size):
    block = _squared_distances(features[start : start + block_size], features, squared_norms)
    rows = np.arange(block.shape[0])
    block[rows, start + rows] = 0.0  # A point's distance to itself, free of the formula's round-off.
    # Sorted, each row starts with the point itself at 0, so the k-th neighbour among the others sits at index k.
    radii[start : start + block.shape[0]] = np.partition(block, k, axis=1)[:, k]
  return radii


def _fraction_inside_manifold(
    queries: np.ndarray, manifold: np.ndarray, squared_radii: np.ndarray, block_size: int
) -> float:
  """Fraction of `queries [M, D]` within a ball of `manifold [N, D]`, the balls' squared radii `[N]`."""
  manifold_squared_norms = np.sum(manifold * manifold, axis=1)
  num_inside = 0
  for start in range(0, queries.shape[0], block_size):
    block = _squared_distances(queries[start : start + block_size], manifold, manifold_squared_norms)
    num_inside += int(np.sum(np.any(block <= squared_radii[None, :], axis=1)))
  return num_inside / queries.shape[0]


def precision_recall(real, fake, k: int = 3, block_size: int = DEFAULT_ROW_BLOCK_SIZE) -> tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019) of `fake [M, D]` against `real [N, D]` features.

  A set's manifold is the union of balls around its points, each with radius the distance to the point's k-th
  nearest neighbour in the set (k = 3 in the paper). Precision is the fraction of fakes inside the real manifold
  (are samples realistic?), recall the fraction of reals inside the fake manifold (is the real data covered?).
  Distances are computed `block_size` rows at a time, so memory grows as block_size * max(N, M).
  """
  if k < 1:
    raise ValueError(f"k must be at least 1; got {k}.")
  real = _as_features(real, "real", min_samples=k + 1)
  fake = _as_features(fake, "fake", min_samples=k + 1)
  _check_same_dimension(real, fake)
  precision = _fraction_inside_manifold(fake, real, _squared_knn_radii(real, k, block_size), block_size)
  recall = _fraction_inside_manifold(real, fake, _squared_knn_radii(fake, k, block_size), block_size)
  return precision, recall
