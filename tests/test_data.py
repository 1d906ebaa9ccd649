"""Specification of genjax.data's sources: the bundled mnist5k builder, the 2-D toy mixtures, the catalogue's errors
and the example specs that sources declare (the input paths are specified in test_pipeline.py)."""

import concurrent.futures
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_config
from genjax import errors
from genjax import pixels
from genjax.data import catalog
from genjax.data import mnist5k
from genjax.data import sources
from genjax.data import toy2d


def test_mnist5k_has_a_fixed_stratified_split(tfds_data_dir):
  train = catalog.open_split("mnist5k", "train", tfds_data_dir, download=False)
  test = catalog.open_split("mnist5k", "test", tfds_data_dir, download=False)
  assert (len(train), len(test)) == (4000, 1000)
  train_labels = [train[i]["label"] for i in range(len(train))]
  assert np.bincount(train_labels).tolist() == [400] * 10
  assert np.bincount([test[i]["label"] for i in range(len(test))]).tolist() == [100] * 10
  np.testing.assert_array_equal(train.labels(), train_labels)  # Read alone, the images left undecoded.
  example = train[0]
  assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8


def test_mnist5k_split_is_disjoint_and_covers_the_file():
  _, labels = mnist5k.load_rows(mnist5k.bundled_csv_path())
  split = mnist5k.split_indices(labels)
  assert len(np.intersect1d(split["train"], split["test"])) == 0
  assert len(np.union1d(split["train"], split["test"])) == 5000


def test_a_process_that_finds_a_dataset_being_prepared_waits_and_reads_it_without_preparing_again(
    tmp_path, monkeypatch
):
  preparations, waiting = [], threading.Event()
  monkeypatch.setattr(catalog, "_prepare", lambda *args, **kwargs: preparations.append(args))
  lock = catalog.preparation_lock
  monkeypatch.setattr(catalog, "preparation_lock", lambda *args: waiting.set() or lock(*args))
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    with lock(str(tmp_path), "mnist5k"):
      opened = pool.submit(catalog.open_split, "mnist5k", "test", str(tmp_path), download=False)
      assert waiting.wait(timeout=60)  # It found the dataset unprepared and asks for the lock this test holds.
      mnist5k.Mnist5k(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")  # "Another process".
      assert not opened.done()
    assert len(opened.result(timeout=60)) == 1000 and preparations == []


def test_unknown_dataset_names_the_bundled_one_and_close_matches(tmp_path):
  with pytest.raises(errors.UserError, match=r"Unknown dataset 'mnistt'.*mnist.*mnist5k"):
    catalog.open_split("mnistt", "train", str(tmp_path), download=True)


class _Sketches(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A user's own dataset: its code is in no catalogue that genjax sees, only its prepared files are on disk."""

  name = "my_sketches"
  VERSION = tfds.core.Version("1.0.0")

  def _info(self) -> tfds.core.DatasetInfo:
    image, label = tfds.features.Image(shape=(8, 8, 1)), tfds.features.ClassLabel(num_classes=2)
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"image": image, "label": label}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(6), "test": self._generate_examples(2)}

  def _generate_examples(self, count):
    for index in range(count):
      yield index, {"image": np.full((8, 8, 1), index, np.uint8), "label": index % 2}


def test_a_dataset_prepared_in_the_data_dir_loads_though_no_catalogue_holds_it(tmp_path):
  _Sketches(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
  assert "my_sketches" not in tfds.list_builders(with_community_datasets=False)
  assert catalog.image_features("my_sketches", str(tmp_path)) == ((8, 8, 1), 2)
  train = catalog.open_split("my_sketches", "train", str(tmp_path), download=False)
  assert len(train) == 6 and sorted(int(train[index]["image"][0, 0, 0]) for index in range(6)) == list(range(6))


def test_unknown_split_lists_the_splits(tfds_data_dir):
  with pytest.raises(errors.UserError, match="has no split 'validation'; it has: test, train"):
    catalog.open_split("mnist5k", "validation", tfds_data_dir, download=False)


def test_missing_data_with_downloads_off_names_dataset_and_data_dir(tmp_path):
  with pytest.raises(errors.UserError, match=rf"'mnist' is not prepared in {tmp_path}.*mnist5k"):
    catalog.open_split("mnist", "train", str(tmp_path), download=False)


def test_impossible_download_is_explained(tmp_path, monkeypatch):
  monkeypatch.setattr(catalog, "_can_reach", lambda address: False)
  with pytest.raises(errors.UserError, match=rf"'fashion_mnist' .*{tmp_path}.*cannot be downloaded.*mnist5k"):
    catalog.open_split("fashion_mnist", "train", str(tmp_path), download=True)


def test_preparing_a_dataset_offline_gives_one_message_naming_the_route_that_works_from_this_install(
    tmp_path, monkeypatch
):
  monkeypatch.setattr(catalog, "_can_reach", lambda address: False)
  with pytest.raises(errors.UserError) as refusal:
    catalog.prepare("fashion_mnist", str(tmp_path))
  message = str(refusal.value)
  assert f"'fashion_mnist' is not prepared in {tmp_path} and cannot be downloaded" in message
  assert "python experiments/prepare_data.py fashion_mnist --data_dir=DIR" in message and "tfds build" not in message
  assert not (tmp_path / "fashion_mnist").exists()


def test_preparing_the_bundled_dataset_says_what_happens_without_tfds_narration(tmp_path, capfd):
  builder = catalog.prepare("mnist5k", str(tmp_path))
  assert builder.is_prepared() and {split: info.num_examples for split, info in builder.info.splits.items()} == {
      "train": 4000,
      "test": 1000,
  }
  stdout, stderr = capfd.readouterr()
  assert stdout == "" and "Unknown size" not in stderr and "\x1b[" not in stderr and "\r" not in stderr
  assert catalog.prepare("mnist5k", str(tmp_path)).data_dir == builder.data_dir  # Prepared already: left as it is.


class HandDrawnSketches(tfds.core.GeneratorBasedBuilder):
  """A catalogue dataset made from files that users download themselves (as imagenet2012 is): one PNG per example
  in the manual_dir."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Draw some sketches\n  and save them as PNG files."

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1))})
    return tfds.core.DatasetInfo(builder=self, features=features)

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(sorted(dl_manager.manual_dir.glob("*.png")))}

  def _generate_examples(self, paths):
    for path in paths:
      yield path.name, {"image": path}


def test_a_dataset_made_from_files_downloaded_by_hand_is_prepared_from_the_manual_dir(tmp_path, monkeypatch):
  monkeypatch.setattr(catalog, "_can_reach", lambda address: False)  # Nothing is downloaded: the files are here.
  with pytest.raises(errors.UserError, match=r"holds none. TFDS says: Draw some sketches and save them as PNG files."):
    catalog.prepare("hand_drawn_sketches", str(tmp_path / "tfds"), str(tmp_path / "sketches"))
  for index in range(3):
    pixels.save_image(str(tmp_path / "sketches" / f"{index}.png"), np.full((8, 8, 1), index, np.uint8))
  catalog.prepare("hand_drawn_sketches", str(tmp_path / "tfds"), str(tmp_path / "sketches"))
  assert len(catalog.open_split("hand_drawn_sketches", "train", str(tmp_path / "tfds"), download=False)) == 3


def test_dataset_without_images_is_refused(tmp_path):
  with pytest.raises(errors.UserError, match="'imdb_reviews' has no 'image' feature"):
    catalog.open_split("imdb_reviews", "train", str(tmp_path), download=False)


def test_sources_declare_their_example_spec(tfds_data_dir):
  config = tiny_config("vae")
  config.data.data_dir = tfds_data_dir
  mnist = sources.open_source(config.data)
  assert mnist.spec == sources.ExampleSpec.images((28, 28, 1), num_classes=10)
  assert (len(mnist.train), len(mnist.eval), mnist.mixture) == (4000, 1000, None)
  ring = sources.open_source(tiny_config("toy2d", "dataset=ring").data)
  assert ring.spec == sources.ExampleSpec.points(2, num_classes=8) and ring.mixture is toy2d.MIXTURES["ring"]


@pytest.mark.parametrize(
    "name, num_modes, nearest_neighbour_spacing, std",
    [("ring", 8, 2 * 2.0 * np.sin(np.pi / 8), 0.02), ("grid", 25, 2.0, 0.05)],
)
def test_toy_mixtures_have_the_published_geometry(name, num_modes, nearest_neighbour_spacing, std):
  split = toy2d.open_split(name, "train")
  centers = split.mixture.centers
  assert centers.shape == (num_modes, 2)
  pairwise = np.linalg.norm(centers[:, None] - centers[None], axis=-1) + np.eye(num_modes) * 1e9
  np.testing.assert_allclose(pairwise.min(axis=1), nearest_neighbour_spacing)
  offsets = split.points - centers[split.labels]
  np.testing.assert_allclose(offsets.std(axis=0), std, rtol=0.02)
  assert np.bincount(split.labels).min() > 0.9 * len(split) / num_modes  # Equally weighted modes.


def test_toy_splits_are_fixed_and_differ_from_each_other():
  first, again = (toy2d.open_split("grid", "test") for _ in range(2))
  np.testing.assert_array_equal(first.points, again.points)
  assert len(first) == 2_500
  train = toy2d.open_split("grid", "train")
  train_points = {tuple(point) for point in train.points}
  assert not any(tuple(point) in train_points for point in first.points)


def test_sources_come_from_one_registry_by_name_or_scheme():
  assert sources.kind_of("ring") is sources.kind_of("grid") is sources.REGISTRY["ring"]
  for scheme in ("folder:", "pairs:", "sidebyside:", "unpaired:"):
    assert sources.kind_of(f"{scheme}/some/where") is sources.REGISTRY[scheme]
  tfds_kind = sources.kind_of("mnist5k")
  assert sources.kind_of("mnist:3.0.1") is tfds_kind and tfds_kind not in sources.REGISTRY.values()


def test_in_memory_sources_declare_every_field_of_their_examples():
  image = np.zeros((4, 4, 3), np.uint8)
  train, evaluation = [{"image": image, "target": image, "label": 2}], [{"image": image, "target": image, "label": 0}]
  data = sources.in_memory("pairs", train, evaluation)
  assert data.spec == sources.ExampleSpec.images((4, 4, 3), num_classes=3, image_fields=("image", "target"))
  assert data.spec.data_key == "image" and data.spec.shapes == {"image": (4, 4, 3), "target": (4, 4, 3), "label": ()}
