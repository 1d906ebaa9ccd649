"""Two-dimensional mixtures of Gaussians, the standard data for seeing mode collapse.

Two datasets, as in the mode-collapse studies of Metz et al. 2017 (unrolled GANs), Srivastava et al. 2017
(VEEGAN) and Lin et al. 2018 (PacGAN):
- "ring": 8 equally weighted Gaussians with centres evenly spaced on a circle of radius 2, standard deviation 0.02;
- "grid": 25 equally weighted Gaussians with centres on the 5x5 grid {-4, -2, 0, 2, 4}^2 (spacing 2), standard
  deviation 0.05.

A split is a fixed sample of the mixture, drawn with the split's own seed, so that it reads the same every time, on
every process, like any dataset. Examples are `{"point": float32 [2], "label": int32 mode index}`.

This module owns the mixtures and their splits; how well samples cover the modes is measured by
`genjax.metrics.mode_coverage`.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from genjax import errors


@dataclasses.dataclass(frozen=True)
class Mixture:
  """An equally weighted mixture of isotropic Gaussians: `centers [K, 2]`, one standard deviation for all."""

  centers: np.ndarray
  std: float


def _ring(num_modes: int, radius: float) -> np.ndarray:
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _grid(coordinates: Sequence[float]) -> np.ndarray:
  return np.array([(x, y) for x in coordinates for y in coordinates], dtype=np.float64)


MIXTURES = {
    "ring": Mixture(centers=_ring(8, radius=2.0), std=0.02),
    "grid": Mixture(centers=_grid([-4.0, -2.0, 0.0, 2.0, 4.0]), std=0.05),
}

# Sizes of the fixed splits. 2,500 test points: the sample size the mode-collapse studies above score with.
SPLIT_SIZES = {"train": 100_000, "test": 2_500}
_SPLIT_SEEDS = {"train": 0, "test": 1}


def open_split(name: str, split: str) -> "MixtureSplit":
  """The fixed sample `split` ("train" or "test") of mixture `name`; `UserError` for another split."""
  if split not in SPLIT_SIZES:
    raise errors.UserError(f"Dataset {name!r} has no split {split!r}; it has: {', '.join(SPLIT_SIZES)}.")
  return MixtureSplit(name, split)


class MixtureSplit(Sequence):
  """The fixed sample `split` of mixture `name`, indexable like a TFDS data source."""

  def __init__(self, name: str, split: str):
    self.mixture = MIXTURES[name]
    rng = np.random.default_rng(_SPLIT_SEEDS[split])
    size = SPLIT_SIZES[split]
    self.labels = rng.integers(len(self.mixture.centers), size=size).astype(np.int32)
    noise = self.mixture.std * rng.standard_normal((size, 2))
    self.points = (self.mixture.centers[self.labels] + noise).astype(np.float32)

  def __len__(self) -> int:
    return len(self.points)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"point": self.points[index], "label": self.labels[index]}
