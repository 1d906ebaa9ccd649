"""Specification of genjax.metrics.mode_coverage: what counts as a covered mode and as a high-quality sample."""

import numpy as np

from genjax.metrics import mode_coverage

_CENTERS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
_STD = 0.05


def _around(center_indices, per_center: int, spread: float) -> np.ndarray:
  rng = np.random.default_rng(0)
  centers = np.repeat(_CENTERS[center_indices], per_center, axis=0)
  return centers + spread * rng.uniform(-1, 1, centers.shape) / np.sqrt(2)


def test_samples_near_every_mode_cover_all_modes_with_full_quality():
  result = mode_coverage.mode_coverage(_around([0, 1, 2, 3], 50, spread=_STD), _CENTERS, _STD)
  assert result == {"modes_covered": 4, "high_quality_fraction": 1.0}


def test_collapsed_samples_cover_only_their_modes():
  result = mode_coverage.mode_coverage(_around([1, 3], 100, spread=_STD), _CENTERS, _STD)
  assert result == {"modes_covered": 2, "high_quality_fraction": 1.0}


def test_samples_beyond_three_standard_deviations_are_low_quality_and_cover_nothing():
  between_modes = _around([0, 1, 2, 3], 50, spread=0.0) + 4 * _STD
  result = mode_coverage.mode_coverage(between_modes, _CENTERS, _STD)
  assert result == {"modes_covered": 0, "high_quality_fraction": 0.0}


def test_a_mode_needs_the_minimum_number_of_high_quality_samples():
  samples = np.concatenate([_around([0], 19, spread=_STD), _around([1], 20, spread=_STD)])
  result = mode_coverage.mode_coverage(samples, _CENTERS, _STD, min_samples_per_mode=20)
  assert result["modes_covered"] == 1
