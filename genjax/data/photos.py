"""TFDS builder `photos`: the natural photographs that ship with scikit-image, for offline restoration work.

The split is by image, fixed and documented, so that no test image shares content with a training image:

  test:  camera, chelsea, coffee, rocket (a grey portrait, a cat, a still life and an outdoor scene)
  train: astronaut, brick, cell, clock_motion, coins, grass, gravel, hubble_deep_field, ihc, moon,
         motorcycle_left, motorcycle_right (the two halves of one stereo pair, both in train), page, retina, text

Images keep their native sizes (172x448 to 1411x1411); grey ones are stored with their value in all three channels
(`config.data.channels=1` takes the luma back, exactly). Importing this module registers the builder with TFDS.
Only scikit-image's data files are read; its Python API is not used.
"""

import importlib.util
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

SPLITS = {
    "train": (
        "astronaut.png",
        "brick.png",
        "cell.png",
        "clock_motion.png",
        "coins.png",
        "grass.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "moon.png",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "page.png",
        "retina.jpg",
        "text.png",
    ),
    "test": ("camera.png", "chelsea.png", "coffee.png", "rocket.jpg"),
}


def bundled_directory() -> pathlib.Path:
  """scikit-image's data folder, found without importing scikit-image."""
  spec = importlib.util.find_spec("skimage")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("photos needs the scikit-image package (pip install scikit-image), which ships them.")
  return pathlib.Path(spec.submodule_search_locations[0]) / "data"


def load(name: str) -> np.ndarray:
  """One photograph as uint8 `[H, W, 3]`."""
  return np.asarray(Image.open(bundled_directory() / name).convert("RGB"))


class Photos(tfds.core.GeneratorBasedBuilder):
  """Natural photographs bundled with scikit-image: 15 train, 4 test, split by image."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: scikit-image 0.26's photographs, split by image."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3))}),
        homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the files ship with scikit-image.
    return {split: self._generate_examples(names) for split, names in SPLITS.items()}

  def _generate_examples(self, names):
    for name in names:
      # A Pillow image, which TFDS encodes with Pillow: given an array, it imports TensorFlow to encode it.
      yield name, {"image": Image.fromarray(load(name))}
