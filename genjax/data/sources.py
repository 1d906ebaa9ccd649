"""Typed data sources: what a dataset holds (its example spec) and where its splits come from.

A `DataSource` is a dataset as genjax reads it: random-access train and eval splits, the `ExampleSpec` of one example
as trainers receive it, and what the source knows beyond its examples (the 2-D mixtures' centres). `open_source`
picks the source from `config.data.name`:

- "ring", "grid": the 2-D mixtures of `toy2d`, generated in memory;
- "folder:/path/to/images": your own images, prepared once into a cache, see `folders`;
- any other name: a TFDS image dataset (bundled ones such as "mnist5k" and "photos" included), see `catalog`.

Two image options shape what trainers see. `config.data.channels` (1 or 3; 0 keeps the stored channels) converts
on the device (luma for grey). `config.data.patch_size` (0: whole images) makes examples random square patches cut
on the device from images of any size: the splits then give each image padded to the split's largest size with
its own `size`, so that images of different sizes stack (`PaddedSplit`); restoration trains on such patches.

Of a labelled train split, `config.data.exclude_classes` leaves classes out (one-class anomaly detection) and
`config.data.real_per_class` keeps a few examples per class (a small labelled set), see `train_subset`; the eval
split stays whole.

Everything downstream (trainers, the loop, evaluators, the benchmark) reads the spec, never the dataset's name.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from genjax import errors
from genjax.data import catalog
from genjax.data import folders
from genjax.data import toy2d

# The data key of image sources: `[H, W, C]` float32 pixels in `config.data.pixel_range`, NHWC in batches.
IMAGE = "image"
# The data key of point sources: `[D]` float32 coordinates.
POINT = "point"
LABEL = "label"
# The height and width of an image inside its padding (`PaddedSplit`).
SIZE = "size"

BINARIZE_MODES = ("none", "dynamic", "threshold")
# Keeps the draw of `real_per_class` examples apart from the other uses of the config's seed.
_REAL_PER_CLASS_STREAM = 0x5E1EC7


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
  """One example after preprocessing, as it appears in batches (a leading batch axis added).

  data_key:    the key of the array that models learn: `IMAGE` or `POINT`.
  shapes:      every key's shape; `LABEL` (int32, shape ()) is present exactly when the data is labelled.
  num_classes: the number of label values (labels lie in [0, num_classes)); 0 for unlabelled data.
  """

  data_key: str
  shapes: Mapping[str, tuple[int, ...]]
  num_classes: int = 0

  @property
  def data_shape(self) -> tuple[int, ...]:
    return self.shapes[self.data_key]

  @property
  def has_labels(self) -> bool:
    return LABEL in self.shapes

  @property
  def is_image(self) -> bool:
    return self.data_key == IMAGE

  @classmethod
  def images(cls, image_shape: tuple[int, int, int], num_classes: int = 0) -> "ExampleSpec":
    """Images `[H, W, C]`, labelled when `num_classes` > 0."""
    shapes = {IMAGE: tuple(image_shape)} | ({LABEL: ()} if num_classes else {})
    return cls(IMAGE, shapes, num_classes)

  @classmethod
  def points(cls, dimensions: int, num_classes: int = 0) -> "ExampleSpec":
    shapes = {POINT: (dimensions,)} | ({LABEL: ()} if num_classes else {})
    return cls(POINT, shapes, num_classes)

  def to_json(self) -> dict:
    """The spec as JSON data (saved with a run, see `genjax.workdirs`)."""
    return {"data_key": self.data_key, "shapes": {key: list(shape) for key, shape in self.shapes.items()},
            "num_classes": self.num_classes}

  @classmethod
  def from_json(cls, saved: dict) -> "ExampleSpec":
    shapes = {key: tuple(shape) for key, shape in saved["shapes"].items()}
    return cls(saved["data_key"], shapes, saved["num_classes"])


@dataclasses.dataclass(frozen=True)
class DataSource:
  """A dataset's splits (random-access sequences of raw examples: `{"image": uint8 HWC, "label": int}` or
  `{"point": float32 [2], "label": int}`), its example spec, and, for the 2-D mixtures, the mixture."""

  name: str
  train: Sequence
  eval: Sequence
  spec: ExampleSpec
  mixture: toy2d.Mixture | None = None


def open_source(data_config: ml_collections.ConfigDict, seed: int = 0) -> DataSource:
  """The source that `data_config.name` names, its splits opened (and prepared first if needed); `seed` (the
  config's) draws the examples that `config.data.real_per_class` keeps.

  Raises `UserError` for unknown names and splits, unprepared data that cannot be downloaded, and image options that
  cannot work.
  """
  name, splits = data_config.name, (data_config.train_split, data_config.eval_split)
  if name in toy2d.MIXTURES:
    train, evaluation = (toy2d.open_split(name, split) for split in splits)
    spec = example_spec(data_config)
    return DataSource(name, train_subset(train, data_config, spec, seed), evaluation, spec, toy2d.MIXTURES[name])
  if folders.is_folder(name):
    opened = dict(
        zip(folders.SPLITS, folders.open_splits(folders.Settings.from_config(data_config), data_config.data_dir))
    )
    for split in splits:
      catalog.check_split(name, split, list(folders.SPLITS))
    train, evaluation = (opened[split] for split in splits)
  else:
    train, evaluation = (
        catalog.open_split(name, split, data_config.data_dir, data_config.download, data_config.image_key)
        for split in splits
    )
  spec = example_spec(data_config)
  train = train_subset(train, data_config, spec, seed)
  if data_config.patch_size:
    train = PaddedSplit(train, data_config.patch_size, name)
  return DataSource(name, train, evaluation, spec)


def example_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  """The spec of `data_config.name` from metadata alone: nothing is prepared or read (for benchmarks)."""
  if data_config.name in toy2d.MIXTURES:
    return ExampleSpec.points(2, len(toy2d.MIXTURES[data_config.name].centers))
  if folders.is_folder(data_config.name):
    settings = folders.Settings.from_config(data_config)
    (height, width, channels), num_classes = folders.image_shape(settings), len(folders.class_names(settings))
  else:
    (height, width, channels), num_classes = catalog.image_features(
        data_config.name, data_config.data_dir, data_config.image_key
    )
  if data_config.patch_size:
    height = width = data_config.patch_size
  elif height is None or width is None:
    raise errors.UserError(
        f"The images of {data_config.name!r} differ in size; set config.data.patch_size to train on square patches "
        "cut from them."
    )
  return ExampleSpec.images((height, width, data_config.channels or channels), num_classes)


def train_subset(split: Sequence, data_config: ml_collections.ConfigDict, spec: ExampleSpec, seed: int) -> Sequence:
  """The examples of a train split that training reads: all but those of `data_config.exclude_classes`, and of
  each class `data_config.real_per_class` of them (0: all), drawn by `seed` without replacement. The split
  itself when neither is set; otherwise every example's label is read once (decoding it, for TFDS data).

  Raises `UserError` for classes outside the data's, excluding every class, or more examples per class than the
  split has.
  """
  excluded, per_class, name = tuple(data_config.exclude_classes), data_config.real_per_class, data_config.name
  if not excluded and not per_class:
    return split
  if not spec.has_labels:
    raise errors.UserError(
        f"config.data.exclude_classes and config.data.real_per_class select examples by label; {name!r} has none."
    )
  unknown = [label for label in excluded if not 0 <= label < spec.num_classes]
  if unknown:
    raise errors.UserError(
        f"config.data.exclude_classes={excluded} names classes {unknown} that {name!r} lacks (its labels are 0 to "
        f"{spec.num_classes - 1})."
    )
  if len(set(excluded)) == spec.num_classes:
    raise errors.UserError(f"config.data.exclude_classes={excluded} excludes every class of {name!r}: none is left.")
  if per_class < 0:
    raise errors.UserError(f"config.data.real_per_class={per_class} must be >= 0 (0: every example).")
  labels = np.array([int(split[index][LABEL]) for index in range(len(split))])
  kept = np.flatnonzero(~np.isin(labels, excluded))
  if per_class:
    counts = {int(label): int(np.sum(labels[kept] == label)) for label in np.unique(labels[kept])}
    short = [f"class {label} has {count}" for label, count in counts.items() if count < per_class]
    if short:
      raise errors.UserError(
          f"config.data.real_per_class={per_class} is more than the train split of {name!r} holds "
          f"({', '.join(short[:3])}{', ...' if len(short) > 3 else ''}); lower it to at most {min(counts.values())}."
      )
    rng = np.random.default_rng([seed, _REAL_PER_CLASS_STREAM])
    kept = np.sort(
        np.concatenate([rng.choice(kept[labels[kept] == label], per_class, replace=False) for label in counts])
    )
  return Subset(split, kept)


class Subset(Sequence):
  """The examples of a split at `indices`, in that order."""

  def __init__(self, split: Sequence, indices: np.ndarray):
    self._split = split
    self.indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int):
    return self._split[int(self.indices[index])]

  def __getitems__(self, indices: Sequence[int]):
    wanted = [int(self.indices[index]) for index in indices]
    return (
        self._split.__getitems__(wanted) if hasattr(self._split, "__getitems__") else [self._split[i] for i in wanted]
    )


class PaddedSplit(Sequence):
  """A split of images of any size, each padded (with zeros, bottom and right) to the split's largest size and
  given its own `size`, so that examples stack; images smaller than `patch_size` are refused by name."""

  def __init__(self, split: Sequence, patch_size: int, name: str):
    self._split = split
    shapes = [np.shape(split[index][IMAGE]) for index in range(len(split))]
    small = [index for index, shape in enumerate(shapes) if min(shape[:2]) < patch_size]
    if small:
      raise errors.UserError(
          f"Images {small} of {name!r} are smaller than config.data.patch_size={patch_size} "
          f"({[shapes[index][:2] for index in small]}); lower the patch size."
      )
    self._shape = tuple(max(shape[axis] for shape in shapes) for axis in range(3))
    self.sizes = np.array([shape[:2] for shape in shapes], np.int32)

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    example = dict(self._split[index])
    image = np.asarray(example[IMAGE])
    padded = np.zeros(self._shape, image.dtype)
    padded[: image.shape[0], : image.shape[1]] = image
    return {**example, IMAGE: padded, SIZE: self.sizes[index]}


def in_memory(name: str, train: Sequence[dict[str, Any]], evaluation: Sequence[dict[str, Any]]) -> DataSource:
  """A source over in-memory lists of raw examples (tests, notebooks); the spec is read off the first example and
  labelled data is assumed to use labels 0..max."""
  first = train[0]
  labels = [example[LABEL] for example in [*train, *evaluation]] if LABEL in first else []
  num_classes = int(max(labels)) + 1 if labels else 0
  if IMAGE in first:
    spec = ExampleSpec.images(np.shape(first[IMAGE]), num_classes)
  else:
    spec = ExampleSpec.points(np.shape(first[POINT])[0], num_classes)
  return DataSource(name, train, evaluation, spec)


def check_options(data_config: ml_collections.ConfigDict, spec: ExampleSpec) -> None:
  """Raises `UserError` for preprocessing settings that cannot work on data of `spec`, before anything is read."""
  if not spec.is_image:
    return  # Points have no preprocessing options.
  if data_config.binarize not in BINARIZE_MODES:
    raise errors.UserError(f"config.data.binarize={data_config.binarize!r} is not one of {', '.join(BINARIZE_MODES)}.")
  low, high = data_config.pixel_range
  if not low < high:
    raise errors.UserError(f"config.data.pixel_range={tuple(data_config.pixel_range)} must be (low, high), low < high.")
  if data_config.random_crop_padding < 0:
    raise errors.UserError("config.data.random_crop_padding must be >= 0.")
  if (data_config.image_size or data_config.folder_labels) and not folders.is_folder(data_config.name):
    raise errors.UserError(
        "config.data.image_size and config.data.folder_labels apply to image folders (config.data.name='folder:...') "
        f"only, not to {data_config.name!r}."
    )
  if data_config.image_size < 0:
    raise errors.UserError(f"config.data.image_size={data_config.image_size} must be >= 0.")
  if data_config.channels not in (0, 1, 3):
    raise errors.UserError(
        f"config.data.channels={data_config.channels} must be 1 (grey), 3 (colour) or 0 (as stored)."
    )
