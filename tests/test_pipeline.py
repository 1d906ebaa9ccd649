"""Specification of the input paths (genjax.data.pipeline, preprocess): one global order fixed by the
step, every example once per epoch, the same batches on the host and on the device, in one process or several,
from any starting step; preprocessing that matches its definition and has the right statistics."""

import dataclasses

import jax
import numpy as np
import pytest
from absl import flags

from conftest import tiny_config
from genjax import errors
from genjax import sharding
from genjax.data import pipeline
from genjax.data import preprocess
from genjax.data import sources


def _numbered(count: int) -> sources.DataSource:
  """Examples that say who they are: point (index, 0) and label index."""
  examples = [{"point": np.array([index, 0.0], np.float32), "label": index} for index in range(count)]
  return sources.in_memory("numbered", examples, examples[:4])


def test_every_example_appears_once_per_epoch_and_epochs_differ():
  data = _numbered(20)
  stream = pipeline.Stream(seed=0, batches_per_step=1, global_batch_size=8)
  reader = pipeline.StreamReader(data.train, data.spec, stream)
  steps = [reader(step) for step in range(5)]  # 40 positions: two epochs, the third step spans both.
  labels = np.concatenate([raw["label"].reshape(-1) for raw in steps])
  epochs = np.concatenate([raw[pipeline.EPOCH].reshape(-1) for raw in steps])
  positions = np.concatenate([raw[pipeline.POSITION].reshape(-1) for raw in steps])
  for epoch in (0, 1):
    assert sorted(labels[epochs == epoch]) == list(range(20))
    assert sorted(positions[epochs == epoch]) == list(range(20))
  assert not np.array_equal(labels[epochs == 0], labels[epochs == 1])


def test_a_step_takes_its_k_batches_from_consecutive_positions():
  data = _numbered(30)
  stacked = pipeline.StreamReader(data.train, data.spec, pipeline.Stream(0, batches_per_step=3, global_batch_size=4))(1)
  flat = pipeline.StreamReader(data.train, data.spec, pipeline.Stream(0, batches_per_step=1, global_batch_size=12))(1)
  assert stacked["label"].shape == (3, 4) and stacked["point"].shape == (3, 4, 2)
  np.testing.assert_array_equal(stacked["label"].reshape(-1), flat["label"].reshape(-1))


def test_processes_read_their_slices_of_the_same_global_batch():
  data = _numbered(20)
  share = lambda p, count: pipeline.StreamReader(data.train, data.spec, pipeline.Stream(0, 2, 8), p, count)(3)
  whole, shares = share(0, 1), [share(p, 2) for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([share["label"] for share in shares], axis=1), whole["label"])


def test_a_batch_that_does_not_divide_over_processes_is_refused():
  with pytest.raises(errors.UserError, match="does not divide evenly over 3 processes"):
    pipeline.Stream(0, 1, 8).positions(0, process_index=0, process_count=3)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_host_input_from_any_step_continues_the_stream_exactly(num_workers, digits):
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags, which pytest has not parsed.
  config = tiny_config("vae", data__num_workers=num_workers)
  mesh = sharding.make_mesh(config.mesh)
  batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)
  reader = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 1, 8))
  host_input = pipeline.HostInput(
      digits, config.data, pipeline.Stream(config.seed, 1, 8), batch_sharding, start_step=3
  )
  for step in (3, 4, 5, 6):  # Past the end of the first epoch (24 examples, 3 steps).
    feed = host_input.feed(step)
    assert feed.raw["image"].sharding == batch_sharding
    for key, expected in reader(step).items():
      np.testing.assert_array_equal(np.asarray(feed.raw[key]), expected)


def test_the_device_feed_gathers_the_host_paths_batches(digits, devices):
  config = tiny_config("vae")
  mesh = sharding.make_mesh(config.mesh, devices)
  device_input = pipeline.DeviceInput(digits, pipeline.Stream(config.seed, 2, 8), mesh)
  reader = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 2, 8))
  gather = jax.jit(lambda feed, step: feed.raw_batch(step))
  for step in range(5):  # 16 examples a step from 24: most steps span two epochs.
    gathered = gather(device_input.feed(step), np.int32(step))
    for key, expected in reader(step).items():
      np.testing.assert_array_equal(np.asarray(gathered[key]), expected)


def test_steps_larger_than_the_split_span_several_epochs_on_both_paths(devices):
  data = _numbered(5)
  config = tiny_config("toy2d", "dataset=ring")
  mesh = sharding.make_mesh(config.mesh, devices)
  device_input = pipeline.DeviceInput(data, pipeline.Stream(0, 2, 8), mesh)
  reader = pipeline.StreamReader(data.train, data.spec, pipeline.Stream(0, 2, 8))
  for step in range(3):
    gathered = jax.jit(lambda feed, step: feed.raw_batch(step))(device_input.feed(step), np.int32(step))
    np.testing.assert_array_equal(np.asarray(gathered["label"]), reader(step)["label"])
  labels = np.concatenate([reader(step)["label"].reshape(-1) for step in range(5)])  # 80 positions: 16 epochs.
  assert all(sorted(labels[epoch * 5 : (epoch + 1) * 5]) == list(range(5)) for epoch in range(16))


def test_on_device_input_refuses_a_split_larger_than_a_device(digits, devices, monkeypatch):
  monkeypatch.setattr(pipeline, "device_memory_bytes", lambda mesh: 2**20)
  config = tiny_config("vae", data__on_device="true")
  mesh = sharding.make_mesh(config.mesh, devices)
  batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)
  bigger = sources.in_memory("big", digits.train * 60, digits.eval)  # 1,440 digits: 1.1 MiB.
  with pytest.raises(errors.UserError, match=r"takes 0.00 GiB and a device has 0.00 GiB"):
    pipeline.open_train_input(bigger, config.data, pipeline.Stream(0, 1, 8), batch_sharding, 0)
  auto = tiny_config("vae", data__on_device="auto").data
  assert isinstance(
      pipeline.open_train_input(bigger, auto, pipeline.Stream(0, 1, 8), batch_sharding, 0), pipeline.HostInput
  )
  assert isinstance(
      pipeline.open_train_input(digits, auto, pipeline.Stream(0, 1, 8), batch_sharding, 0), pipeline.DeviceInput
  )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data__on_device": "sometimes"}, "on_device='sometimes' is not one of auto, true, false"),
    ],
)
def test_impossible_input_settings_are_refused(overrides, message, digits):
  config = tiny_config("vae", **overrides)
  mesh = sharding.make_mesh(config.mesh)
  batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)
  with pytest.raises(errors.UserError, match=message):
    pipeline.open_train_input(digits, config.data, pipeline.Stream(0, 1, config.train.batch_size), batch_sharding, 0)


def _digit_images(digits, count=8):
  return np.stack([example["image"] for example in digits.train[:count]])


@pytest.mark.parametrize("pixel_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_deterministic_preprocessing_scales_and_thresholds_as_defined(pixel_range, digits):
  images = _digit_images(digits)
  keys = preprocess.eval_example_keys(jax.random.key(0), np.arange(len(images)))
  low, high = pixel_range
  for binarize, expected in [
      ("none", images.astype(np.float32) / 255.0),
      ("threshold", (images.astype(np.float32) / 255.0 > 0.5).astype(np.float32)),
  ]:
    options = preprocess.Options(binarize, pixel_range, random_flip=False, random_crop_padding=0)
    processed = preprocess.apply({"image": images}, keys, options, training=True)["image"]
    assert processed.dtype == np.float32
    np.testing.assert_allclose(processed, expected * (high - low) + low, rtol=0, atol=1e-6)


def test_random_preprocessing_has_the_right_statistics(digits):
  images = np.repeat(_digit_images(digits, 4), 500, axis=0)  # 2,000 examples, 4 distinct digits.
  keys = preprocess.eval_example_keys(jax.random.key(1), np.arange(len(images)))
  unit = images.astype(np.float32) / 255.0

  flip = preprocess.Options("none", (0.0, 1.0), random_flip=True, random_crop_padding=0)
  flipped = np.asarray(preprocess.apply({"image": images}, keys, flip, training=True)["image"])
  same = lambda a, b: np.all(np.isclose(a, b, atol=1e-6), axis=(1, 2, 3))
  is_flipped = same(flipped, unit[:, :, ::-1])
  assert np.all(is_flipped | same(flipped, unit))
  assert 0.45 < is_flipped.mean() < 0.55

  binarize = preprocess.Options("dynamic", (0.0, 1.0), random_flip=False, random_crop_padding=0)
  binary = np.asarray(preprocess.apply({"image": images}, keys, binarize, training=True)["image"])
  assert set(np.unique(binary)) == {0.0, 1.0}
  np.testing.assert_allclose(binary.mean(axis=0), unit.mean(axis=0), atol=0.05)  # E[pixel] = grey level.

  crop = preprocess.Options("none", (0.0, 1.0), random_flip=False, random_crop_padding=2)
  cropped = np.asarray(preprocess.apply({"image": images}, keys, crop, training=True)["image"])
  assert cropped.shape == unit.shape
  assert np.mean(same(cropped, unit)) < 0.1  # 1 in 25 offsets is (0, 0).


def test_augmentation_is_off_in_evaluation_and_draws_follow_the_example_not_the_batch(digits):
  images = _digit_images(digits)
  options = preprocess.Options("dynamic", (0.0, 1.0), random_flip=True, random_crop_padding=2)
  keys = preprocess.train_example_keys(jax.random.key(2), np.zeros(8, np.int32), np.arange(8, dtype=np.int32))
  whole = np.asarray(preprocess.apply({"image": images}, keys, options, training=True)["image"])
  halves = [preprocess.apply({"image": images[i : i + 4]}, keys[i : i + 4], options, True)["image"] for i in (0, 4)]
  np.testing.assert_array_equal(np.concatenate(halves), whole)
  evaluated = np.asarray(preprocess.apply({"image": images}, keys, options, training=False)["image"])
  unit = images.astype(np.float32) / 255.0
  np.testing.assert_allclose(evaluated.mean(), unit.mean(), atol=0.02)  # Binarised, neither flipped nor shifted:
  assert np.corrcoef(evaluated.reshape(-1), unit.reshape(-1))[0, 1] > 0.8  # it still lines up with the digits.


def test_points_pass_through_preprocessing_unchanged():
  raw = {"point": np.arange(6, dtype=np.float32).reshape(3, 2), "label": np.arange(3, dtype=np.int32)}
  keys = preprocess.eval_example_keys(jax.random.key(0), np.arange(3))
  assert preprocess.apply(raw, keys, None, training=True) is raw


def test_eval_batches_cover_the_split_once_with_the_padding_masked(digits):
  batches = list(pipeline.eval_batches(digits.eval, digits.spec, 8))  # 20 examples
  assert [int(batch["mask"].sum()) for batch in batches] == [8, 8, 4]
  assert all(batch["image"].shape == (8, 28, 28, 1) for batch in batches)
  np.testing.assert_array_equal(np.concatenate([b["index"] for b in batches])[:20], np.arange(20))
  shares = [list(pipeline.eval_batches(digits.eval, digits.spec, 8, p, process_count=2)) for p in range(2)]
  assert len(shares[0]) == len(shares[1]) == 3
  assert sum(int(batch["mask"].sum()) for share in shares for batch in share) == 20
  np.testing.assert_array_equal(np.concatenate([shares[0][1]["image"], shares[1][1]["image"]]), batches[1]["image"])


# Examples of several fields: an input, its target and a label; pairs and unpaired sides.


def _pairs(count: int, side: int = 8) -> list[dict]:
  """Examples whose target is the negative of their image, so that any misalignment shows."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8)
  return [{"image": image, "target": 255 - image, "label": index % 3} for index, image in enumerate(images)]


def test_a_source_of_image_target_and_label_gives_the_same_batches_on_the_host_and_the_device(devices):
  flags.FLAGS.mark_as_parsed()
  examples = _pairs(12)
  data = sources.in_memory("pairs", examples, examples[:4])
  assert data.spec.image_fields == ("image", "target") and data.spec.num_classes == 3
  config = tiny_config("vae", data__num_workers=0)
  mesh = sharding.make_mesh(config.mesh, devices)
  batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)
  stream = pipeline.Stream(config.seed, 2, 8)
  reader = pipeline.StreamReader(data.train, data.spec, stream)
  device_input = pipeline.DeviceInput(data, stream, mesh)
  host_input = pipeline.HostInput(data, config.data, stream, batch_sharding, start_step=0)
  gather = jax.jit(lambda feed, step: feed.raw_batch(step))
  for step in range(4):  # 16 examples a step from 12: every step spans two epochs.
    expected = reader(step)
    assert set(expected) == {"image", "target", "label", pipeline.EPOCH, pipeline.POSITION}
    gathered, hosted = gather(device_input.feed(step), np.int32(step)), host_input.feed(step).raw
    for key, values in expected.items():
      np.testing.assert_array_equal(np.asarray(gathered[key]), values)
      np.testing.assert_array_equal(np.asarray(hosted[key]), values)
  np.testing.assert_array_equal(expected["target"], 255 - expected["image"])


def test_a_pairs_flips_crops_and_patches_agree_pixel_for_pixel():
  examples = _pairs(64, side=12)
  spec = sources.inferred_spec(examples)
  raw = pipeline.read_examples(examples, np.arange(64), spec)
  keys = preprocess.eval_example_keys(jax.random.key(3), np.arange(64))
  options = preprocess.Options(
      "none", (0.0, 1.0), random_flip=True, random_crop_padding=2, patch_size=8, image_fields=spec.image_fields
  )
  batch = jax.tree.map(np.asarray, preprocess.apply(raw, keys, options, training=True))
  assert batch["image"].shape == batch["target"].shape == (64, 8, 8, 3)
  np.testing.assert_allclose(batch["target"], 1.0 - batch["image"], atol=1e-6)
  np.testing.assert_array_equal(batch["label"], raw["label"])
  # The draws did move the pixels: most patches differ from the unflipped, unshifted central one.
  central = raw["image"][:, 2:10, 2:10].astype(np.float32) / 255.0
  assert np.mean(np.all(np.isclose(batch["image"], central, atol=1e-6), axis=(1, 2, 3))) < 0.2


def test_dynamic_binarisation_draws_each_image_field_apart():
  grey = np.full((16, 8, 8, 1), 128, np.uint8)
  raw = {"image": grey, "target": grey}
  keys = preprocess.eval_example_keys(jax.random.key(0), np.arange(16))
  options = preprocess.Options("dynamic", (0.0, 1.0), False, 0, image_fields=("image", "target"))
  batch = preprocess.apply(raw, keys, options, training=True)
  single = preprocess.apply({"image": grey}, keys, dataclasses.replace(options, image_fields=("image",)), True)
  np.testing.assert_array_equal(batch["image"], single["image"])  # The first field draws as a single image does.
  assert not np.array_equal(batch["image"], batch["target"])


def test_unpaired_sides_are_each_visited_once_per_epoch_in_independent_orders(devices):
  side_a = [{"image": np.full((2, 2, 1), index, np.uint8)} for index in range(6)]
  side_b = [{"image": np.full((2, 2, 1), 100 + index, np.uint8)} for index in range(4)]
  train = sources.UnpairedSplit(side_a, side_b)
  data = sources.DataSource("unpaired", train, train, sources.ExampleSpec.images((2, 2, 1), 0, ("image", "target")))
  stream = pipeline.Stream(seed=0, batches_per_step=1, global_batch_size=4)
  reader = pipeline.StreamReader(data.train, data.spec, stream)
  steps = [reader(step) for step in range(6)]  # 24 positions: 4 epochs of A, 6 of B.
  a = np.concatenate([raw["image"][..., 0, 0, 0].reshape(-1) for raw in steps])
  b = np.concatenate([raw["target"][..., 0, 0, 0].reshape(-1) for raw in steps]) - 100
  assert all(sorted(a[epoch * 6 : (epoch + 1) * 6]) == list(range(6)) for epoch in range(4))
  assert all(sorted(b[epoch * 4 : (epoch + 1) * 4]) == list(range(4)) for epoch in range(6))
  # Independent orders: a pairing tied to the positions would repeat every 12 positions (12 distinct pairs at most).
  assert len(set(zip(a.tolist(), b.tolist()))) > 12
  # Epochs and positions (the preprocessing keys) are side A's; the device path gathers the same batches.
  np.testing.assert_array_equal(np.concatenate([raw[pipeline.EPOCH].reshape(-1) for raw in steps]), np.arange(24) // 6)
  mesh = sharding.make_mesh(tiny_config("vae").mesh, devices)
  device_input = pipeline.DeviceInput(data, stream, mesh)
  for step in range(6):
    gathered = jax.jit(lambda feed, step: feed.raw_batch(step))(device_input.feed(step), np.int32(step))
    for key, values in steps[step].items():
      np.testing.assert_array_equal(np.asarray(gathered[key]), values)
  # Read by index (evaluation), example i pairs A[i mod 6] with B[i mod 4].
  assert len(train) == 6 and int(train[5]["target"][0, 0, 0]) == 101


def test_a_field_the_spec_does_not_declare_is_refused_by_name():
  examples = _pairs(4)
  data = sources.DataSource("pairs", examples, examples, sources.ExampleSpec.images((8, 8, 3), num_classes=3))
  with pytest.raises(errors.UserError, match=r"holds field\(s\) \['target'\] that the data's spec does not declare"):
    pipeline.StreamReader(data.train, data.spec, pipeline.Stream(0, 1, 4))(0)
  with pytest.raises(errors.UserError, match=r"lacks field\(s\) \['label'\]"):
    list(pipeline.eval_batches([{"image": e["image"], "target": e["target"]} for e in examples], data.spec, 4))
  with pytest.raises(errors.UserError, match="field 'caption' of shape"):
    sources.in_memory("captioned", [{"image": examples[0]["image"], "caption": np.zeros((2, 2))}], [])


def test_on_device_sizing_counts_every_field():
  examples = _pairs(10)  # Two 8x8x3 uint8 images and an int32 label: 388 bytes an example.
  assert pipeline.split_bytes(sources.in_memory("pairs", examples, examples)) == 10 * (2 * 192 + 4)
