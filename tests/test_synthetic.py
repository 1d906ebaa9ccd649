"""Specification of training on generated data (genjax.synthetic) and of the train subsets it is compared on
(`config.data.exclude_classes`, `config.data.real_per_class` in genjax.data.sources): a frozen class-conditional
generator fills the end of every batch with labelled examples of the real data's shape, `fraction=0` is real-only
training, `fraction=1` never trains on a real example, and what cannot work is refused by name."""

import dataclasses
import json
import re
import shutil

import jax
import numpy as np
import pytest

from conftest import tiny_config
from genjax import config_lib
from genjax import errors
from genjax import experiment
from genjax import runs
from genjax import synthetic
from genjax import train_loop
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources


def _classifier_config(generator_workdir=None, **overrides):
  config = tiny_config("classifier", **overrides)
  config.data.synthetic.workdir = generator_workdir
  return config


def _train(config, data, workdir):
  return train_loop.train_and_evaluate(config, str(workdir), data, writers.MemoryWriter())


def _mixed_raw_batches(config, data, steps):
  """The raw batches of `steps` as the train step sees them after mixing, and the real ones before."""
  built = experiment.build(config, data.spec)
  generator = built.load_frozen(data)[synthetic.NAME]
  real_input = pipeline.open_train_input(data, config.data, built.stream, built.train_batch_sharding, 0)
  real = [real_input.feed(step).raw_batch(np.int32(step)) for step in steps]
  mixed = [built.mixer.mix(raw, generator, np.int32(step)) for raw, step in zip(real, steps)]
  return jax.device_get(real), jax.device_get(mixed)


def test_generated_examples_end_every_batch_with_the_real_examples_shape_and_classes(digits, tiny_runs):
  config = _classifier_config(tiny_runs["cgan"], data__synthetic__fraction=0.25)
  (real, _, _), (mixed, again, other) = _mixed_raw_batches(config, digits, [3, 3, 4])
  assert mixed["image"].shape == real["image"].shape == (1, 16, 28, 28, 1)
  assert mixed["image"].dtype == np.uint8 and mixed["label"].dtype == np.int32
  # 4 of 16 generated, after the first 12 real examples, which are kept as they were.
  np.testing.assert_array_equal(mixed["image"][:, :12], real["image"][:, :12])
  np.testing.assert_array_equal(mixed["label"][:, :12], real["label"][:, :12])
  assert not np.array_equal(mixed["image"][:, 12:], real["image"][:, 12:])
  # The labels are drawn uniformly from the step's own key: fold_in(fold_in(key(seed), stream), step).
  step_key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 0x5E17), 3)
  label_key, _ = jax.random.split(step_key)
  expected = jax.random.categorical(label_key, jax.numpy.log(jax.numpy.full(10, 0.1)), shape=(1, 4))
  np.testing.assert_array_equal(mixed["label"][:, 12:], expected)
  # Each step draws its own examples, and the same ones whenever it is asked (a resumed run draws the same).
  np.testing.assert_array_equal(again["image"], mixed["image"])
  assert not np.array_equal(other["image"][:, 12:], mixed["image"][:, 12:])


def test_generated_labels_follow_the_real_class_balance_when_asked(digits, tiny_runs):
  only_threes = dataclasses.replace(digits, train=[example for example in digits.train if example["label"] == 3])
  config = _classifier_config(tiny_runs["cgan"], data__synthetic__fraction=1.0, data__synthetic__labels="real")
  _, (mixed,) = _mixed_raw_batches(config, only_threes, [0])
  np.testing.assert_array_equal(mixed["label"], 3)


def test_the_generator_is_a_step_argument_not_a_constant_nor_state(digits, tiny_runs):
  config = _classifier_config(tiny_runs["cgan"], data__synthetic__fraction=0.5)
  built, real_only = experiment.build(config, digits.spec), experiment.build(_classifier_config(), digits.spec)
  frozen = built.load_frozen(digits)
  generator_size = sum(leaf.size for leaf in jax.tree.leaves(frozen[synthetic.NAME]["state"]))
  assert generator_size > 10_000
  # Not in the train state (so neither checkpointed nor counted): the same state as without generated data.
  assert jax.tree.structure(built.abstract_state) == jax.tree.structure(real_only.abstract_state)
  assert built.trainer.num_params(built.abstract_state) == real_only.trainer.num_params(real_only.abstract_state)
  # Not compiled in: the lowered step holds no constant anywhere near the generator's size.
  real_input = pipeline.open_train_input(digits, config.data, built.stream, built.train_batch_sharding, 0)
  lowered = built.jitted_train_step.lower(built.init(), real_input.feed(0), built.keys, frozen).as_text()
  largest_constant = max((len(hex_digits) // 8 for hex_digits in re.findall(r'dense<"0x([0-9A-F]+)"', lowered)), default=0)
  assert largest_constant < generator_size // 10


@pytest.fixture(scope="module")
def real_only(digits, tmp_path_factory):
  """The train state of the tiny classifier trained on the real digits alone."""
  return _train(_classifier_config(), digits, tmp_path_factory.mktemp("real_only"))


def test_fraction_zero_trains_exactly_like_real_only(digits, tiny_runs, real_only, tmp_path):
  with_generator = _train(_classifier_config(tiny_runs["cgan"], data__synthetic__fraction=0.0), digits, tmp_path)
  jax.tree.map(np.testing.assert_array_equal, real_only.params, with_generator.params)


def test_a_run_trained_on_generated_data_loads_without_its_generator(tiny_runs, tfds_data_dir, tmp_path):
  generator = tmp_path / "generator"
  shutil.copytree(tiny_runs["cgan"], generator)
  config = _classifier_config(str(generator), data__synthetic__fraction=0.5, data__data_dir=tfds_data_dir)
  train_loop.run(config, str(tmp_path / "classifier"))
  shutil.rmtree(generator)
  run = runs.load(str(tmp_path / "classifier"))
  assert run.experiment.mixer is None and run.config.data.synthetic.workdir == str(generator)


def test_fraction_one_never_trains_on_a_real_example(digits, tiny_runs, real_only, tmp_path):
  blank = dataclasses.replace(
      digits, train=[{**example, "image": np.zeros_like(example["image"])} for example in digits.train]
  )
  config = _classifier_config(tiny_runs["cgan"], data__synthetic__fraction=1.0)
  on_digits, on_blanks = (_train(config, data, tmp_path / name) for name, data in (("d", digits), ("b", blank)))
  jax.tree.map(np.testing.assert_array_equal, on_digits.params, on_blanks.params)
  assert not np.array_equal(jax.tree.leaves(real_only.params)[0], jax.tree.leaves(on_digits.params)[0])


@pytest.mark.parametrize(
    "run_name, data_change, message",
    [
        ("vae", None, "not a class-conditional generator"),
        ("classifier", None, "not a class-conditional generator"),
        ("cgan", "four_classes", "makes 10 classes"),
        ("cgan", "larger_images", "stores them as (32, 32, 1)"),
    ],
)
def test_a_generator_that_does_not_fit_the_data_is_refused(run_name, data_change, message, digits, tiny_runs, tmp_path):
  data, config = digits, _classifier_config(tiny_runs[run_name])
  if data_change == "four_classes":
    first_four = lambda split: [example for example in split if example["label"] < 4]
    data = sources.in_memory("four", first_four(digits.train), first_four(digits.eval))
    config.model.num_classes = 4
  elif data_change == "larger_images":
    padded = lambda split: [{**e, "image": np.pad(e["image"], ((2, 2), (2, 2), (0, 0)))} for e in split]
    data = sources.in_memory("padded", padded(digits.train), padded(digits.eval))
  with pytest.raises(errors.UserError, match=re.escape(message)):
    _train(config, data, tmp_path)
  # Refused before the run records anything.
  assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def _mnist5k_config(tfds_data_dir, *overrides):
  config = config_lib.override(tiny_config("classifier"), list(overrides))
  config.data.data_dir = tfds_data_dir
  return config


def _labels(split) -> np.ndarray:
  return np.array([split[index]["label"] for index in range(len(split))])


def test_excluded_classes_leave_training_but_not_evaluation(tfds_data_dir):
  whole = sources.open_source(_mnist5k_config(tfds_data_dir).data)
  config = _mnist5k_config(tfds_data_dir, "--config.data.exclude_classes=(3, 7)")
  data = sources.open_source(config.data, config.seed)
  train_labels, whole_labels = _labels(data.train), _labels(whole.train)
  assert not np.isin(train_labels, (3, 7)).any()
  assert len(train_labels) == np.sum(~np.isin(whole_labels, (3, 7)))
  np.testing.assert_array_equal(_labels(data.eval), _labels(whole.eval))


def test_real_per_class_keeps_that_many_of_each_class_drawn_by_the_seed(tfds_data_dir):
  def kept(seed):
    config = _mnist5k_config(tfds_data_dir, "--config.data.real_per_class=10", f"--config.seed={seed}")
    return sources.open_source(config.data, config.seed).train

  first, again, other = kept(0), kept(0), kept(1)
  np.testing.assert_array_equal(np.bincount(_labels(first)), np.full(10, 10))
  np.testing.assert_array_equal(first.indices, again.indices)
  assert not np.array_equal(first.indices, other.indices)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--config.data.exclude_classes=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"], "excludes every class"),
        (["--config.data.exclude_classes=(10,)"], r"names classes \[10\]"),
        (["--config.data.real_per_class=401"], "lower it to at most 400"),
        (["--config.data.real_per_class=-1"], "must be >= 0"),
    ],
)
def test_impossible_train_subsets_are_refused(overrides, message, tfds_data_dir):
  config = _mnist5k_config(tfds_data_dir, *overrides)
  with pytest.raises(errors.UserError, match=message):
    sources.open_source(config.data, config.seed)


def test_a_generator_saved_before_these_keys_existed_still_loads(tiny_runs, tmp_path):
  workdir = tmp_path / "older_cgan"
  shutil.copytree(tiny_runs["cgan"], workdir)
  saved = json.loads((workdir / "config.json").read_text())
  for key in ("exclude_classes", "real_per_class", "synthetic"):
    del saved["data"][key]
  (workdir / "config.json").write_text(json.dumps(saved))
  run = runs.load(str(workdir))
  assert run.config.data.exclude_classes == () and run.config.data.real_per_class == 0
  assert not run.config.data.synthetic.workdir
