"""Offline translation tasks with a known answer, made from the bundled datasets (nothing to download), named
"known_map:TASK" (see `sources.REGISTRY`). Each map is fixed and deterministic, so a translation can be scored
exactly against the image the map makes.

Paired, from the photographs bundled with scikit-image (`photos`, its split by image; sizes vary, so they train on
patches, `config.data.patch_size`):
- grey2colour: input the photograph's luma (ITU-R BT.601, in three equal channels), target the photograph;
- edges2photo: input the photograph's edges, black on white as in edges2shoes (where the Sobel gradient magnitude
  of the luma exceeds `EDGE_THRESHOLD`), target the photograph.

Unpaired, from the bundled MNIST digits (`mnist5k`):
- thicker_digits: side A the train digits of even index, side B those of odd index thickened by `thicken` (a grey
  dilation by a 3x3 square), so that no digit is seen on both sides and the model is never told the map. The eval
  split pairs each test digit with its own thickening (the true answer), so G(A) is scored against map(A).

Examples hold "image" (domain A) and "target" (domain B), uint8, as folders of pairs do (the names are written out,
as in `folders`: `sources`, which combines unpaired sides, imports this module). Importing this module reads
nothing; a task's splits are read through `catalog` when opened.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from genjax import errors
from genjax.data import catalog

SCHEME = "known_map:"
IMAGE, TARGET = "image", "target"
# Of the Sobel magnitude of the luma in [0, 1]: 4-12% of the test photographs' pixels are edges.
EDGE_THRESHOLD = 0.15
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def grey(photo: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` -> its luma in three equal channels, uint8."""
  luma = np.rint(photo.astype(np.float32) @ _LUMA).clip(0, 255).astype(np.uint8)
  return np.repeat(luma[..., None], 3, axis=-1)


def edges(photo: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` -> black edges on white, uint8 `[H, W, 3]`."""
  luma = np.pad(photo.astype(np.float32) @ _LUMA / 255.0, 1, mode="edge")
  smooth = lambda a, b, c: a + 2 * b + c  # Sobel's [1, 2, 1] across the derivative's direction.
  left = smooth(luma[:-2, :-2], luma[1:-1, :-2], luma[2:, :-2])
  right = smooth(luma[:-2, 2:], luma[1:-1, 2:], luma[2:, 2:])
  top = smooth(luma[:-2, :-2], luma[:-2, 1:-1], luma[:-2, 2:])
  bottom = smooth(luma[2:, :-2], luma[2:, 1:-1], luma[2:, 2:])
  horizontal, vertical = right - left, bottom - top
  is_edge = np.hypot(horizontal, vertical) / 4.0 > EDGE_THRESHOLD  # / 4: the Sobel kernel's gain on a unit step.
  return np.repeat(np.where(is_edge, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def thicken(digit: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, C]` -> its grey dilation by a 3x3 square (each pixel the maximum of its neighbourhood)."""
  padded = np.pad(digit, ((1, 1), (1, 1), (0, 0)))
  height, width = digit.shape[:2]
  shifted = [padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)]
  return np.max(shifted, axis=0)


@dataclasses.dataclass(frozen=True)
class Task:
  """base: the bundled dataset; image_shape: its images' (None where sizes vary); map: A -> B; paired: whether the
  train split holds pairs (else two disjoint unpaired halves)."""

  base: str
  image_shape: tuple[int | None, int | None, int]
  map: Callable[[np.ndarray], np.ndarray]
  paired: bool


TASKS = {
    "grey2colour": Task("photos", (None, None, 3), grey, paired=True),
    "edges2photo": Task("photos", (None, None, 3), edges, paired=True),
    "thicker_digits": Task("mnist5k", (28, 28, 1), thicken, paired=False),
}


def task(name: str) -> Task:
  """The task that `config.data.name` = "known_map:TASK" names; `UserError` for an unknown one."""
  task_name = name.removeprefix(SCHEME)
  if task_name not in TASKS:
    raise errors.UserError(f"config.data.name={name!r}: known_map: tasks are {', '.join(SCHEME + t for t in TASKS)}.")
  return TASKS[task_name]


class MappedPairs(Sequence):
  """Each photograph or digit of a split as the pair (map(x), x), or with `forward` (x, map(x)); computed when read
  and kept (the bundled splits are small)."""

  def __init__(self, split: Sequence, map_: Callable[[np.ndarray], np.ndarray], forward: bool):
    self._split, self._map, self._forward, self._cache = split, map_, forward, {}

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if index not in self._cache:
      original = np.asarray(self._split[index][IMAGE])
      mapped = self._map(original)
      image, target = (original, mapped) if self._forward else (mapped, original)
      self._cache[index] = {IMAGE: image, TARGET: target}
    return self._cache[index]


def open_splits(data_config) -> tuple[tuple[Sequence, ...], Sequence]:
  """The train split of the task that `data_config.name` names, as its sides (one split of pairs, or the two
  unpaired sides A and B, each of examples {"image"}), and its eval split of pairs."""
  known = task(data_config.name)
  base = [
      catalog.open_split(known.base, split, data_config.data_dir, data_config.download)
      for split in (data_config.train_split, data_config.eval_split)
  ]
  if known.paired:  # Photographs: the input is the map of the target.
    return (MappedPairs(base[0], known.map, forward=False),), MappedPairs(base[1], known.map, forward=False)
  digits = np.stack([example[IMAGE] for example in base[0]])
  side_a = [{IMAGE: digit} for digit in digits[0::2]]
  side_b = [{IMAGE: known.map(digit)} for digit in digits[1::2]]
  return (side_a, side_b), MappedPairs(base[1], known.map, forward=True)
