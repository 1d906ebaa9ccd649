"""Typed data sources: what a dataset holds (its example spec) and where its splits come from.

A `DataSource` is a dataset as genjax reads it: random-access train and eval splits, the `ExampleSpec` of one example
as trainers receive it, and what the source knows beyond its examples (the 2-D mixtures' centres).

Examples are dicts of named fields that the source's spec declares: image fields ("image", a pair's "target") with
their shape, points, a label, and the size of padded images. Readers stack exactly the declared fields (see
`pipeline.read_examples`): an example holding a field its spec does not declare is refused by name, never dropped.

`open_source` finds the source of `config.data.name` in one table, `REGISTRY`, by scheme or by name:
- "ring", "grid": the 2-D mixtures of `toy2d`, generated in memory;
- "folder:DIR": your own images, one per file, prepared once into a cache, see `folders`;
- "pairs:DIR_A,DIR_B": an input and its target in two folders, files matched by relative path ("image", "target");
- "sidebyside:DIR": pairs stored side by side in one file, input left and target right (the pix2pix datasets);
- "unpaired:DIR_A,DIR_B": two folders of unpaired images ("image" from A, "target" from B), which training visits
  each in its own order (`UnpairedSplit`);
- "cycle_gan/NAME": TFDS's CycleGAN datasets (horse2zebra, monet2photo, ...) as unpaired sides, trainA and trainB
  for training, testA and testB for evaluation, each image resized to `config.data.image_size` (downloaded on first
  use, as any TFDS dataset);
- "known_map:TASK": the offline translation tasks with a known answer, made from the bundled datasets (pairs or
  unpaired sides), see `known_maps`;
- any other name: a TFDS image dataset (bundled ones such as "mnist5k" and "photos" included), see `catalog`.
TensorFlow Datasets and folder reading are imported only when a source of theirs is opened.

Two image options shape what trainers see. `config.data.channels` (1 or 3; 0 keeps the stored channels) converts
on the device (luma for grey). `config.data.patch_size` (0: whole images) makes examples random square patches cut
on the device from images of any size: the train split then gives each example's images padded to the split's
largest size with their own `size`, so that images of different sizes stack (`PaddedSplit`), and the eval split
gives each its `size` unpadded (`SizedSplit`); restoration trains on such patches.

Of a labelled train split, `config.data.exclude_classes` leaves classes out (one-class anomaly detection) and
`config.data.real_per_class` keeps a few examples per class (a small labelled set), see `train_subset`; the eval
split stays whole.

Everything downstream (trainers, the loop, evaluators, the benchmark) reads the spec, never the dataset's name.
"""

import dataclasses
import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from genjax import errors
from genjax.data import toy2d

# Field names that trainers and evaluators read. "image" is the main image (a pair's input, side A of an unpaired
# source); "target" is a pair's target (side B).
IMAGE = "image"
TARGET = "target"
POINT = "point"
LABEL = "label"
# The height and width of an example's images inside their padding (`PaddedSplit`).
SIZE = "size"

BINARIZE_MODES = ("none", "dynamic", "threshold")
# Keeps the draw of `real_per_class` examples apart from the other uses of the config's seed.
_REAL_PER_CLASS_STREAM = 0x5E1EC7


class Kind(enum.Enum):
  """What a field holds, raw (as read) -> in batches (after `preprocess`)."""

  IMAGE = "image"  # uint8 [H, W, C] -> float32 [H, W, C] pixels in config.data.pixel_range.
  POINTS = "points"  # float32 [D], unchanged.
  LABEL = "label"  # int32 (), unchanged; labels lie in [0, num_classes).
  SIZE = "size"  # int32 [2]: the height and width of the example's images inside their padding; consumed by
  # patch cutting, so it is read but never reaches a trainer.


@dataclasses.dataclass(frozen=True)
class Field:
  kind: Kind
  shape: tuple[int, ...]  # As trainers see it (after preprocessing: patch size, config.data.channels).


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
  """The named fields of one example, in order, and the number of label values (0 for unlabelled data).

  Readers stack exactly these fields (a field an example holds beyond them is refused, never dropped), and
  preprocessing treats every image field alike, with one geometric draw per example (so a pair stays aligned).
  The first image field (or, without images, the points field) is the main one: the data that models learn.
  """

  fields: Mapping[str, Field]
  num_classes: int = 0

  @property
  def image_fields(self) -> tuple[str, ...]:
    return tuple(name for name, field in self.fields.items() if field.kind is Kind.IMAGE)

  @property
  def data_key(self) -> str:
    """The main field: the first image field, or the points field."""
    return next(name for name, field in self.fields.items() if field.kind in (Kind.IMAGE, Kind.POINTS))

  @property
  def data_shape(self) -> tuple[int, ...]:
    return self.fields[self.data_key].shape

  @property
  def shapes(self) -> dict[str, tuple[int, ...]]:
    """The shape of every field that reaches trainers (all but the image size that patch cutting consumes)."""
    return {name: field.shape for name, field in self.fields.items() if field.kind is not Kind.SIZE}

  @property
  def has_labels(self) -> bool:
    return any(field.kind is Kind.LABEL for field in self.fields.values())

  @property
  def is_image(self) -> bool:
    return bool(self.image_fields)

  @property
  def is_sized(self) -> bool:
    """Whether examples carry their images' `SIZE` inside their padding (`PaddedSplit`)."""
    return any(field.kind is Kind.SIZE for field in self.fields.values())

  def only(self, names: Sequence[str]) -> "ExampleSpec":
    """The spec of the fields `names` alone (labelled only if "label" is among them)."""
    fields = {name: self.fields[name] for name in names}
    return ExampleSpec(fields, self.num_classes if LABEL in fields else 0)

  @classmethod
  def images(
      cls,
      image_shape: tuple[int, int, int],
      num_classes: int = 0,
      image_fields: Sequence[str] = (IMAGE,),
      sized: bool = False,
  ) -> "ExampleSpec":
    """Image fields `[H, W, C]` of one shape, labelled when `num_classes` > 0, with their `SIZE` when `sized`."""
    fields = {name: Field(Kind.IMAGE, tuple(image_shape)) for name in image_fields}
    if num_classes:
      fields[LABEL] = Field(Kind.LABEL, ())
    if sized:
      fields[SIZE] = Field(Kind.SIZE, (2,))
    return cls(fields, num_classes)

  def to_json(self) -> dict:
    """The spec as JSON data (saved with a run, see `genjax.workdirs`)."""
    fields = {name: {"kind": field.kind.value, "shape": list(field.shape)} for name, field in self.fields.items()}
    return {"fields": fields, "num_classes": self.num_classes}

  @classmethod
  def from_json(cls, saved: dict) -> "ExampleSpec":
    fields = {name: Field(Kind(field["kind"]), tuple(field["shape"])) for name, field in saved["fields"].items()}
    return cls(fields, saved["num_classes"])

  @classmethod
  def points(cls, dimensions: int, num_classes: int = 0) -> "ExampleSpec":
    fields = {POINT: Field(Kind.POINTS, (dimensions,))} | ({LABEL: Field(Kind.LABEL, ())} if num_classes else {})
    return cls(fields, num_classes)


def inferred_spec(examples: Sequence[Mapping[str, Any]]) -> ExampleSpec:
  """The spec of in-memory examples, read off the first: "label" is the label (values 0..max over all examples),
  "size" the size inside padding, 3-D arrays are images and 1-D arrays points. Raises `UserError` for any other
  field."""
  first, fields = examples[0], {}
  for name, value in first.items():
    shape = tuple(np.shape(value))
    if name == LABEL:
      fields[name] = Field(Kind.LABEL, ())
    elif name == SIZE:
      fields[name] = Field(Kind.SIZE, (2,))
    elif len(shape) in (1, 3):
      fields[name] = Field(Kind.IMAGE if len(shape) == 3 else Kind.POINTS, shape)
    else:
      raise errors.UserError(
          f"In-memory examples hold field {name!r} of shape {shape}, which is no image [H, W, C], points [D], "
          f"{LABEL!r} or {SIZE!r}; leave it out of the examples."
      )
  num_classes = int(max(example[LABEL] for example in examples)) + 1 if LABEL in fields else 0
  return ExampleSpec(fields, num_classes)


@dataclasses.dataclass(frozen=True)
class DataSource:
  """A dataset's splits (random-access sequences of raw examples, dicts holding exactly the spec's fields:
  `{"image": uint8 HWC, "label": int}`, `{"image": ..., "target": ...}`, `{"point": float32 [2], "label": int}`),
  its example spec, and, for the 2-D mixtures, the mixture."""

  name: str
  train: Sequence
  eval: Sequence
  spec: ExampleSpec
  mixture: toy2d.Mixture | None = None


@dataclasses.dataclass(frozen=True)
class SourceKind:
  """One entry of the registry: a kind of source, by name or scheme.

  spec:   data config -> the spec, from metadata alone (nothing is prepared or read).
  open:   data config -> the whole train and eval splits (prepared first if needed) and the mixture behind them.
  folder_options: whether config.data.image_size and config.data.folder_labels apply.
  pairs:  whether its examples are pairs (an input and its target) that config.data.reverse_pairs can swap.
  """

  spec: Callable[[ml_collections.ConfigDict], ExampleSpec]
  open: Callable[[ml_collections.ConfigDict], tuple[Sequence, Sequence, toy2d.Mixture | None]]
  folder_options: bool = False
  pairs: bool = False


def _splits(data_config: ml_collections.ConfigDict) -> tuple[str, str]:
  return data_config.train_split, data_config.eval_split


def _image_spec(
    data_config: ml_collections.ConfigDict,
    image_shape: tuple[int | None, int | None, int],
    num_classes: int,
    image_fields: Sequence[str] = (IMAGE,),
) -> ExampleSpec:
  """The spec of images as stored (sides None where they vary), shaped by config.data.patch_size and channels."""
  height, width, channels = image_shape
  if data_config.patch_size:
    height = width = data_config.patch_size
  elif height is None or width is None:
    raise errors.UserError(
        f"The images of {data_config.name!r} differ in size; set config.data.patch_size to train on square patches "
        "cut from them."
    )
  shape = (height, width, data_config.channels or channels)
  return ExampleSpec.images(shape, num_classes, image_fields, sized=bool(data_config.patch_size))


def _toy2d_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  return ExampleSpec.points(2, len(toy2d.MIXTURES[data_config.name].centers))


def _toy2d_open(data_config: ml_collections.ConfigDict):
  train, evaluation = (toy2d.open_split(data_config.name, split) for split in _splits(data_config))
  return train, evaluation, toy2d.MIXTURES[data_config.name]


# TensorFlow Datasets and folder reading (Pillow, array_record) are imported when a source of theirs is opened,
# not with this module: importing genjax.experiment, the trainers or the loop stays free of them.


def _tfds_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  from genjax.data import catalog

  image_shape, num_classes = catalog.image_features(data_config.name, data_config.data_dir, data_config.image_key)
  return _image_spec(data_config, image_shape, num_classes)


def _tfds_open(data_config: ml_collections.ConfigDict):
  from genjax.data import catalog

  train, evaluation = (
      catalog.open_split(data_config.name, split, data_config.data_dir, data_config.download, data_config.image_key)
      for split in _splits(data_config)
  )
  return train, evaluation, None


def _folder_kind(layout: str) -> SourceKind:
  """Image folders of one layout (see `folders`): one image per file, pairs of folders, or side-by-side pairs."""

  def settings(data_config: ml_collections.ConfigDict):
    from genjax.data import folders

    return folders.Settings.from_config(data_config, layout)

  def spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
    from genjax.data import folders

    folder = settings(data_config)
    num_classes = len(folders.class_names(folder))
    return _image_spec(data_config, folders.image_shape(folder), num_classes, folders.fields(folder))

  def open_(data_config: ml_collections.ConfigDict):
    from genjax.data import folders

    train, evaluation = folders.open_splits(settings(data_config), data_config.data_dir, _splits(data_config))
    if data_config.reverse_pairs:  # Swapped as read: the prepared cache is the same either way.
      train, evaluation = _ReversedPairs(train), _ReversedPairs(evaluation)
    return train, evaluation, None

  return SourceKind(spec, open_, folder_options=True, pairs=layout != "folder")


def _unpaired_settings(data_config: ml_collections.ConfigDict):
  from genjax.data import folders

  if data_config.folder_labels or data_config.patch_size:
    raise errors.UserError(
        f"config.data.name={data_config.name!r}: unpaired folders are read whole and unlabelled; set "
        "config.data.image_size and leave config.data.folder_labels and config.data.patch_size unset."
    )
  return folders.Settings.from_config(data_config, folders.UNPAIRED)


def _unpaired_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  from genjax.data import folders

  return _image_spec(data_config, folders.image_shape(_unpaired_settings(data_config)), 0, (IMAGE, TARGET))


def _unpaired_open(data_config: ml_collections.ConfigDict):
  from genjax.data import folders

  side_a, side_b = (
      folders.open_splits(side, data_config.data_dir, _splits(data_config))
      for side in _unpaired_settings(data_config).unpaired_sides()
  )
  train, evaluation = (UnpairedSplit(a, b) for a, b in zip(side_a, side_b))
  return train, evaluation, None


# TFDS's CycleGAN datasets: a "label" that says A or B (left out: the side says it) and images of declared
# variable size (all 256x256 as published).
_CYCLE_GAN_SIDES = ("A", "B")


def _tfds_unpaired_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  from genjax.data import catalog

  if not data_config.image_size or data_config.patch_size or data_config.folder_labels:
    raise errors.UserError(
        f"config.data.name={data_config.name!r}: unpaired images are read whole, resized, and unlabelled; set "
        "config.data.image_size (256 as published) and leave config.data.patch_size and config.data.folder_labels "
        "unset."
    )
  stored_shape, _ = catalog.image_features(data_config.name, data_config.data_dir, data_config.image_key)
  shape = (data_config.image_size, data_config.image_size, stored_shape[-1])
  return _image_spec(data_config, shape, 0, (IMAGE, TARGET))


def _tfds_unpaired_open(data_config: ml_collections.ConfigDict):
  from genjax.data import catalog
  from genjax.data import folders

  def side(split: str) -> Sequence:
    images = catalog.open_split(
        data_config.name, split, data_config.data_dir, data_config.download, data_config.image_key
    )
    return _FittedImages(images, functools.partial(folders.fit_image, image_size=data_config.image_size))

  train, evaluation = (
      UnpairedSplit(*(side(split + letter) for letter in _CYCLE_GAN_SIDES)) for split in _splits(data_config)
  )
  return train, evaluation, None


def _known_map_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  from genjax.data import known_maps

  return _image_spec(data_config, known_maps.task(data_config.name).image_shape, 0, (IMAGE, TARGET))


def _known_map_open(data_config: ml_collections.ConfigDict):
  from genjax.data import known_maps

  train_sides, evaluation = known_maps.open_splits(data_config)
  train = UnpairedSplit(*train_sides) if len(train_sides) == 2 else train_sides[0]
  return train, evaluation, None


_TOY2D = SourceKind(_toy2d_spec, _toy2d_open)
_TFDS = SourceKind(_tfds_spec, _tfds_open)

# Every kind of source by its name or scheme ("scheme:" followed by its argument); any other name is a TFDS dataset.
# The folder layouts are named as in `folders` (its constants are not imported here: see above).
REGISTRY = {
    **{name: _TOY2D for name in toy2d.MIXTURES},
    "folder:": _folder_kind("folder"),
    "pairs:": _folder_kind("pairs"),
    "sidebyside:": _folder_kind("sidebyside"),
    "unpaired:": SourceKind(_unpaired_spec, _unpaired_open, folder_options=True),
    "known_map:": SourceKind(_known_map_spec, _known_map_open),
    "cycle_gan/": SourceKind(_tfds_unpaired_spec, _tfds_unpaired_open, folder_options=True),
}


def kind_of(name: str) -> SourceKind:
  """The registry's entry for `name`: its scheme ("folder:", ...), its TFDS family ("cycle_gan/..."), its own name
  ("ring"), or else TFDS."""
  for prefix in (name.partition(":")[0] + ":", name.partition("/")[0] + "/"):
    if prefix in REGISTRY:
      return REGISTRY[prefix]
  return REGISTRY.get(name, _TFDS)


def open_source(data_config: ml_collections.ConfigDict, seed: int = 0) -> DataSource:
  """The source that `data_config.name` names (see `REGISTRY`), its splits opened (and prepared first if needed);
  `seed` (the config's) draws the examples that `config.data.real_per_class` keeps.

  Raises `UserError` for unknown names and splits, unprepared data that cannot be downloaded, and image options that
  cannot work.
  """
  kind = kind_of(data_config.name)
  train, evaluation, mixture = kind.open(data_config)
  spec = kind.spec(data_config)
  train = train_subset(train, data_config, spec, seed)
  if spec.is_sized:
    train = PaddedSplit(train, data_config.patch_size, data_config.name, spec.image_fields)
    evaluation = SizedSplit(evaluation)
  return DataSource(data_config.name, train, evaluation, spec, mixture)


def example_spec(data_config: ml_collections.ConfigDict) -> ExampleSpec:
  """The spec of `data_config.name` from metadata alone: nothing is prepared or read (for benchmarks)."""
  return kind_of(data_config.name).spec(data_config)


def train_subset(split: Sequence, data_config: ml_collections.ConfigDict, spec: ExampleSpec, seed: int) -> Sequence:
  """The examples of a train split that training reads: all but those of `data_config.exclude_classes`, and of
  each class `data_config.real_per_class` of them (0: all), drawn by `seed` without replacement. The split
  itself when neither is set; otherwise every example's label is read once.

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
  # A TFDS split reads its labels without decoding its images.
  labels = split.labels() if hasattr(split, "labels") else np.array([int(split[i][LABEL]) for i in range(len(split))])
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
  """A split of images of any size, each example's image fields padded (with zeros, bottom and right) to the
  split's largest size and given their own `size`, so that examples stack; images smaller than `patch_size` are
  refused by name. The image fields of an example share their height and width."""

  def __init__(self, split: Sequence, patch_size: int, name: str, image_fields: Sequence[str] = (IMAGE,)):
    self._split, self._image_fields = split, tuple(image_fields)
    shapes = [np.shape(split[index][self._image_fields[0]]) for index in range(len(split))]
    small = [index for index, shape in enumerate(shapes) if min(shape[:2]) < patch_size]
    if small:
      raise errors.UserError(
          f"Images {small} of {name!r} are smaller than config.data.patch_size={patch_size} "
          f"({[shapes[index][:2] for index in small]}); lower the patch size."
      )
    self._padded_size = tuple(max(shape[axis] for shape in shapes) for axis in range(2))
    self.sizes = np.array([shape[:2] for shape in shapes], np.int32)

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    example = dict(self._split[index])
    for name in self._image_fields:
      image = np.asarray(example[name])
      padded = np.zeros((*self._padded_size, image.shape[-1]), image.dtype)
      padded[: image.shape[0], : image.shape[1]] = image
      example[name] = padded
    return {**example, SIZE: self.sizes[index]}


class SizedSplit(Sequence):
  """A split of unpadded images, each example given its images' `size` (the evaluation split of data whose train
  split is a `PaddedSplit`, so that both splits hold the fields of one spec)."""

  def __init__(self, split: Sequence, image_field: str = IMAGE):
    self._split, self._image_field = split, image_field

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    example = self._split[index]
    return {**example, SIZE: np.array(np.shape(example[self._image_field])[:2], np.int32)}


class SelectedSplit(Sequence):
  """The fields `names` of a split's examples, the others left out on purpose (reading only the images of a
  labelled split, say)."""

  def __init__(self, split: Sequence, names: Sequence[str]):
    self._split, self._names = split, tuple(names)

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self._split[index]
    return {name: example[name] for name in self._names}


class UnpairedSplit(Sequence):
  """Two splits of images that are not paired: side A gives "image", side B "target" (each side's examples hold
  one "image").

  A training stream visits each side in its own order, every example of each side once per epoch of that side, the
  two orders independent (see `pipeline`). Read by index (evaluation), example i is A[i mod N_A] with
  B[i mod N_B], so the split has max(N_A, N_B) examples and a fixed pairing.
  """

  side_fields = ((IMAGE,), (TARGET,))

  def __init__(self, side_a: Sequence, side_b: Sequence):
    self.sides = (side_a, _RenamedSplit(side_b, IMAGE, TARGET))

  def __len__(self) -> int:
    return max(len(side) for side in self.sides)

  def __getitem__(self, index: int) -> dict[str, Any]:
    side_a, side_b = self.sides
    return {**side_a[index % len(side_a)], **side_b[index % len(side_b)]}


class _RenamedSplit(Sequence):
  """A split of one-field examples whose field is read under another name."""

  def __init__(self, split: Sequence, stored: str, read_as: str):
    self._split, self._stored, self._read_as = split, stored, read_as

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {self._read_as: self._split[index][self._stored]}


class _ReversedPairs(Sequence):
  """A split of pairs with their input ("image") and target swapped."""

  def __init__(self, split: Sequence):
    self._split = split

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self._split[index]
    return {**example, IMAGE: example[TARGET], TARGET: example[IMAGE]}


class _FittedImages(Sequence):
  """A split's images alone, each through `fit` (a resize), as one-field examples."""

  def __init__(self, split: Sequence, fit: Callable[[np.ndarray], np.ndarray]):
    self._split, self._fit = split, fit

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {IMAGE: self._fit(np.asarray(self._split[index][IMAGE]))}


def in_memory(name: str, train: Sequence[dict[str, Any]], evaluation: Sequence[dict[str, Any]]) -> DataSource:
  """A source over in-memory lists of raw examples (tests, notebooks) with any fields: the spec is read off the
  first example (see `inferred_spec`)."""
  return DataSource(name, train, evaluation, inferred_spec([*train, *evaluation]))


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
  if data_config.reverse_pairs and not kind_of(data_config.name).pairs:
    raise errors.UserError(
        "config.data.reverse_pairs swaps the input and the target of paired folders (config.data.name='pairs:...' "
        f"or 'sidebyside:...'), not of {data_config.name!r}."
    )
  if (data_config.image_size or data_config.folder_labels) and not kind_of(data_config.name).folder_options:
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
