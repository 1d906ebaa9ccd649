"""Image-folder datasets: `config.data.name = "folder:/path/to/images"` trains on your own pictures.

- **Files.** Every image under the folder, recursively (`pixels.IMAGE_SUFFIXES`: PNG, JPEG, BMP, TIFF, WebP), read
  with Pillow and converted to `config.data.channels` (0 keeps colour: 3).
- **Sizes.** For whole-image training (generation) `config.data.image_size` > 0: each image is resized (bicubic,
  antialiased) so that its shorter side is that size, then centre-cropped to a square. For restoration
  (`config.data.patch_size` > 0) images keep their size; those smaller than a patch are skipped.
- **Labels.** With `config.data.folder_labels`, an image's label is its top-level subfolder, classes numbered in
  sorted order of their names (so a conditional GAN trains on your own classes); files directly in the folder are
  then refused. Without, there are no labels.
- **Split.** By file, fixed: in each class, every tenth image in sorted path order, starting with the first, is
  "test", the others "train". A class needs two images.
- **Cache.** Prepared once into array_record files of npz records (no pickle) under
  `DATA_DIR/genjax_folders/<key>` (`config.data.data_dir`, default `~/.cache/genjax`), where the key hashes the
  folder's listing (paths, sizes, modification times) and the preparation settings: a changed folder, or other
  settings, are prepared anew. Files that cannot be read as images are skipped and named in one warning; a folder
  that is missing or holds no images is an error.
"""

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
from absl import logging
from array_record.python import array_record_data_source
from array_record.python import array_record_module
from PIL import Image

from genjax import errors
from genjax import pixels

PREFIX = "folder:"
SPLITS = ("train", "test")
_TEST_EVERY = 10
_FORMAT_VERSION = 1  # Part of the cache key: bump when the record layout changes.


def is_folder(name: str) -> bool:
  return name.startswith(PREFIX)


@dataclasses.dataclass(frozen=True)
class Settings:
  """What preparation depends on, besides the files."""

  root: str
  channels: int
  image_size: int  # > 0: resize and centre-crop to a square of this side.
  patch_size: int  # > 0: keep sizes, skip images smaller than this.
  labels: bool

  @classmethod
  def from_config(cls, data_config) -> "Settings":
    root = os.path.abspath(os.path.expanduser(data_config.name[len(PREFIX) :]))
    settings = cls(
        root, data_config.channels or 3, data_config.image_size, data_config.patch_size, data_config.folder_labels
    )
    if not os.path.isdir(root):
      raise errors.UserError(f"config.data.name={data_config.name!r}: {root} is not a folder.")
    if not settings.image_size and not settings.patch_size:
      raise errors.UserError(
          "Images from a folder have their own sizes: set config.data.image_size (resize and centre-crop, for "
          "generation) or config.data.patch_size (random patches, for restoration)."
      )
    return settings


def class_names(settings: Settings) -> list[str]:
  """The classes (top-level subfolders holding images) when the folder is labelled; [] otherwise."""
  if not settings.labels:
    return []
  return sorted({path.split(os.sep)[0] for path in _image_paths(settings) if os.sep in path})


def image_shape(settings: Settings) -> tuple[int | None, int | None, int]:
  side = settings.image_size or None
  return (side, side, settings.channels)


def open_splits(settings: Settings, data_dir: str | None) -> tuple["FolderSplit", "FolderSplit"]:
  """The train and test splits of the folder, prepared first if the cache lacks them."""
  paths = _image_paths(settings)
  listing = [(path, *_size_and_time(os.path.join(settings.root, path))) for path in paths]
  key = hashlib.sha256(json.dumps([_FORMAT_VERSION, dataclasses.asdict(settings), listing]).encode()).hexdigest()[:16]
  directory = os.path.join(os.path.expanduser(data_dir or os.path.join("~", ".cache", "genjax")), "genjax_folders", key)
  if not os.path.exists(os.path.join(directory, "done.json")):
    _prepare(settings, paths, directory)
  return tuple(FolderSplit(os.path.join(directory, f"{split}.array_record")) for split in SPLITS)


class FolderSplit(Sequence):
  """One prepared split: examples {"image": uint8 [H, W, C]} (and "label" when labelled), read by index."""

  def __init__(self, path: str):
    self._path = path
    self._records = array_record_data_source.ArrayRecordDataSource([path])

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(self._records[index]), allow_pickle=False) as record:
      return {name: record[name] for name in record.files}

  def __reduce__(self):  # Grain's worker processes reopen the file instead of pickling a reader.
    return FolderSplit, (self._path,)


def _image_paths(settings: Settings) -> list[str]:
  paths = pixels.find_images(settings.root)
  if not paths:
    raise errors.UserError(
        f"{settings.root} holds no images ({', '.join(pixels.IMAGE_SUFFIXES)}, searched recursively)."
    )
  return paths


def _size_and_time(path: str) -> tuple[int, int]:
  status = os.stat(path)
  return status.st_size, status.st_mtime_ns


def _prepare(settings: Settings, paths: list[str], directory: str) -> None:
  classes = class_names(settings)
  if settings.labels:
    unlabelled = [path for path in paths if os.sep not in path]
    if unlabelled:
      raise errors.UserError(
          f"With config.data.folder_labels each image's label is its subfolder, but {len(unlabelled)} images lie "
          f"directly in {settings.root} (e.g. {unlabelled[0]}): move them into class folders."
      )
  logging.info("Preparing %d images of %s into %s.", len(paths), settings.root, directory)
  examples, skipped = [], []
  for path in paths:
    try:
      image = load_image(os.path.join(settings.root, path), settings.channels, settings.image_size)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
      skipped.append(f"{path} ({type(e).__name__}: {e})")
      continue
    if settings.patch_size and min(image.shape[:2]) < settings.patch_size:
      skipped.append(f"{path} ({image.shape[0]}x{image.shape[1]}, smaller than config.data.patch_size)")
      continue
    example = {"image": image}
    if settings.labels:
      example["label"] = np.int64(classes.index(path.split(os.sep)[0]))
    examples.append((example.get("label", 0), example))
  if skipped:
    logging.warning(
        "Skipped %d of %d files in %s:\n  %s", len(skipped), len(paths), settings.root, "\n  ".join(skipped)
    )
  splits = _split(examples, settings)
  staging = tempfile.mkdtemp(prefix=".preparing-", dir=_make_parent(directory))
  try:
    for split, split_examples in splits.items():
      writer = array_record_module.ArrayRecordWriter(os.path.join(staging, f"{split}.array_record"), "group_size:1")
      for example in split_examples:
        buffer = io.BytesIO()
        np.savez(buffer, **example)
        writer.write(buffer.getvalue())
      writer.close()
    summary = {split: len(split_examples) for split, split_examples in splits.items()}
    with open(os.path.join(staging, "done.json"), "w") as f:
      json.dump(
          {"settings": dataclasses.asdict(settings), "classes": classes, "examples": summary, "skipped": skipped}, f
      )
    try:
      os.rename(staging, directory)
    except OSError:  # Another process prepared the same folder meanwhile: keep theirs.
      shutil.rmtree(staging)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _make_parent(directory: str) -> str:
  parent = os.path.dirname(directory)
  try:
    os.makedirs(parent, exist_ok=True)
  except OSError as e:
    raise errors.UserError(f"Cannot create {parent} for the prepared folder ({e}); set config.data.data_dir.") from e
  return parent


def load_image(path: str, channels: int, image_size: int = 0) -> np.ndarray:
  """The image file at `path` as uint8 `[H, W, channels]`; with `image_size` > 0 resized (bicubic, antialiased) so
  that its shorter side is that size, then centre-cropped to a square. Raises OSError for an unreadable file."""
  image = pixels.read_image(path, channels)
  if not image_size:
    return image
  height, width = image.shape[:2]
  scale = image_size / min(height, width)
  size = (max(image_size, round(width * scale)), max(image_size, round(height * scale)))
  resized = np.asarray(Image.fromarray(image.squeeze(-1) if channels == 1 else image).resize(size, Image.BICUBIC))
  top, left = (size[1] - image_size) // 2, (size[0] - image_size) // 2
  cropped = resized[top : top + image_size, left : left + image_size]
  return cropped.reshape(image_size, image_size, channels)


def _split(examples: list[tuple[int, dict]], settings: Settings) -> dict[str, list[dict]]:
  """Every tenth image of each class (in path order), starting with the first, is "test"."""
  splits = {split: [] for split in SPLITS}
  for label in range(len(class_names(settings)) or 1):
    in_class = [example for example_label, example in examples if example_label == label]
    if len(in_class) < 2:
      where = f"class {class_names(settings)[label]!r}" if settings.labels else settings.root
      raise errors.UserError(
          f"{where} has {len(in_class)} readable image(s) of a usable size; it needs at least 2 (one is held out "
          "for evaluation)."
      )
    for position, example in enumerate(in_class):
      splits["test" if position % _TEST_EVERY == 0 else "train"].append(example)
  return splits
