"""Specification of genjax.evaluators, genjax.feature_networks and experiments/evaluate.py: which metrics each
family gets, the protocol recorded with them, sharded batches of any size, one compilation per run, and bad input."""

import contextlib
import json
import logging
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, run_command, tiny_config
from genjax import errors
from genjax import evaluators
from genjax import experiment
from genjax import feature_networks
from genjax import runs
from genjax import train_loop
from genjax import writers
from genjax.evaluators import common
from genjax.evaluators import offline
from genjax.evaluators import sample_quality
from genjax.metrics import feature_distances


def _context(workdir, *overrides, devices=None):
  run = runs.load(workdir, overrides=overrides, devices=devices)
  return evaluators.Context(run.experiment, lambda: run.data, run.config.eval, seed=0)


def test_batches_of_any_size_map_over_the_8_device_mesh_exactly(digits, devices):
  config = tiny_config("vae", eval__batch_size=8)
  context = evaluators.Context(experiment.build(config, digits.spec, devices), lambda: digits, config.eval, seed=0)
  images = np.arange(13 * 2, dtype=np.float32).reshape(13, 2)
  doubled = common.map_over_images(context, lambda params, batch: 2 * batch + params)(jnp.float32(1), images)
  np.testing.assert_array_equal(doubled, 2 * images + 1)


def test_real_images_are_the_fixed_unbinarised_head_of_the_eval_split(tiny_runs):
  context = _context(tiny_runs["vae"])  # Trained on dynamically binarised digits.
  images = sample_quality.real_images(context, 5)
  assert images.shape == (5, 28, 28, 1)
  assert len(np.unique(images)) > 2  # Grey levels, not a binarised draw.
  np.testing.assert_array_equal(images, sample_quality.real_images(context, 5))
  with pytest.raises(errors.UserError, match="Asked for 5000 real images, but the mnist5k split 'test' has 1000"):
    sample_quality.real_images(context, 5000)


def test_per_example_values_of_the_first_n_eval_examples_are_the_first_n_of_the_whole_split(tiny_runs):
  context = _context(tiny_runs["vae"], "--config.eval.batch_size=16")
  brightness = lambda state, batch: batch["image"].reshape(len(batch["image"]), -1).mean(axis=-1, keepdims=True)
  whole_split = common.per_example_over_eval_split(context, brightness)(None)
  assert whole_split.shape == (1000, 1)
  first_37 = common.per_example_over_eval_split(context, brightness, num_examples=37)(None)
  np.testing.assert_array_equal(first_37, whole_split[:37])


def test_identical_feature_sets_score_as_a_perfect_model(tiny_runs):
  context = _context(tiny_runs["cgan"], "--config.eval.batch_size=8")
  network = feature_networks.classifier_network(tiny_runs["classifier"])
  real = sample_quality.real_images(context, 50)
  pixel_range = tuple(context.config.data.pixel_range)
  features = common.map_over_images(context, lambda p, x: network.features(p, x, pixel_range))(network.params, real)
  assert features.shape == (50, 8)
  assert np.isclose(feature_distances.frechet_distance_from_features(features, features), 0.0, atol=1e-6)


def _load(workdir, *overrides, step=None):
  return runs.load(workdir, step, overrides, devices=jax.devices()[:1])


@pytest.mark.parametrize(
    "name, expected_metrics",
    [
        (
            "cgan",
            {"fid", "kid", "kid_std", "precision", "recall", "class_accuracy"}
            | {"real_floor_fid", "real_floor_kid"}
            | {"real_floor_kid_std", "real_floor_precision", "real_floor_recall"},
        ),
        (
            "vae",
            {"fid", "kid", "kid_std", "precision", "recall", "neg_elbo_nats", "neg_elbo_bits_per_dim", "iwae_nats"}
            | {"iwae_bits_per_dim", "mse", "psnr", "ssim", "exact_reconstructions"},
        ),
        ("ae", {"mse", "psnr", "ssim", "exact_reconstructions"}),
    ],
)
def test_evaluate_writes_the_metrics_of_each_family_with_their_protocol(name, expected_metrics, tiny_runs, tmp_path):
  run = _load(
      tiny_runs[name],
      f"--config.eval.sample_quality.classifier_workdir={tiny_runs['classifier']}",
      "--config.eval.sample_quality.num_images=40",
      "--config.eval.likelihood.iwae_samples=5",
      "--config.eval.likelihood.num_images=40",
      "--config.eval.batch_size=16",
      f"--config.eval.sample_quality.real_floor={name == 'cgan'}",
  )
  offline.evaluate(run, 0, str(tmp_path))
  with open(tmp_path / "metrics.json") as f:
    report = json.load(f)
  assert set(report["metrics"]) == expected_metrics
  assert all(np.isfinite(value) for value in report["metrics"].values())
  if "fid" in expected_metrics:
    protocol = report["protocol"]
    assert (protocol["n_real"], protocol["n_fake"], protocol["seed"]) == (40, 40, 0)
    assert len(protocol["feature_weights_sha256"]) == 64 and "genjax classifier" in protocol["feature_network"]
  if name == "vae":
    assert report["metrics"]["iwae_nats"] <= report["metrics"]["neg_elbo_nats"]
    assert report["protocol"]["likelihood_images"] == "the first 40 of the eval split"
  if name == "cgan":  # The classifier's reading of the class each sample was drawn for.
    assert 0.0 <= report["metrics"]["class_accuracy"] <= 1.0 and "class_accuracy" in report["protocol"]
  with open(tmp_path / "summary.md") as f:
    assert f.read().startswith(f"# Evaluation of {tiny_runs[name]} at step 4")


def test_evaluate_runs_only_the_evaluations_named_and_refuses_one_that_cannot_serve(tiny_runs, tmp_path):
  run = _load(tiny_runs["vae"], "--config.eval.batch_size=16")
  reconstruction_only = offline.evaluate(run, 0, str(tmp_path), names=("reconstruction",)).metrics
  assert set(reconstruction_only) == {"mse", "psnr", "ssim", "exact_reconstructions"}  # No sample quality, no bound.
  with pytest.raises(errors.UserError, match="'mode_coverage' evaluation .* needs a 2-D mixture"):
    offline.evaluate(run, 0, str(tmp_path), names=("mode_coverage",))


@pytest.mark.cli  # One process per tool, for the exit-status wiring; the rest is tested in-process.
def test_evaluate_command_writes_the_report_under_eval_step_and_exits_0(tiny_runs):
  result = run_command("evaluate.py", f"--workdir={tiny_runs['ae']}", "--batch_size=16")
  assert result.returncode == 0, result.stderr
  with open(os.path.join(tiny_runs["ae"], "eval", "4", "metrics.json")) as f:
    assert {"mse", "psnr", "ssim"} <= set(json.load(f)["metrics"])
  # The table summary.md holds is printed too, then the folder.
  with open(os.path.join(tiny_runs["ae"], "eval", "4", "summary.md")) as f:
    table = [line for line in f.read().splitlines() if line.startswith("|")]
  assert "| reconstruction SSIM |" in result.stdout
  assert result.stdout.splitlines() == [*table, os.path.join(tiny_runs["ae"], "eval", "4")]


def test_a_missing_step_is_refused(tiny_runs):
  with pytest.raises(errors.UserError, match="no checkpoint at step 3; it has: 2, 4"):
    _load(tiny_runs["cgan"], step=3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([], "need a feature network: pass --classifier_workdir"),
        (["classifier_workdir={classifier}", "num_images=5000"], "Asked for 5000 real images"),
        (["classifier_workdir={vae}"], "holds a vae run, not a classifier"),
        (["feature_network=inception", "inception_weights=/nonexistent.pth"], "nonexistent.pth"),
    ],
)
def test_evaluate_refuses_bad_input_with_one_message(overrides, message, tiny_runs, tmp_path):
  overrides = [
      "--config.eval.sample_quality." + override.format(classifier=tiny_runs["classifier"], vae=tiny_runs["vae"])
      for override in overrides
  ]
  run = _load(tiny_runs["cgan"], *overrides)
  with pytest.raises(errors.UserError, match=re.escape(message)):
    offline.evaluate(run, 0, str(tmp_path))


def test_training_with_a_classifier_writes_sample_quality_at_each_evaluation(tiny_runs, digits, tmp_path, caplog):
  config = tiny_config(
      "gan",
      eval__sample_quality__classifier_workdir=tiny_runs["classifier"],
      eval__sample_quality__num_images=10,
      eval__every_steps=2,
  )
  config.evals = ("split", "grids", "sample_quality")
  writer = writers.MemoryWriter()
  caplog.set_level(logging.INFO)
  with jax.log_compiles():
    with _compilations() as compiled:
      train_loop.train_and_evaluate(config, str(tmp_path), digits, writer)
  eval_lines = [m for m in writer.metrics if m["split"] == "eval"]
  assert [m["step"] for m in eval_lines] == [2, 4]
  for eval_line in eval_lines:
    assert {"fid", "kid", "kid_std", "precision", "recall"} <= set(eval_line)
    assert np.isfinite(eval_line["fid"]) and eval_line["fid"] > 0
  # Two evaluations, one compilation of the feature network (real and generated images share it).
  assert sum("XLA compilation of jit(features_in_run_range)" in message for message in compiled) == 1
  # The final evaluation's metrics reach the console.
  (final,) = [message for message in caplog.messages if message.startswith("Final evaluation at step 4: ")]
  assert f"loss {eval_lines[-1]['loss']:.4g}, " in final and f"fid {eval_lines[-1]['fid']:.4g}" in final, final


def test_a_classifier_workdir_without_the_sample_quality_evaluation_is_refused(tiny_runs, digits, tmp_path):
  config = tiny_config("gan", eval__sample_quality__classifier_workdir=tiny_runs["classifier"])
  with pytest.raises(errors.UserError, match="config.evals does not list 'sample_quality'"):
    train_loop.train_and_evaluate(config, str(tmp_path), digits, writers.MemoryWriter())


@pytest.mark.parametrize(
    "evals, message",
    [
        (("mode_coverage",), "'mode_coverage' evaluation .* needs a 2-D mixture; 'mnist5k' is not one"),
        (("likelihood",), "'likelihood' evaluation .* needs a likelihood; a gan has none"),
        (("fid",), r"unknown evaluations \['fid'\]"),
    ],
)
def test_evaluations_that_cannot_serve_the_run_are_refused_before_training(evals, message, digits, tmp_path):
  config = tiny_config("gan")
  config.evals = evals
  with pytest.raises(errors.UserError, match=message):
    train_loop.train_and_evaluate(config, str(tmp_path), digits, writers.MemoryWriter())
  assert os.listdir(tmp_path) == []  # Refused before a checkpoint directory was made.


@contextlib.contextmanager
def _compilations():
  """Collects the messages of JAX's compilation log (with `jax.log_compiles()` on)."""
  messages = []
  handler = logging.Handler()
  handler.emit = lambda record: messages.append(record.getMessage())
  logger = logging.getLogger("jax")
  logger.addHandler(handler)
  try:
    yield messages
  finally:
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "run_name, offline",
    [
        ("vae", ["sample_quality", "likelihood", "reconstruction"]),
        ("ae", ["reconstruction"]),
        ("cgan", ["sample_quality"]),
        ("classifier", []),
    ],
)
def test_evaluations_choose_themselves_for_evaluate(run_name, offline, tiny_runs):
  assert evaluators.applicable(evaluators.OFFLINE, _context(tiny_runs[run_name])) == offline


def test_evaluations_are_checked_at_once_but_constructed_when_first_run(tiny_runs, tmp_path):
  context = _context(tiny_runs["cgan"], f"--config.eval.sample_quality.classifier_workdir={tmp_path / 'nothing'}")
  (built,) = evaluators.build(["sample_quality"], context)  # The feature network is not read yet.
  with pytest.raises(errors.UserError, match="is not a genjax run"):
    built.run(runs.load(tiny_runs["cgan"]).state, 4)


def test_sample_quality_scores_a_restorers_outputs_when_the_model_does_not_sample(tiny_runs, digits):
  config = load_config("denoise", "runlocal")
  config.data.patch_size, config.model.depth, config.model.features = 0, 3, 4
  config.eval.batch_size = 16
  config.eval.sample_quality.classifier_workdir = tiny_runs["classifier"]
  config.eval.sample_quality.num_images = 20
  built = experiment.build(config, digits.spec)
  context = evaluators.Context(built, lambda: digits, config.eval, seed=0)
  (quality,) = evaluators.build(["sample_quality"], context)
  metrics, _ = quality.run(built.init(), 0)
  assert quality.protocol["model_images"] == "restorations of the degraded real images"
  assert np.isfinite(metrics["fid"]) and metrics["fid"] > 0
