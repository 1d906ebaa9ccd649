"""Specification of the classifier family (genjax.trainers.classifier, genjax.models.classifiers and
configs/classifier.py): it learns the labels, evaluates exactly over real examples, exposes deterministic features
for evaluation, refuses what it cannot train, and trains end to end through the one loop."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import MNIST_SPEC, eval_batch, load_config, tiny_config, train_batch, unlabelled
from genjax import config_lib
from genjax import errors
from genjax import train_loop
from genjax import trainers
from genjax import writers
from genjax.data import sources


def test_training_lowers_the_loss_and_raises_accuracy(digits):
  train = digits.train
  # Without dropout, which on tiny_config's 8 features would slow the fit this test watches.
  config = tiny_config(
      "classifier", optim__lr=3e-3, optim__schedule="constant", data__random_crop_padding=0, model__dropout_rate=0.0
  )
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  train_step, eval_step = jax.jit(trainer.train_step), jax.jit(trainer.eval_step)
  # All 24 training digits in one evaluation batch: what the steps below fit.
  seen = eval_batch(config, train, len(train))
  state = jax.jit(trainer.init)(jax.random.key(0))
  before = eval_step(state, seen, jax.random.key(0))
  for step in range(40):
    state, metrics = train_step(state, train_batch(config, digits, step), jax.random.key(step))
  after = eval_step(state, seen, jax.random.key(0))
  assert set(metrics) == {"loss", "accuracy", "grad_norm"}
  assert float(after["loss"]) < 0.5 * float(before["loss"])
  assert float(after["accuracy"]) > float(before["accuracy"]) + 0.5 * len(train)
  assert int(state.step) == 40


def test_eval_sums_ignore_padded_examples(digits):
  evaluation = digits.eval
  config = tiny_config("classifier")
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  state = jax.jit(trainer.init)(jax.random.key(0))
  real = eval_batch(config, evaluation[:8], 8)
  padded = eval_batch(config, evaluation[:8], 16)
  # What padding holds must not matter: fill it with noise and a label, as if it were data.
  padded["image"][8:] = np.random.default_rng(0).random(padded["image"][8:].shape, np.float32)
  padded["label"][8:] = 3
  real_sums = jax.device_get(trainer.eval_step(state, real, jax.random.key(0)))
  padded_sums = jax.device_get(trainer.eval_step(state, padded, jax.random.key(1)))
  assert padded_sums["count"] == real_sums["count"] == 8
  assert set(padded_sums) == {"loss", "accuracy", "count"}
  for name in ("loss", "accuracy"):
    np.testing.assert_allclose(padded_sums[name], real_sums[name], rtol=1e-5)


def test_features_are_the_penultimate_activations_and_ignore_dropout(digits):
  evaluation = digits.eval
  config = tiny_config("classifier", model__dropout_rate=0.9)
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  state = jax.jit(trainer.init)(jax.random.key(0))
  batch = eval_batch(config, evaluation, len(evaluation))
  features = jax.jit(trainer.features.features)(state.params, batch["image"])
  assert features.shape == (len(evaluation), config.model.feature_size)
  # Dropout sits after the features: a network without it has the same features for the same parameters.
  no_dropout = trainers.make_trainer(tiny_config("classifier", model__dropout_rate=0.0), MNIST_SPEC)
  np.testing.assert_array_equal(features, no_dropout.features.features(state.params, batch["image"]))
  # The logits at inference are one dense layer on the features: the eval step's accuracy follows from them.
  logits_layer = state.params["logits_layer"]
  logits = features @ logits_layer["kernel"] + logits_layer["bias"]
  hits = np.sum(np.argmax(logits, axis=-1) == batch["label"])
  for key in (jax.random.key(1), jax.random.key(2)):
    np.testing.assert_allclose(trainer.eval_step(state, batch, key)["accuracy"], hits)


def test_features_work_from_a_config_read_back_from_json(digits):
  # Evaluation rebuilds the classifier from a run's config.json, where tuples have become lists.
  evaluation = digits.eval
  config = tiny_config("classifier")
  params = trainers.make_trainer(config, MNIST_SPEC).init(jax.random.key(0)).params
  restored = config_lib.from_json(json.loads(json.dumps(config.to_dict())))
  images = eval_batch(config, evaluation, 8)["image"]
  np.testing.assert_array_equal(
      trainers.make_trainer(restored, MNIST_SPEC).features.features(params, images),
      trainers.make_trainer(config, MNIST_SPEC).features.features(params, images),
  )


def test_unlabelled_data_is_refused(digits, tmp_path):
  with pytest.raises(errors.UserError, match="trains on labelled images; dataset 'mnist5k' has no labels"):
    trainers.make_trainer(tiny_config("classifier"), sources.ExampleSpec.images((28, 28, 1)))
  with pytest.raises(errors.UserError, match="The classifier family trains on labelled images"):
    train_loop.train_and_evaluate(tiny_config("classifier"), str(tmp_path), unlabelled(digits), writers.MemoryWriter())


@pytest.mark.parametrize(
    "overrides, spec, message",
    [
        ({"model__architecture": "resnet"}, MNIST_SPEC, "architecture='resnet' is not one of conv"),
        ({"model__num_classes": 1}, MNIST_SPEC, "num_classes=1 must be >= 2"),
        ({"model__dropout_rate": 1.0}, MNIST_SPEC, r"dropout_rate=1.0 must be in \[0, 1\)"),
        ({"model__channels": (4, 4, 4, 4, 4)}, MNIST_SPEC, "28x28 images are too small for 5 pooling stages"),
        ({"optim__name": "sgd"}, MNIST_SPEC, "optim.name='sgd' is not one of adam, adamw, rmsprop"),
        ({}, sources.ExampleSpec.points(2, num_classes=8), "The classifier family trains on images"),
    ],
)
def test_impossible_settings_are_refused(overrides, spec, message):
  with pytest.raises(errors.UserError, match=message):
    trainers.make_trainer(tiny_config("classifier", **overrides), spec)


def test_config_trains_end_to_end_and_writes_eval_accuracy(digits, tmp_path):
  # 20 eval digits: accuracy is a multiple of 1/20.
  writer = writers.MemoryWriter()
  state = train_loop.train_and_evaluate(tiny_config("classifier"), str(tmp_path), digits, writer)
  assert int(state.step) == 4 and writer.config["family"] == "classifier"
  assert [(m["step"], m["split"]) for m in writer.metrics] == [(2, "train"), (4, "train"), (4, "eval")]
  eval_line = writer.metrics[-1]
  assert np.isfinite(eval_line["loss"])
  assert 0.0 <= eval_line["accuracy"] <= 1.0
  np.testing.assert_allclose(eval_line["accuracy"] * 20, round(eval_line["accuracy"] * 20), atol=1e-4)
  assert writer.images == []  # Nothing to reconstruct or sample.


@pytest.mark.slow
def test_runlocal_classifier_reaches_97_percent_on_mnist5k(tfds_data_dir, tmp_path):
  config = load_config("classifier", "runlocal")
  config.data.data_dir = tfds_data_dir
  workdir = str(tmp_path / "classifier")
  train_loop.run(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    eval_lines = [line for line in map(json.loads, f) if line["split"] == "eval"]
  assert eval_lines[-1]["step"] == config.train.total_steps
  # Measured 98.1 and 98.2% (seeds 0 and 1) on this 8-device test mesh, 98.5% on one device: a margin of 10 digits.
  assert eval_lines[-1]["accuracy"] >= 0.97
