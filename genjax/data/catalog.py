"""The TFDS catalogue: dataset name -> prepared array_record split -> random-access `tfds.data_source`.

Owns preparation (download and conversion to array_record, which needs TensorFlow; through TFDS's builder API,
which, unlike the `tfds build` command, needs no Apache Beam for image datasets; one process at a time where several
share a data_dir) and every user-facing error about data: unknown names, missing or unprepared data, impossible
downloads. Reading a prepared split goes through
`tfds.data_source` and needs no TensorFlow. A dataset prepared in the data_dir loads by its name even when no
catalogue holds its code (a user's own builder).
"""

import contextlib
import difflib
import functools
import glob
import io
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import filelock
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from genjax import errors
from genjax.data import mnist5k
from genjax.data import photos

# Datasets that ship with genjax and need no network to prepare.
BUNDLED = {"mnist5k": mnist5k.Mnist5k, "photos": photos.Photos}

_OFFLINE_HELP = (
    "Offline alternatives: use the bundled dataset (--config.data.name=mnist5k, or a config's :runlocal), or "
    "prepare the dataset on a machine with internet access (`python experiments/prepare_data.py {name} "
    "--data_dir=DIR`) and copy DIR/{name} into {data_dir}."
)


@contextlib.contextmanager
def _removing_tfds_temporary_directories():
  """Removes the empty directories that TFDS's DatasetInfo.initialize_from_bucket makes with
  tempfile.mkdtemp("tfds") whenever a builder of an unprepared dataset is made, and (in TFDS 4.9) never removes."""
  pattern = os.path.join(tempfile.gettempdir(), "tmp*tfds")
  before = set(glob.glob(pattern))
  try:
    yield
  finally:
    for directory in set(glob.glob(pattern)) - before:
      if os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)


@_removing_tfds_temporary_directories()
def open_split(name: str, split: str, data_dir: str | None, download: bool, image_key: str = "image"):
  """Returns the random-access TFDS data source of `name[split]`, preparing it first if needed.

  Raises `UserError` for an unknown dataset or split, for data that is absent while `download` is False, and for a
  download or preparation that fails (the message names the dataset, the data_dir and the offline alternatives).
  """
  builder = _builder(name, data_dir)
  _check_image_feature(builder, name, image_key)
  builder = _prepared(builder, name, data_dir, download)
  check_split(name, split, sorted(builder.info.splits.keys()))
  try:
    source = builder.as_data_source(split=split)
    # The same records with the images left encoded: what reading the labels alone needs.
    undecoded = functools.partial(
        builder.as_data_source, split=split, decoders={image_key: tfds.decode.SkipDecoding()}
    )
    return _ImagesAndLabels(source, image_key, "label" in builder.info.features, undecoded)
  except NotImplementedError as e:
    raise errors.UserError(
        f"Dataset {name!r} in {builder.data_dir} was prepared in a format that grain cannot read "
        f"({e}). Move {builder.data_dir} aside and prepare it again as array_record: "
        f"`python experiments/prepare_data.py {name} --data_dir={data_dir or '~/tensorflow_datasets'}`."
    ) from e


@_removing_tfds_temporary_directories()
def prepare(name: str, data_dir: str | None, manual_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """Downloads and prepares dataset `name` as array_record in `data_dir` (TFDS's default when None), unless it is
  prepared there already, and returns its builder. `manual_dir` (default DATA_DIR/downloads/manual) holds the files
  of a dataset that TFDS cannot download itself (its MANUAL_DOWNLOAD_INSTRUCTIONS say which). Raises `UserError`
  as `open_split` does."""
  return _prepared(_builder(name, data_dir), name, data_dir, download=True, manual_dir=manual_dir)


def check_split(name: str, split: str, known_splits: list[str]) -> None:
  if split not in known_splits:
    raise errors.UserError(
        f"Dataset {name!r} has no split {split!r}; it has: {', '.join(known_splits)}. TFDS slicing such as "
        "'train[:90%]' is not accepted here: name a whole split."
    )


@_removing_tfds_temporary_directories()
def image_features(name: str, data_dir: str | None, image_key: str = "image") -> tuple[tuple, int]:
  """The image shape (H, W, C) of dataset `name`'s `image_key` feature (None for sides that vary) and its number of
  classes (0 without a `label` feature), from metadata: nothing is prepared or read."""
  builder = _builder(name, data_dir)
  _check_image_feature(builder, name, image_key)
  features = builder.info.features
  num_classes = features["label"].num_classes if "label" in features else 0
  return tuple(features[image_key].shape), num_classes


def _check_image_feature(builder: tfds.core.DatasetBuilder, name: str, image_key: str) -> None:
  if image_key not in builder.info.features:
    raise errors.UserError(
        f"Dataset {name!r} has no {image_key!r} feature (it has: {', '.join(builder.info.features.keys())}); genjax "
        "trains on image datasets (config.data.image_key names the feature that holds the images)."
    )


class _ImagesAndLabels:
  """A split's examples as genjax's sources declare them: the `image_key` feature (div2k's "hr") as "image", and
  the "label" when the dataset has one; other features (ids, file names, attributes) are left out, as the spec
  that `image_features` gives does not declare them."""

  def __init__(self, source, image_key: str, labelled: bool, undecoded: Callable[[], Any]):
    self._source, self._image_key, self._labelled, self._undecoded = source, image_key, labelled, undecoded

  def __len__(self) -> int:
    return len(self._source)

  def _example(self, stored: dict) -> dict:
    return {"image": stored[self._image_key], **({"label": stored["label"]} if self._labelled else {})}

  def __getitem__(self, index: int) -> dict:
    return self._example(self._source[index])

  def __iter__(self):
    # Iteration by __getitem__ would stop at an IndexError; array_record raises ValueError past the end.
    return (self[index] for index in range(len(self)))

  def __getitems__(self, indices) -> list[dict]:
    return [self._example(stored) for stored in self._source.__getitems__(indices)]

  def labels(self) -> np.ndarray:
    """Every example's label, read without decoding its image (MNIST's: 3 times faster than whole examples)."""
    stored = self._undecoded().__getitems__(range(len(self)))
    return np.array([int(example["label"]) for example in stored], np.int64)


def _builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  # The catalogue that ships with TFDS, genjax's bundled builders included.
  catalogue = tfds.list_builders(with_community_datasets=False)
  if name.split("/")[0].split(":")[0] in catalogue:
    return tfds.builder(name, data_dir=data_dir, file_format="array_record")
  try:
    # A dataset prepared in data_dir by code that the catalogue does not hold (a user's own builder, a newer TFDS):
    # the dataset_info.json and features.json written beside its records are all that reading it needs.
    return tfds.core.read_only_builder.builder_from_files(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    # Refused here: TFDS itself would go on to look the name up among community datasets on the network.
    near = difflib.get_close_matches(name, catalogue, n=5)
    prepared = _prepared_datasets(data_dir)
    raise errors.UserError(
        f"Unknown dataset {name!r}. "
        + (f"Did you mean: {', '.join(near)}? " if near else "")
        + f"Bundled with genjax (offline): {', '.join(BUNDLED)}; 2-D toy data: ring, grid. "
        + (f"Already prepared in {data_dir}: {', '.join(prepared)}. " if prepared else "")
        + f"Any of the {len(catalogue)} TFDS datasets can be named "
        "(https://www.tensorflow.org/datasets/catalog/overview)."
    ) from None


def _prepared(
    builder: tfds.core.DatasetBuilder, name: str, data_dir: str | None, download: bool, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
  """`builder`, or, where its dataset is not prepared yet, the builder of the dataset once prepared. Processes that
  share a data_dir prepare a dataset one at a time (a file lock beside it), and the others then read what the first
  prepared: trainers, sweep trials or test workers starting together on an unprepared dataset would otherwise each
  convert it, and all but the first fail to move their copy into place."""
  if builder.is_prepared():
    return builder
  with preparation_lock(str(builder.data_dir_root), builder.name):
    builder = _builder(name, data_dir)  # A builder made before another process prepared the data knows no splits.
    if not builder.is_prepared():
      _prepare(builder, name, download, manual_dir)
  return builder


def preparation_lock(data_dir: str, dataset: str) -> filelock.FileLock:
  """The lock that a process holds while it prepares `dataset` in `data_dir`."""
  os.makedirs(data_dir, exist_ok=True)
  return filelock.FileLock(os.path.join(data_dir, f".{dataset}.lock"))


def _prepare(builder: tfds.core.DatasetBuilder, name: str, download: bool, manual_dir: str | None = None) -> None:
  data_dir = str(builder.data_dir_root)  # DATA_DIR, whatever the dataset's config and version subfolders.
  offline_help = _OFFLINE_HELP.format(name=name, data_dir=data_dir)
  if not download and name not in BUNDLED:
    raise errors.UserError(
        f"Dataset {name!r} is not prepared in {data_dir} and downloads are off (config.data.download=False). "
        + offline_help
    )
  manual_dir = os.path.expanduser(manual_dir or os.path.join(data_dir, "downloads", "manual"))
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS and not (os.path.isdir(manual_dir) and os.listdir(manual_dir)):
    raise errors.UserError(
        f"Dataset {name!r} is made from files that you download yourself, and {manual_dir} holds none. TFDS says: "
        f"{' '.join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())} Then prepare it: `python "
        f"experiments/prepare_data.py {name} --data_dir={data_dir} --manual_dir=FOLDER_WITH_THOSE_FILES`."
    )
  if name not in BUNDLED and not builder.MANUAL_DOWNLOAD_INSTRUCTIONS and not _can_reach(_TFDS_MIRROR):
    raise errors.UserError(
        f"Dataset {name!r} is not prepared in {data_dir} and cannot be downloaded: this machine cannot reach "
        f"{_TFDS_MIRROR[0]}. " + offline_help
    )
  try:
    with _tfds_narration(name, data_dir):
      builder.download_and_prepare(
          file_format="array_record", download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
      )
  except Exception as e:  # Network, checksum and disk failures all surface here, in many exception types.
    cause = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if name in BUNDLED:  # Nothing to download: the files it is made from, or the disk, are the problem.
      raise errors.UserError(
          f"Could not prepare the bundled dataset {name!r} into {data_dir}: {cause}. It is built from files of an "
          "installed package; reinstall the requirements (pip install -r requirements.txt) and check that "
          f"{data_dir} is writable."
      ) from e
    raise errors.UserError(
        f"Could not download and prepare dataset {name!r} into {data_dir}: {cause} {offline_help}"
    ) from e


@contextlib.contextmanager
def _tfds_narration(name: str, data_dir: str):
  """While TFDS prepares `name`: TFDS prints its own lines on stdout (sizes, "Unknown size" for a dataset that is
  generated) and draws progress bars on stderr. A bundled dataset takes seconds, so genjax says what happens
  instead; a download can take hours, so TFDS's lines stay and its bars are drawn on a terminal, not into a log file
  as carriage returns and escapes."""
  bundled = name in BUNDLED
  tfds.display_progress_bar(not bundled and sys.stderr.isatty())
  start = time.monotonic()
  if bundled:
    logging.info("Preparing the bundled dataset %s into %s (once).", name, data_dir)
  with contextlib.redirect_stdout(io.StringIO()) if bundled else contextlib.nullcontext():
    yield
  logging.info("Prepared %s in %.0f s.", name, time.monotonic() - start)


# TFDS retries every URL ten times with backoff, which keeps an offline user waiting for many minutes before the
# error; one short connection attempt to the host that TFDS tries first answers the same question in seconds.
_TFDS_MIRROR = ("storage.googleapis.com", 443)


def _can_reach(address: tuple[str, int], timeout_s: float = 10.0) -> bool:
  try:
    socket.create_connection(address, timeout=timeout_s).close()
    return True
  except OSError:
    return False


def _prepared_datasets(data_dir: str | None) -> list[str]:
  root = os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR)
  if not os.path.isdir(root):
    return []
  return sorted(d for d in os.listdir(root) if d != "downloads" and os.path.isdir(os.path.join(root, d)))
