"""Specification of genjax.data: the bundled mnist5k builder, the 2-D toy mixtures, the catalogue's errors and the grain
pipeline."""

import numpy as np
import pytest
from absl import flags

from conftest import tiny_config
from genjax import errors
from genjax.data import catalog
from genjax.data import mnist5k
from genjax.data import pipeline
from genjax.data import sources
from genjax.data import toy2d


def test_mnist5k_has_a_fixed_stratified_split(tfds_data_dir):
  train = catalog.open_split("mnist5k", "train", tfds_data_dir, download=False)
  test = catalog.open_split("mnist5k", "test", tfds_data_dir, download=False)
  assert (len(train), len(test)) == (4000, 1000)
  assert np.bincount([train[i]["label"] for i in range(len(train))]).tolist() == [400] * 10
  assert np.bincount([test[i]["label"] for i in range(len(test))]).tolist() == [100] * 10
  example = train[0]
  assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8


def test_mnist5k_split_is_disjoint_and_covers_the_file():
  _, labels = mnist5k.load_rows(mnist5k.bundled_csv_path())
  split = mnist5k.split_indices(labels)
  assert len(np.intersect1d(split["train"], split["test"])) == 0
  assert len(np.union1d(split["train"], split["test"])) == 5000


def test_unknown_dataset_names_the_bundled_one_and_close_matches(tmp_path):
  with pytest.raises(errors.UserError, match=r"Unknown dataset 'mnistt'.*mnist.*mnist5k"):
    catalog.open_split("mnistt", "train", str(tmp_path), download=True)


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


def _next_batch(iterator):
  """The one batch of the next step (train iterators yield each step's batches stacked `[k, B, ...]`, k = 1)."""
  stacked = next(iterator)
  assert all(x.shape[0] == 1 for x in stacked.values())
  return {key: x[0] for key, x in stacked.items()}


def _first_batches(iterator, count):
  return [_next_batch(iterator) for _ in range(count)]


def test_train_batches_are_in_the_pixel_range_with_labels(digits):
  train = digits.train
  config = tiny_config("vae", data__binarize="none", data__pixel_range=(-1.0, 1.0))
  batch = _next_batch(pipeline.train_iterator(train, config.data, 8, seed=0))
  assert batch["image"].shape == (8, 28, 28, 1) and batch["image"].dtype == np.float32
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0 and batch["image"].min() == -1.0
  assert batch["label"].shape == (8,)


def test_unlabelled_datasets_give_batches_without_labels(digits):
  unlabelled = [{"image": example["image"]} for example in digits.train]
  config = tiny_config("vae")
  assert set(next(pipeline.train_iterator(unlabelled, config.data, 4, seed=0))) == {"image"}
  assert set(next(pipeline.eval_batches(unlabelled, config.data, 4, seed=0))) == {"image", "mask"}


def test_dataset_without_images_is_refused(tmp_path):
  with pytest.raises(errors.UserError, match="'imdb_reviews' has no 'image' feature"):
    catalog.open_split("imdb_reviews", "train", str(tmp_path), download=False)


def test_dynamic_binarisation_draws_fresh_binary_pixels_each_epoch(digits):
  train = digits.train
  config = tiny_config("vae", data__binarize="dynamic")
  iterator = pipeline.train_iterator(train[:8], config.data, 8, seed=0)
  first_epoch, second_epoch = _first_batches(iterator, 2)
  assert set(np.unique(first_epoch["image"])) == {0.0, 1.0}
  by_label = lambda batch: batch["image"][np.argsort(batch["label"], kind="stable")]
  assert not np.array_equal(by_label(first_epoch), by_label(second_epoch))


def test_processes_read_disjoint_shards_that_cover_an_epoch(digits):
  train = digits.train
  config = tiny_config("vae", data__binarize="none")
  seen = []
  for process_index in range(2):
    iterator = pipeline.train_iterator(train, config.data, 8, seed=0, process_index=process_index, process_count=2)
    # A global batch of 8 over 2 processes: 4 per process; 20 examples -> 10 per process, so 2 batches stay in epoch 1.
    seen.append(np.concatenate([batch["image"] for batch in _first_batches(iterator, 2)]))
  flat = [image.tobytes() for images in seen for image in images]
  assert len(set(flat)) == len(flat) == 16


def _assert_restored_iterator_continues(examples, data_config):
  """Saves an iterator's state after 3 batches; a new iterator restored from it yields the next 4 batches again."""
  iterator = pipeline.train_iterator(examples, data_config, 4, seed=3)
  _first_batches(iterator, 3)
  state = iterator.get_state()
  expected = _first_batches(iterator, 4)
  resumed = pipeline.train_iterator(examples, data_config, 4, seed=3)
  resumed.set_state(state)
  for want, got in zip(expected, _first_batches(resumed, 4)):
    np.testing.assert_array_equal(want["image"], got["image"])


def test_restored_iterator_continues_the_same_stream(digits):
  train = digits.train
  _assert_restored_iterator_continues(
      train, tiny_config("vae", data__random_flip=True, data__random_crop_padding=2).data
  )


def test_eval_batches_mask_the_padding(digits):
  evaluation = digits.eval  # 20 examples
  config = tiny_config("vae")
  batches = list(pipeline.eval_batches(evaluation, config.data, 8, seed=0))
  assert len(batches) == 3
  assert [int(b["mask"].sum()) for b in batches] == [8, 8, 4]
  assert all(b["image"].shape == (8, 28, 28, 1) for b in batches)
  again = list(pipeline.eval_batches(evaluation, config.data, 8, seed=0))
  np.testing.assert_array_equal(batches[0]["image"], again[0]["image"])  # The fixed binarisation of the test set.
  shards = [
      list(pipeline.eval_batches(evaluation, config.data, 8, seed=0, process_index=p, process_count=2))
      for p in range(2)
  ]
  assert len(shards[0]) == len(shards[1]) == 3
  assert sum(int(b["mask"].sum()) for shard in shards for b in shard) == 20


def test_a_step_takes_its_batches_stacked_from_consecutive_examples(digits):
  config = tiny_config("vae", data__binarize="none")
  stacked = next(pipeline.train_iterator(digits.train, config.data, 4, seed=0, batches_per_step=3))
  assert stacked["image"].shape == (3, 4, 28, 28, 1) and stacked["label"].shape == (3, 4)
  flat = next(pipeline.train_iterator(digits.train, config.data, 12, seed=0))
  np.testing.assert_array_equal(stacked["image"].reshape(12, 28, 28, 1), flat["image"][0])


def test_batch_that_does_not_divide_over_processes_is_refused(digits):
  train = digits.train
  with pytest.raises(errors.UserError, match="does not divide evenly over 3 processes"):
    pipeline.train_iterator(train, tiny_config("vae").data, 8, seed=0, process_count=3)


def test_worker_processes_give_a_stream_that_resumes_exactly(digits):
  # grain's worker processes read absl flags, which a CLI run has parsed and pytest has not.
  flags.FLAGS.mark_as_parsed()
  train = digits.train
  _assert_restored_iterator_continues(train, tiny_config("vae", data__num_workers=2).data)


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


def test_toy_points_pass_through_the_pipeline_unchanged():
  config = tiny_config("toy2d", "dataset=ring")
  split = toy2d.open_split("ring", "test")
  batch = next(pipeline.eval_batches(split, config.data, 16, seed=0))
  np.testing.assert_array_equal(batch["point"], split.points[:16])
  np.testing.assert_array_equal(batch["label"], split.labels[:16])
  assert sources.open_source(config.data).spec == sources.ExampleSpec.points(2, num_classes=8)
