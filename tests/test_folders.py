"""Specification of image-folder datasets (`config.data.name="folder:/path"`): your own pictures, labelled by
subfolder, prepared once and cached by the folder's contents, with unreadable files skipped and named; and a GAN
that trains on them."""

import os

import numpy as np
import pytest
from absl import logging

from conftest import tiny_config
from genjax import config_lib
from genjax import errors
from genjax import pixels
from genjax.data import folders
from genjax.data import photos
from genjax.data import sources

_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "moon.png"]


def _folder_config(root, data_dir, **changes):
  config = config_lib.image_data(f"folder:{root}", "none", (-1.0, 1.0))
  config.data_dir = str(data_dir)
  for key, value in {"image_size": 16, **changes}.items():
    config[key] = value
  return config


@pytest.fixture
def art(tmp_path):
  """cats/ (3 photographs, one in a nested folder), things/ (3, of several formats) and a corrupt file."""
  root = tmp_path / "art"
  for index, name in enumerate(_PHOTOS):
    folder = "cats/more" if index == 2 else ("cats" if index < 2 else "things")
    suffix = [".png", ".jpg", ".bmp", ".tiff", ".webp", ".png"][index]
    pixels.save_image(str(root / folder / (os.path.splitext(name)[0] + suffix)), photos.load(name)[:300, :200])
  (root / "things" / "broken.jpg").write_bytes(b"not a jpeg")
  return root


def test_labels_come_from_subfolders_and_the_split_holds_out_whole_files(art, tmp_path):
  data = sources.open_source(_folder_config(art, tmp_path / "cache", folder_labels=True, channels=1))
  assert data.spec.shapes == {"image": (16, 16, 1), "label": ()} and data.spec.num_classes == 2
  train = [data.train[index] for index in range(len(data.train))]
  test = [data.eval[index] for index in range(len(data.eval))]
  assert sorted(int(example["label"]) for example in test) == [0, 1]  # The first file of each class.
  assert sorted(int(example["label"]) for example in train) == [0, 0, 1, 1]  # The broken file is skipped.
  assert all(example["image"].dtype == np.uint8 for example in train + test)


def test_a_corrupt_file_is_skipped_and_named_in_one_warning(art, tmp_path):
  with pytest.MonkeyPatch.context() as patch:
    warnings = []
    patch.setattr(logging, "warning", lambda message, *args: warnings.append(message % args))
    sources.open_source(_folder_config(art, tmp_path / "cache"))
  assert len(warnings) == 1 and "Skipped 1 of 7 files" in warnings[0] and "things/broken.jpg" in warnings[0]


def test_dangling_and_self_referencing_symlinks_are_skipped_and_named_like_corrupt_files(art, tmp_path):
  os.symlink(tmp_path / "gone.png", art / "things" / "dangling.png")
  os.symlink("loop.png", art / "things" / "loop.png")  # Points at itself: opening it fails with ELOOP.
  os.symlink(art / "cats" / "astronaut.png", art / "things" / "alias.png")  # A working link is an image like any.
  with pytest.MonkeyPatch.context() as patch:
    warnings = []
    patch.setattr(logging, "warning", lambda message, *args: warnings.append(message % args))
    data = sources.open_source(_folder_config(art, tmp_path / "cache"))
  assert len(warnings) == 1 and "Skipped 3 of 10 files" in warnings[0]
  assert all(f"things/{name}" in warnings[0] for name in ("broken.jpg", "dangling.png", "loop.png"))
  assert len(data.train) + len(data.eval) == 7


def test_images_are_resized_and_centre_cropped(tmp_path):
  wide = np.zeros((20, 60, 3), np.uint8)
  wide[:, 20:40] = 255  # A white centre third: all that a centre crop keeps.
  for name in ("a.png", "b.png"):
    pixels.save_image(str(tmp_path / "wide" / name), wide)
  data = sources.open_source(_folder_config(tmp_path / "wide", tmp_path / "cache", image_size=10))
  image = data.eval[0]["image"]
  assert image.shape == (10, 10, 3) and image[:, 1:-1].min() > 200


def test_the_folder_is_prepared_once_and_again_when_it_changes(art, tmp_path):
  config = _folder_config(art, tmp_path / "cache")
  sources.open_source(config)
  prepared = set(os.listdir(tmp_path / "cache" / "genjax_folders"))
  sources.open_source(config)
  assert set(os.listdir(tmp_path / "cache" / "genjax_folders")) == prepared
  pixels.save_image(str(art / "things" / "new.png"), photos.load("text.png")[:100, :100])
  assert len(sources.open_source(config).train) == 6
  assert len(os.listdir(tmp_path / "cache" / "genjax_folders")) == 2


@pytest.mark.parametrize(
    "make, changes, message",
    [
        (lambda root: None, {}, "is not a folder"),
        (lambda root: root.mkdir(), {}, "holds no images"),
        (lambda root: (root.mkdir(), (root / "a.txt").write_text("text")), {}, "holds no images"),
        (lambda root: _one_image(root), {"image_size": 0}, "set config.data.image_size"),
        (lambda root: _one_image(root), {}, "needs at least 2"),
        (lambda root: _one_image(root, "loose.png"), {"folder_labels": True}, "move them into class folders"),
        (
            lambda root: (_one_image(root), _one_image(root, "b.png")),
            {"patch_size": 500, "image_size": 0},
            "needs at least 2",
        ),
    ],
)
def test_unusable_folders_are_refused_with_one_message(tmp_path, make, changes, message):
  make(tmp_path / "pictures")
  with pytest.raises(errors.UserError, match=message):
    sources.open_source(_folder_config(tmp_path / "pictures", tmp_path / "cache", **changes))


def _one_image(root, name="cats/a.png"):
  pixels.save_image(str(root / name), photos.load("coffee.png")[:64, :64])


def test_a_conditional_gan_trains_on_a_labelled_folder_and_samples_its_classes(art, tmp_path):
  from genjax import runs
  from genjax import train_loop

  config = tiny_config("gan", model__num_classes=2, eval__grids__num_images=4)
  config.data = _folder_config(art, tmp_path / "cache", image_size=28, folder_labels=True, channels=1)
  config.data.pixel_range = (-1.0, 1.0)
  config.evals = ("split", "grids")
  train_loop.run(config, str(tmp_path / "run"))
  run = runs.load(str(tmp_path / "run"))
  assert run.step == 4 and run.data.spec.num_classes == 2
  assert os.path.exists(tmp_path / "run" / "samples" / "samples_00000004.png")


def test_a_conditional_model_must_have_the_folders_number_of_classes(art, tmp_path):
  from genjax import trainers

  config = tiny_config("gan", "cifar10", model__num_classes=3, model__g_channels=(8, 4, 4), model__d_channels=(4, 8, 8))
  config.data = _folder_config(art, tmp_path / "cache", image_size=32, folder_labels=True)
  spec = sources.example_spec(config.data)
  with pytest.raises(errors.UserError, match="has 2 classes; set --config.model.num_classes=2"):
    trainers.make_trainer(config, spec)


def test_photographs_are_read_upright_as_their_exif_orientation_says(tmp_path):
  from PIL import Image

  landscape = Image.fromarray(photos.load("coffee.png")[:100, :200])
  exif = landscape.getexif()
  exif[0x0112] = 6  # "Rotate 90 degrees clockwise to display", as phones write portrait photographs.
  landscape.save(tmp_path / "portrait.jpg", exif=exif)
  assert pixels.read_image(str(tmp_path / "portrait.jpg"), 3).shape == (200, 100, 3)


def test_16_bit_images_are_rescaled_to_8_bits(tmp_path):
  from PIL import Image

  ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
  Image.fromarray(ramp).save(tmp_path / "ramp.png")
  np.testing.assert_allclose(pixels.read_image(str(tmp_path / "ramp.png"), 1)[..., 0], ramp / 257, atol=0.51)


# Pairs (two folders matched by relative path, or side by side in one file) and unpaired folders.


def _photo(name, size=32):
  return photos.load(name)[:size, :size]


def _pair_folders(root, names=("astronaut.png", "chelsea.png", "coffee.png")):
  """A/ holds photographs, B/ their negatives, under the same relative paths."""
  for index, name in enumerate(names):
    relative = os.path.join("sub" if index else "", f"{index}.png")
    pixels.save_image(str(root / "A" / relative), _photo(name))
    pixels.save_image(str(root / "B" / relative), 255 - _photo(name))
  return root / "A", root / "B"


def test_pairs_of_folders_give_each_input_its_target(tmp_path):
  folder_a, folder_b = _pair_folders(tmp_path)
  config = _pairs_config(tmp_path, folder_a, folder_b)
  config.image_size, config.patch_size = 0, 8
  data = sources.open_source(config)
  assert data.spec.image_fields == ("image", "target") and data.spec.is_sized
  for split in (data.train, data.eval):
    for index in range(len(split)):
      example = split[index]
      np.testing.assert_array_equal(example["target"], 255 - example["image"])


def test_side_by_side_files_hold_input_and_target(tmp_path):
  for index, name in enumerate(("astronaut.png", "chelsea.png")):
    pixels.save_image(str(tmp_path / "facades" / f"{index}.png"), np.concatenate([_photo(name), 255 - _photo(name)], 1))
  config = _folder_config(tmp_path / "facades", tmp_path / "cache")
  config.name = f"sidebyside:{tmp_path / 'facades'}"
  data = sources.open_source(config)
  assert data.spec.shapes == {"image": (16, 16, 3), "target": (16, 16, 3)}
  example = data.eval[0]
  np.testing.assert_allclose(example["target"].astype(int), 255 - example["image"].astype(int), atol=2)
  config.reverse_pairs = True  # Trained right to left, as facades is: the same files, the halves' roles swapped.
  reversed_example = sources.open_source(config).eval[0]
  np.testing.assert_array_equal(reversed_example["image"], example["target"])
  np.testing.assert_array_equal(reversed_example["target"], example["image"])
  config.name = f"folder:{tmp_path / 'facades'}"
  with pytest.raises(errors.UserError, match="reverse_pairs swaps the input and the target of paired folders"):
    sources.check_options(config, sources.example_spec(config))


def test_unpaired_folders_are_two_sides_of_their_own(tmp_path):
  for index, name in enumerate(_PHOTOS[:4]):
    pixels.save_image(str(tmp_path / "horses" / f"{index}.png"), _photo(name))
  for index, name in enumerate(_PHOTOS[:3]):
    pixels.save_image(str(tmp_path / "zebras" / f"{index}.png"), _photo(name))
  config = _folder_config(tmp_path / "horses", tmp_path / "cache")
  config.name = f"unpaired:{tmp_path / 'horses'},{tmp_path / 'zebras'}"
  data = sources.open_source(config)
  assert isinstance(data.train, sources.UnpairedSplit) and data.spec.image_fields == ("image", "target")
  assert [len(side) for side in data.train.sides] == [3, 2]  # Each folder split by its own rule: 1 held out.
  assert set(data.train[0]) == {"image", "target"}


def test_tfds_cycle_gan_datasets_are_unpaired_sides_resized_to_the_image_size(tmp_path, monkeypatch):
  from genjax.data import catalog

  # TFDS's cycle_gan/horse2zebra as it stores it (nothing can be downloaded here): splits trainA, trainB, testA and
  # testB of images labelled A or B.
  names = {"A": _PHOTOS[:3], "B": _PHOTOS[3:5]}
  stored = {
      split + side: [{"image": _photo(name, 40), "label": side == "B"} for name in names[side]]
      for split in ("train", "test")
      for side in "AB"
  }
  opened = []

  def open_split(name, split, data_dir, download, image_key):
    opened.append((name, split))
    return stored[split]

  monkeypatch.setattr(catalog, "open_split", open_split)
  monkeypatch.setattr(catalog, "image_features", lambda name, data_dir, image_key: ((None, None, 3), 2))
  config = _folder_config(tmp_path, tmp_path / "data", image_size=16)
  config.name = "cycle_gan/horse2zebra"
  data = sources.open_source(config)
  assert sorted(opened) == [("cycle_gan/horse2zebra", split) for split in ("testA", "testB", "trainA", "trainB")]
  assert isinstance(data.train, sources.UnpairedSplit) and [len(side) for side in data.train.sides] == [3, 2]
  assert data.spec.shapes == {"image": (16, 16, 3), "target": (16, 16, 3)} and data.spec.num_classes == 0
  example = data.eval[1]  # testA's second image with testB's second, resized, without their A/B labels.
  assert set(example) == {"image", "target"}
  np.testing.assert_array_equal(example["image"], folders.fit_image(_photo(_PHOTOS[1], 40), 16))
  np.testing.assert_array_equal(example["target"], folders.fit_image(_photo(_PHOTOS[4], 40), 16))
  config.image_size = 0
  with pytest.raises(errors.UserError, match="unpaired images are read whole, resized.*set config.data.image_size"):
    sources.open_source(config)


def _pairs_config(tmp_path, folder_a, folder_b):
  config = _folder_config(folder_a, tmp_path / "cache")
  config.name = f"pairs:{folder_a},{folder_b}"
  return config


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda a, b: os.remove(b / "sub" / "1.png"), r"1 files of .*A have no file of the same relative path in .*B"),
        (lambda a, b: os.remove(a / "0.png"), r"1 files of .*B have no file .*0.png"),
        (lambda a, b: pixels.save_image(str(b / "0.png"), _photo("coffee.png", 20)), r"The pair 0.png differs in size"),
        (lambda a, b: [os.remove(path) for path in b.rglob("*.png")], r"B holds no images"),
    ],
)
def test_unusable_pairs_are_refused_naming_the_files(tmp_path, spoil, message):
  folder_a, folder_b = _pair_folders(tmp_path)
  spoil(folder_a, folder_b)
  with pytest.raises(errors.UserError, match=message):
    sources.open_source(_pairs_config(tmp_path, folder_a, folder_b))
