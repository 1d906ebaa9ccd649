"""Image-folder datasets: your own pictures, one image per file, in pairs, or unpaired.

Four layouts, each a scheme of `config.data.name` (the registry is `sources.REGISTRY`):
- `folder:DIR`: one image per file, examples {"image"} (and "label", see Labels).
- `pairs:DIR_A,DIR_B`: an input and its target in two folders, files matched by relative path (DIR_A/x/1.png with
  DIR_B/x/1.png), examples {"image": A, "target": B}. A file on one side without its match on the other, a pair
  whose images differ in size, or an empty side is refused, naming the files.
- `sidebyside:DIR`: the pix2pix datasets' layout: each file holds a pair side by side, the input in its left half
  and the target in its right half (width 2W: two W-wide halves), examples {"image": left, "target": right}. A file
  of odd width is refused by name. (A dataset trained right to left, such as facades, stored photo | labels:
  `config.data.reverse_pairs`, which `sources` applies to both paired layouts.)
- `unpaired:DIR_A,DIR_B`: two folders of images that are not paired (CycleGAN's domains). Each side is prepared as
  a `folder:` of its own (the caches are shared with `folder:DIR_A` and `folder:DIR_B`), and the two are combined
  by `sources.UnpairedSplit`: a training stream visits each side in its own order. Whole images only
  (`image_size`), unlabelled.

- **Files.** Every image under a folder, recursively (`pixels.IMAGE_SUFFIXES`: PNG, JPEG, BMP, TIFF, WebP), read
  with Pillow (16-bit images rescaled to 8 bits, EXIF orientation applied) and converted to `config.data.channels`
  (0 keeps colour: 3).
- **Sizes.** For whole-image training (generation, translation) `config.data.image_size` > 0: each image is resized
  (bicubic, antialiased) so that its shorter side is that size, then centre-cropped to a square. For restoration
  (`config.data.patch_size` > 0) images keep their size; those smaller than a patch are skipped.
- **Labels.** With `config.data.folder_labels`, an image's label is its top-level subfolder (of DIR_A for pairs),
  classes numbered in sorted order of their names (so a conditional GAN trains on your own classes); files directly
  in the folder are then refused. Without, there are no labels.
- **Split.** By file, fixed: in each class, every tenth image in sorted path order, starting with the first, is
  "test", the others "train". A class needs two images.
- **Cache.** Prepared once into array_record files of npz records (no pickle) under
  `DATA_DIR/genjax_folders/<key>` (`config.data.data_dir`, default `~/.cache/genjax`), where the key hashes the
  folders' listings (paths, sizes, modification times) and the preparation settings: a changed folder, or other
  settings, are prepared anew. Files that cannot be read as images (broken symlinks included) are skipped and named
  in one warning; a folder that is missing or holds no images is an error.
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

SPLITS = ("train", "test")
_TEST_EVERY = 10
_FORMAT_VERSION = 1  # Part of the cache key: bump when the record layout changes.

# The layouts, named by their schemes.
FOLDER, PAIRS, SIDE_BY_SIDE, UNPAIRED = "folder", "pairs", "sidebyside", "unpaired"
_NUM_ROOTS = {FOLDER: 1, PAIRS: 2, SIDE_BY_SIDE: 1, UNPAIRED: 2}


@dataclasses.dataclass(frozen=True)
class Settings:
  """What preparation depends on, besides the files."""

  layout: str  # FOLDER, PAIRS, SIDE_BY_SIDE or UNPAIRED.
  roots: tuple[str, ...]  # Absolute; two for PAIRS and UNPAIRED (A, B).
  channels: int
  image_size: int  # > 0: resize and centre-crop to a square of this side.
  patch_size: int  # > 0: keep sizes, skip images smaller than this.
  labels: bool

  @classmethod
  def from_config(cls, data_config, layout: str) -> "Settings":
    """The settings of `config.data.name` = "LAYOUT:DIR" (or "LAYOUT:DIR_A,DIR_B")."""
    argument = data_config.name.partition(":")[2]
    parts = argument.split(",") if _NUM_ROOTS[layout] == 2 else [argument]
    if len(parts) != _NUM_ROOTS[layout] or not all(parts):
      raise errors.UserError(
          f"config.data.name={data_config.name!r} must be {layout}:"
          + ("DIR_A,DIR_B (two folders, separated by a comma)." if _NUM_ROOTS[layout] == 2 else "DIR.")
      )
    roots = tuple(os.path.abspath(os.path.expanduser(part)) for part in parts)
    settings = cls(
        layout,
        roots,
        data_config.channels or 3,
        data_config.image_size,
        data_config.patch_size,
        data_config.folder_labels,
    )
    for root in roots:
      if not os.path.isdir(root):
        raise errors.UserError(f"config.data.name={data_config.name!r}: {root} is not a folder.")
    if not settings.image_size and not settings.patch_size:
      raise errors.UserError(
          "Images from a folder have their own sizes: set config.data.image_size (resize and centre-crop, for "
          "generation) or config.data.patch_size (random patches, for restoration)."
      )
    return settings

  def unpaired_sides(self) -> tuple["Settings", "Settings"]:
    """The two folders of an unpaired layout, each as a folder of its own."""
    return tuple(dataclasses.replace(self, layout=FOLDER, roots=(root,)) for root in self.roots)


def fields(settings: Settings) -> tuple[str, ...]:
  """The image fields of an example: "image", and a pair's (or an unpaired side B's) "target"."""
  return ("image",) if settings.layout == FOLDER else ("image", "target")


def class_names(settings: Settings) -> list[str]:
  """The classes (top-level subfolders holding images) when the folder is labelled; [] otherwise."""
  if not settings.labels:
    return []
  return sorted({path.split(os.sep)[0] for path in _image_paths(settings.roots[0]) if os.sep in path})


def image_shape(settings: Settings) -> tuple[int | None, int | None, int]:
  side = settings.image_size or None
  return (side, side, settings.channels)


def open_splits(
    settings: Settings, data_dir: str | None, wanted: tuple[str, ...] = SPLITS
) -> tuple["FolderSplit", ...]:
  """The splits `wanted` (of "train", "test") of a folder or a pair layout, prepared first if the cache lacks
  them. Raises `UserError` for another split name."""
  unknown = [split for split in wanted if split not in SPLITS]
  if unknown:
    raise errors.UserError(
        f"Image folders have the splits {', '.join(SPLITS)}, not {unknown[0]!r}; set config.data.train_split and "
        "config.data.eval_split to them."
    )
  paths = _paired_paths(settings) if settings.layout == PAIRS else _image_paths(settings.roots[0])
  listing = [(root, path, *_size_and_time(os.path.join(root, path))) for root in settings.roots for path in paths]
  key = hashlib.sha256(json.dumps([_FORMAT_VERSION, dataclasses.asdict(settings), listing]).encode()).hexdigest()[:16]
  directory = os.path.join(os.path.expanduser(data_dir or os.path.join("~", ".cache", "genjax")), "genjax_folders", key)
  if not os.path.exists(os.path.join(directory, "done.json")):
    _prepare(settings, paths, directory)
  return tuple(FolderSplit(os.path.join(directory, f"{split}.array_record")) for split in wanted)


class FolderSplit(Sequence):
  """One prepared split: examples {"image": uint8 [H, W, C]} (a pair's "target" too, "label" when labelled), read
  by index."""

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


def _image_paths(root: str) -> list[str]:
  paths = pixels.find_images(root)
  if not paths:
    raise errors.UserError(f"{root} holds no images ({', '.join(pixels.IMAGE_SUFFIXES)}, searched recursively).")
  return paths


def _paired_paths(settings: Settings) -> list[str]:
  """The relative paths that both folders of a pair layout hold; `UserError` naming the files without a match."""
  (root_a, root_b), (paths_a, paths_b) = settings.roots, [_image_paths(root) for root in settings.roots]
  for root, paths, other_root, others in ((root_a, paths_a, root_b, paths_b), (root_b, paths_b, root_a, paths_a)):
    unmatched = sorted(set(paths) - set(others))
    if unmatched:
      raise errors.UserError(
          f"{len(unmatched)} files of {root} have no file of the same relative path in {other_root} "
          f"({', '.join(unmatched[:3])}{', ...' if len(unmatched) > 3 else ''}): pairs are matched by relative path."
      )
  return paths_a


def _size_and_time(path: str) -> tuple[int, int]:
  """What the cache key records of a file; (-1, -1) for one that cannot be reached (a dangling or looping symlink),
  which preparation then skips and names with the unreadable files."""
  try:
    status = os.stat(path)
  except OSError:
    return -1, -1
  return status.st_size, status.st_mtime_ns


def _prepare(settings: Settings, paths: list[str], directory: str) -> None:
  classes = class_names(settings)
  if settings.labels:
    unlabelled = [path for path in paths if os.sep not in path]
    if unlabelled:
      raise errors.UserError(
          f"With config.data.folder_labels each image's label is its subfolder, but {len(unlabelled)} images lie "
          f"directly in {settings.roots[0]} (e.g. {unlabelled[0]}): move them into class folders."
      )
  logging.info("Preparing %d images of %s into %s.", len(paths), ",".join(settings.roots), directory)
  examples, skipped = [], []
  for path in paths:
    try:
      images = _read_example(settings, path)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
      skipped.append(f"{path} ({type(e).__name__}: {e})")
      continue
    height, width = images[0].shape[:2]
    if settings.patch_size and min(height, width) < settings.patch_size:
      skipped.append(f"{path} ({height}x{width}, smaller than config.data.patch_size)")
      continue
    example = dict(zip(fields(settings), images))
    if settings.labels:
      example["label"] = np.int64(classes.index(path.split(os.sep)[0]))
    examples.append((example.get("label", 0), example))
  if skipped:
    logging.warning(
        "Skipped %d of %d files in %s:\n  %s", len(skipped), len(paths), ",".join(settings.roots), "\n  ".join(skipped)
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


def _read_example(settings: Settings, path: str) -> list[np.ndarray]:
  """The images of one example at relative `path`, in the order of `fields`, as uint8 `[H, W, channels]` of one
  height and width. Raises OSError for an unreadable file, `UserError` for a pair whose images differ in size."""
  if settings.layout == PAIRS:
    images = [pixels.read_image(os.path.join(root, path), settings.channels) for root in settings.roots]
    (image_a, root_a), (image_b, root_b) = zip(images, settings.roots)
    if image_a.shape[:2] != image_b.shape[:2]:
      raise errors.UserError(
          f"The pair {path} differs in size: {image_a.shape[0]}x{image_a.shape[1]} in {root_a}, "
          f"{image_b.shape[0]}x{image_b.shape[1]} in {root_b}; the images of a pair must have one size."
      )
  elif settings.layout == SIDE_BY_SIDE:
    both = pixels.read_image(os.path.join(settings.roots[0], path), settings.channels)
    width = both.shape[1]
    if width % 2:
      raise errors.UserError(
          f"{os.path.join(settings.roots[0], path)} is {width} pixels wide; a side-by-side pair holds two halves "
          "of one width (input | target), so its width must be even."
      )
    images = [both[:, : width // 2], both[:, width // 2 :]]
  else:
    images = [pixels.read_image(os.path.join(settings.roots[0], path), settings.channels)]
  return [fit_image(image, settings.image_size) for image in images]


def load_image(path: str, channels: int, image_size: int = 0) -> np.ndarray:
  """The image file at `path` as uint8 `[H, W, channels]`; with `image_size` > 0 resized (bicubic, antialiased) so
  that its shorter side is that size, then centre-cropped to a square. Raises OSError for an unreadable file."""
  return fit_image(pixels.read_image(path, channels), image_size)


def fit_image(image: np.ndarray, image_size: int) -> np.ndarray:
  """uint8 `image [H, W, C]` resized and centre-cropped as `load_image` says (unchanged when `image_size` is 0)."""
  if not image_size:
    return image
  height, width, channels = image.shape
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
      where = f"class {class_names(settings)[label]!r}" if settings.labels else ",".join(settings.roots)
      raise errors.UserError(
          f"{where} has {len(in_class)} readable image(s) of a usable size; it needs at least 2 (one is held out "
          "for evaluation)."
      )
    for position, example in enumerate(in_class):
      splits["test" if position % _TEST_EVERY == 0 else "train"].append(example)
  return splits
