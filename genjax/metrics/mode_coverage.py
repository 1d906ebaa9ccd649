"""Mode coverage of samples from a mixture of Gaussians: how many modes a generator reaches and how many of its
samples are good ones, the two numbers of the mode-collapse studies (unrolled GAN, VEEGAN, PacGAN).

A sample is high-quality when it lies within 3 standard deviations of its nearest mode's centre. A mode is covered
when at least `min_samples_per_mode` high-quality samples fall nearest to it; the default of 20 out of 2,500
samples is a fifth of a mode's fair share on the 25-mode grid, so a few stray points do not count as coverage.
"""

import numpy as np

DEFAULT_MIN_SAMPLES_PER_MODE = 20


def mode_coverage(
    samples: np.ndarray,
    centers: np.ndarray,
    std: float,
    min_samples_per_mode: int = DEFAULT_MIN_SAMPLES_PER_MODE,
) -> dict[str, float]:
  """Scores `samples [N, D]` against the modes `centers [K, D]` of standard deviation `std`.

  Returns:
    modes_covered: the number of covered modes (0..K).
    high_quality_fraction: the fraction of samples within 3 std of their nearest centre.
  """
  samples = np.asarray(samples, np.float64)
  distances = np.linalg.norm(samples[:, None, :] - np.asarray(centers, np.float64)[None], axis=-1)
  nearest = np.argmin(distances, axis=1)
  high_quality = distances[np.arange(len(samples)), nearest] <= 3.0 * std
  hits_per_mode = np.bincount(nearest[high_quality], minlength=len(centers))
  return {
      "modes_covered": int(np.sum(hits_per_mode >= min_samples_per_mode)),
      "high_quality_fraction": float(np.mean(high_quality)),
  }
