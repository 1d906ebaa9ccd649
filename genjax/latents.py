"""Real images in a model's latent space: image files read in the shape a run's model takes, their codes, and a
2-D projection of codes (PCA) to plot them by.

experiments/encode.py (codes of a folder or of the eval split, and their plot) and experiments/sample.py
`--from_images` (interpolating between two real images) are the command lines over it. Images are prepared as
evaluation prepares the eval split (`sampling.first_images`), so a model sees a file as it saw its test images.
"""

import dataclasses
import os

import numpy as np

from genjax import errors
from genjax import experiment
from genjax import pixels
from genjax import sampling
from genjax import writers
from genjax.data import folders
from genjax.data import sources


@dataclasses.dataclass(frozen=True)
class Images:
  """Images `[N, H, W, C]` in the model's pixel range, with where they came from and their labels (or None)."""

  images: np.ndarray
  names: list[str]
  labels: np.ndarray | None = None
  class_names: list[str] | None = None


def read_files(built: experiment.Experiment, paths: list[str]) -> Images:
  """The image files `paths`, each resized and centre-cropped to the model's square input and converted to its
  channels. Raises `UserError` for a model whose input is not a square image, or a file that cannot be read."""
  examples, unreadable = _load(built, paths)
  if unreadable:
    raise errors.UserError(f"Cannot read {unreadable[0]} as an image.")
  return Images(sampling.first_images(built, examples, len(examples)), list(paths))


def read_folder(built: experiment.Experiment, folder: str, labelled: bool) -> Images:
  """Every image under `folder` (see `read_files`); with `labelled`, each image's label is its top-level subfolder
  (classes in sorted order). Unreadable files are skipped and named in one warning."""
  folder = os.path.expanduser(folder)
  if not os.path.isdir(folder):
    raise errors.UserError(f"{folder} is not a folder.")
  names = pixels.find_images(folder)
  if labelled and any(os.sep not in name for name in names):
    raise errors.UserError(f"With labels from subfolders, every image must lie in a subfolder of {folder}.")
  examples, unreadable = _load(built, [os.path.join(folder, name) for name in names])
  pixels.warn_unreadable(unreadable, folder)
  if not examples:
    raise errors.UserError(f"{folder} holds no readable images ({', '.join(pixels.IMAGE_SUFFIXES)}).")
  read = [os.path.relpath(example["path"], folder) for example in examples]
  images = sampling.first_images(built, examples, len(examples))
  if not labelled:
    return Images(images, read)
  class_of = [name.split(os.sep)[0] for name in read]
  class_names = sorted(set(class_of))
  return Images(images, read, np.array([class_names.index(name) for name in class_of]), class_names)


def _load(built: experiment.Experiment, paths: list[str]) -> tuple[list[dict], list[str]]:
  """The readable files of `paths` as raw examples in the model's shape (with their "path"), and the others, each
  with its error."""
  height, _, channels = _square_image_shape(built)
  examples, unreadable = [], []
  for path in paths:
    try:
      examples.append({sources.IMAGE: folders.load_image(os.path.expanduser(path), channels, height), "path": path})
    except (OSError, ValueError) as e:
      unreadable.append(f"{path} ({e})")
  return examples, unreadable


def read_split(built: experiment.Experiment, split, num_images: int) -> Images:
  """The first `num_images` images of a split (all, if it has fewer), as evaluation prepares them, labelled when
  the split is."""
  count = min(num_images, len(split))
  images = sampling.first_images(built, split, count)
  labels = None
  if built.spec.has_labels:
    labels = np.array([int(split[index][sources.LABEL]) for index in range(count)])
  return Images(images, [f"#{index}" for index in range(count)], labels)


def encode(built: experiment.Experiment, state, images: np.ndarray) -> np.ndarray:
  """Codes `[N, latent_size]` of `images` (a VAE's posterior means), in batches of the evaluation batch size."""
  batch_size = built.config.eval.batch_size
  return np.concatenate(
      [sampling.encode(built, state, images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
  )


def codes_of_files(built: experiment.Experiment, state, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """The codes `[1, latent_size]` of two image files: the ends of an interpolation strip between real images."""
  if len(paths) != 2:
    raise errors.UserError(f"Interpolating between images takes two image files A,B; it was given {len(paths)}.")
  if built.trainer.encoder is None or built.trainer.decoder is None:
    raise errors.UserError(
        f"Interpolating between images needs a model that encodes and decodes (AE, VAE), not a {built.config.family}."
    )
  codes = encode(built, state, read_files(built, paths).images)
  return codes[:1], codes[1:]


def project(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The codes' first two principal components `[N, 2]`, and the share of the codes' variance each explains."""
  if len(codes) < 2:
    raise errors.UserError(f"Projecting codes needs at least 2 images; there are {len(codes)}.")
  from sklearn import decomposition  # Imported here: it takes a second, which only projecting needs.

  pca = decomposition.PCA(n_components=min(2, codes.shape[1]))
  return pca.fit_transform(codes), pca.explained_variance_ratio_


def projection_plot(images: Images, codes: np.ndarray, title: str) -> np.ndarray:
  """The codes' 2-D PCA projection, coloured by label where there are labels: an RGB uint8 image."""
  points, explained = project(codes)
  class_names = images.class_names
  if images.labels is not None and class_names is None:
    class_names = [str(label) for label in range(int(images.labels.max()) + 1)]
  axis_labels = [f"PC{index + 1} ({share:.0%} of the variance)" for index, share in enumerate(explained)]
  return writers.projection_plot(points, images.labels, class_names, title, axis_labels)


def _square_image_shape(built: experiment.Experiment) -> tuple[int, int, int]:
  if not built.spec.is_image or built.spec.data_shape[0] != built.spec.data_shape[1]:
    raise errors.UserError(
        f"Reading image files needs a model of square images; this one takes {built.spec.data_shape}."
    )
  return built.spec.data_shape
