"""Typed data sources: what a dataset holds (its example spec) and where its splits come from.

A `DataSource` is a dataset as genjax reads it: random-access train and eval splits, the `ExampleSpec` of one example
as trainers receive it, and what the source knows beyond its examples (the 2-D mixtures' centres). `open_source`
picks the source from `config.data.name`:

- "ring", "grid": the 2-D mixtures of `toy2d`, generated in memory;
- any other name: a TFDS image dataset (bundled ones such as "mnist5k" included), see `catalog`.

Everything downstream (trainers, the loop, evaluators, the benchmark) reads the spec, never the dataset's name.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from genjax import errors
from genjax.data import catalog
from genjax.data import toy2d

# The data key of image sources: `[H, W, C]` float32 pixels in `config.data.pixel_range`, NHWC in batches.
IMAGE = "image"
# The data key of point sources: `[D]` float32 coordinates.
POINT = "point"
LABEL = "label"

BINARIZE_MODES = ("none", "dynamic", "threshold")


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


@dataclasses.dataclass(frozen=True)
class DataSource:
  """A dataset's splits (random-access sequences of raw examples: `{"image": uint8 HWC, "label": int}` or
  `{"point": float32 [2], "label": int}`), its example spec, and, for the 2-D mixtures, the mixture."""

  name: str
  train: Sequence
  eval: Sequence
  spec: ExampleSpec
  mixture: toy2d.Mixture | None = None


def open_source(data_config: ml_collections.ConfigDict) -> DataSource:
  """The source that `data_config.name` names, its splits opened (and prepared first if needed).

  Raises `UserError` for unknown names and splits, unprepared data that cannot be downloaded, and image options that
  cannot work.
  """
  name, splits = data_config.name, (data_config.train_split, data_config.eval_split)
  if name in toy2d.MIXTURES:
    train, evaluation = (toy2d.open_split(name, split) for split in splits)
    return DataSource(name, train, evaluation, example_spec(data_config), toy2d.MIXTURES[name])
  train, evaluation = (catalog.open_split(name, split, data_config.data_dir, data_config.download) for split in splits)
  return DataSource(name, train, evaluation, example_spec(data_config))


def example_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  """The spec of `data_config.name` from metadata alone: nothing is prepared or read (for benchmarks)."""
  if data_config.name in toy2d.MIXTURES:
    return ExampleSpec.points(2, len(toy2d.MIXTURES[data_config.name].centers))
  image_shape, num_classes = catalog.image_features(data_config.name, data_config.data_dir)
  return ExampleSpec.images(image_shape, num_classes)


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
