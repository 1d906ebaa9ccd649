"""Specification of genjax.metrics.feature_distances: closed forms, independent reference computations and the
behaviour each metric exists to detect (a shifted distribution, samples off the data, mode collapse)."""

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance

from genjax.metrics import feature_distances


def _random_covariance(rng: np.random.Generator, dim: int, num_samples: int) -> np.ndarray:
  """A full-rank, well-conditioned covariance: that of num_samples >> dim correlated Gaussian features."""
  mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.eye(dim)
  return np.cov(rng.normal(size=(num_samples, dim)) @ mixing, rowvar=False)


def test_feature_statistics_are_the_mean_and_unbiased_covariance():
  features = np.random.default_rng(0).normal(size=(50, 4))
  mean, covariance = feature_distances.feature_statistics(features)
  np.testing.assert_allclose(mean, features.mean(axis=0))
  centred = features - features.mean(axis=0)
  np.testing.assert_allclose(covariance, centred.T @ centred / 49)


def test_frechet_distance_of_identical_statistics_is_zero():
  rng = np.random.default_rng(0)
  mean, covariance = rng.normal(size=8), _random_covariance(rng, 8, 500)
  distance = feature_distances.frechet_distance(mean, covariance, mean, covariance)
  assert 0.0 <= distance <= 1e-6 * np.trace(covariance)


def test_frechet_distance_of_a_mean_shift_is_its_squared_norm():
  rng = np.random.default_rng(1)
  mean, covariance, shift = rng.normal(size=8), _random_covariance(rng, 8, 500), rng.normal(size=8)
  distance = feature_distances.frechet_distance(mean, covariance, mean + shift, covariance)
  np.testing.assert_allclose(distance, shift @ shift, rtol=1e-6)


def test_frechet_distance_between_diagonal_covariances_matches_closed_form():
  mean1, mean2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
  variances1, variances2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  distance = feature_distances.frechet_distance(mean1, np.diag(variances1), mean2, np.diag(variances2))
  expected = np.sum((mean1 - mean2) ** 2) + np.sum((np.sqrt(variances1) - np.sqrt(variances2)) ** 2)
  np.testing.assert_allclose(distance, expected, rtol=1e-10)  # 1 + 6.25 + 4 + 1 + 0


def test_frechet_distance_agrees_with_scipy_sqrtm_on_full_rank_covariances():
  rng = np.random.default_rng(2)
  mean1, mean2 = rng.normal(size=8), rng.normal(size=8)
  cov1, cov2 = _random_covariance(rng, 8, 500), _random_covariance(rng, 8, 500)
  # The textbook computation, sound here because both covariances are far from singular.
  expected = np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2.0 * scipy.linalg.sqrtm(cov1 @ cov2).real)
  np.testing.assert_allclose(feature_distances.frechet_distance(mean1, cov1, mean2, cov2), expected, rtol=1e-6)


def test_frechet_distance_is_symmetric():
  rng = np.random.default_rng(3)
  stats1 = (rng.normal(size=6), _random_covariance(rng, 6, 100))
  stats2 = (rng.normal(size=6), _random_covariance(rng, 6, 100))
  np.testing.assert_allclose(
      feature_distances.frechet_distance(*stats1, *stats2), feature_distances.frechet_distance(*stats2, *stats1)
  )


def test_frechet_distance_stays_finite_and_non_negative_with_fewer_samples_than_dimensions():
  # 20 samples of 64 features: both covariances have rank 19, the case where sqrtm(C1 @ C2) breaks down.
  rng = np.random.default_rng(4)
  real, fake = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) * 1.5
  distance = feature_distances.frechet_distance_from_features(real, fake)
  assert np.isfinite(distance) and distance > 0.0
  self_distance = feature_distances.frechet_distance_from_features(real, real)
  assert 0.0 <= self_distance <= 1e-8 * distance


def test_frechet_distance_rejects_mismatched_dimensions():
  with pytest.raises(ValueError, match="covariances"):
    feature_distances.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
  with pytest.raises(ValueError, match="dimensions differ"):
    feature_distances.frechet_distance_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="at least 2"):
    feature_distances.feature_statistics(np.zeros((1, 3)))


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> float:
  return (x @ y / len(x) + 1.0) ** 3


def test_kid_of_one_subset_holding_everything_is_the_unbiased_mmd_u_statistic():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5
  m, n = len(x), len(y)
  # (1/(m(m-1))) sum_{i!=j} k(x_i,x_j) + (1/(n(n-1))) sum_{i!=j} k(y_i,y_j) - (2/(mn)) sum_{i,j} k(x_i,y_j)
  within_x = sum(_cubic_kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  within_y = sum(_cubic_kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  between = sum(_cubic_kernel(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  # subset_size is clipped to the 6 samples, so the one subset is a permutation of each whole set.
  mean, std = feature_distances.kernel_inception_distance(x, y, num_subsets=1, subset_size=1000)
  np.testing.assert_allclose(mean, within_x + within_y - 2.0 * between, rtol=1e-10)
  assert std == 0.0


def test_kid_separates_a_shifted_distribution_from_a_second_sample_of_the_same_one():
  rng = np.random.default_rng(6)
  real, same, shifted = rng.normal(size=(3, 300, 16))
  shifted += 0.5
  same_mean, same_std = feature_distances.kernel_inception_distance(real, same, num_subsets=20, subset_size=100)
  shifted_mean, shifted_std = feature_distances.kernel_inception_distance(
      real, shifted, num_subsets=20, subset_size=100
  )
  assert abs(same_mean) < 3.0 * same_std  # Unbiased: centred on 0, so it may come out slightly negative.
  assert abs(same_mean) < 0.05 * shifted_mean
  assert shifted_mean > 5.0 * shifted_std


def test_kid_is_deterministic_for_a_fixed_seed():
  rng = np.random.default_rng(7)
  real, fake = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))
  run = lambda seed: feature_distances.kernel_inception_distance(real, fake, num_subsets=5, subset_size=20, seed=seed)
  assert run(0) == run(0)
  assert run(0) != run(1)


def test_kid_rejects_mismatched_dimensions_and_single_samples():
  with pytest.raises(ValueError, match="dimensions differ"):
    feature_distances.kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="at least 2"):
    feature_distances.kernel_inception_distance(np.zeros((5, 3)), np.zeros((1, 3)))


def test_precision_and_recall_of_a_set_against_itself_are_one():
  features = np.random.default_rng(8).normal(size=(100, 8))
  assert feature_distances.precision_recall(features, features) == (1.0, 1.0)


def test_fakes_far_from_every_real_have_zero_precision():
  rng = np.random.default_rng(9)
  real, fake = rng.normal(size=(100, 8)), rng.normal(size=(100, 8)) + 100.0
  precision, recall = feature_distances.precision_recall(real, fake)
  assert precision == 0.0 and recall == 0.0


def test_mode_collapse_onto_one_real_point_gives_high_precision_and_low_recall():
  real = np.random.default_rng(10).normal(size=(100, 8))
  fake = np.repeat(real[:1], 50, axis=0)
  precision, recall = feature_distances.precision_recall(real, fake)
  assert precision == 1.0
  assert recall <= 0.01  # At most the one real point the fakes collapsed onto.


def test_precision_and_recall_match_brute_force_knn_radii():
  rng = np.random.default_rng(11)
  real, fake = rng.normal(size=(12, 3)), rng.normal(size=(10, 3)) + 1.0
  k = 2

  def fraction_inside(queries, manifold):
    # Column 0 of each sorted row is the point itself, so column k is its k-th nearest other point.
    radii = np.sort(scipy.spatial.distance.cdist(manifold, manifold), axis=1)[:, k]
    return np.mean(np.any(scipy.spatial.distance.cdist(queries, manifold) <= radii[None, :], axis=1))

  precision, recall = feature_distances.precision_recall(real, fake, k=k)
  assert precision == fraction_inside(fake, real)
  assert recall == fraction_inside(real, fake)
  assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0  # The example exercises both outcomes.


def test_precision_and_recall_do_not_depend_on_the_row_block_size():
  rng = np.random.default_rng(12)
  real, fake = rng.normal(size=(53, 5)), rng.normal(size=(47, 5)) + 0.4
  unblocked = feature_distances.precision_recall(real, fake)
  assert feature_distances.precision_recall(real, fake, block_size=7) == unblocked


def test_precision_recall_needs_more_samples_than_neighbours():
  with pytest.raises(ValueError, match="at least 4"):
    feature_distances.precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
  with pytest.raises(ValueError, match="dimensions differ"):
    feature_distances.precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))
