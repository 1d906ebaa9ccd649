"""Specification of anomaly detection (genjax.metrics.anomaly, genjax.evaluators.anomaly, experiments/anomaly.py):
AUROC and AUPRC on constructed cases, every test image scored with what the model offers, the left-out classes
as the anomalies, the histogram and the most anomalous images written, and what cannot work refused."""

import json
import os

import numpy as np
import pytest

from conftest import run_command, tiny_config
from genjax import errors
from genjax import evaluators
from genjax import runs
from genjax import sampling
from genjax import train_loop
from genjax import writers
from genjax.metrics import anomaly
from genjax.metrics import image_quality


def test_perfectly_separating_scores_give_one_and_uninformative_scores_one_half():
  is_anomaly = np.array([0, 0, 0, 1, 1, 0, 1, 0])
  separating = anomaly.separation(np.where(is_anomaly, 5.0, 1.0) + np.arange(8) * 0.01, is_anomaly)
  assert separating == {"auroc": 1.0, "auprc": 1.0}
  identical = anomaly.separation(np.ones(8), is_anomaly)
  assert identical["auroc"] == 0.5
  assert identical["auprc"] == pytest.approx(3 / 8)  # Chance: the share of anomalies.
  assert anomaly.separation(np.where(is_anomaly, 0.0, 1.0), is_anomaly)["auroc"] == 0.0


@pytest.mark.parametrize(
    "scores, is_anomaly, message",
    [([1.0, 2.0], [0, 0], "examples have 0 anomalies"), ([1.0, np.nan], [0, 1], "1 anomaly scores are not finite")],
)
def test_scores_that_cannot_rank_anomalies_are_refused(scores, is_anomaly, message):
  with pytest.raises(errors.UserError, match=message):
    anomaly.separation(np.array(scores), np.array(is_anomaly))


def _detector(workdir, *overrides):
  run = runs.load(workdir, overrides=["--config.eval.anomaly.iwae_samples=4", *overrides])
  context = evaluators.Context(run.experiment, lambda: run.data, run.config.eval, seed=0)
  detector = evaluators.create("anomaly", context)
  return run, detector


def test_every_test_image_is_scored_and_the_left_out_classes_are_the_anomalies(tiny_runs):
  run, detector = _detector(tiny_runs["vae"], "--config.data.exclude_classes=(3, 8)")
  scores = detector.scores(run.state)
  assert detector.score_names == ("reconstruction_error", "neg_elbo", "iwae")
  labels = np.array([example["label"] for example in run.data.eval])
  np.testing.assert_array_equal(scores["label"], labels)
  np.testing.assert_array_equal(scores["is_anomaly"], np.isin(labels, (3, 8)))
  # The reconstruction error is the mean squared error of the model's own reconstructions.
  images = sampling.first_images(run.experiment, run.data.eval, 5)
  expected = image_quality.mean_squared_error(images, run.experiment.reconstruct(run.state, images))
  np.testing.assert_allclose(scores["reconstruction_error"][:5], expected, rtol=1e-5)
  assert np.all(scores["neg_elbo"] > 0)


@pytest.mark.parametrize(
    "run_name, overrides, message",
    [
        ("ae", [], "needs config.data.exclude_classes"),
        ("classifier", ["--config.data.exclude_classes=(3,)"], "needs a model that reconstructs"),
        # A projection critic's score needs a label.
        ("cgan", ["--config.data.exclude_classes=(3,)"], "needs a model that reconstructs"),
    ],
)
def test_a_run_that_cannot_score_anomalies_is_refused(run_name, overrides, message, tiny_runs):
  with pytest.raises(errors.UserError, match=message):
    _detector(tiny_runs[run_name], *overrides)


def test_a_gan_trained_without_a_class_reports_its_critics_auroc_histogram_and_most_anomalous_images(digits, tmp_path):
  config = tiny_config("gan", data__exclude_classes=(3,), eval__anomaly__num_images=6)
  config.evals = ("anomaly",)
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(tmp_path), digits, writer)
  (eval_line,) = [line for line in writer.metrics if line["split"] == "eval"]
  assert 0.0 <= eval_line["auroc_critic"] <= 1.0 and 0.0 < eval_line["auprc_critic"] <= 1.0
  images = {name: image for step, name, image in writer.images}
  histogram, most_anomalous = images["anomaly_histogram_critic"], images["anomaly_top_critic"]
  assert histogram.ndim == 3 and histogram.shape[2] == 3 and histogram.dtype == np.uint8
  # 6 digits in 2 rows of 3 28x28 images with one-pixel gaps.
  assert most_anomalous.shape == (2 * 29 + 1, 3 * 29 + 1, 1)


@pytest.mark.cli  # One process per tool, for the exit-status wiring; the rest is tested in-process.
def test_anomaly_command_writes_metrics_scores_histogram_and_grid(tiny_runs, tmp_path):
  result = run_command(
      "anomaly.py",
      f"--workdir={tiny_runs['ae']}",
      f"--out_dir={tmp_path}",
      "--num_images=4",
      "--config.data.exclude_classes=(3,)",
  )
  assert result.returncode == 0, result.stderr
  assert "| auroc_reconstruction_error | " in result.stdout  # The summary's table, printed.
  with open(tmp_path / "metrics.json") as f:
    written = json.load(f)
  assert 0.0 <= written["metrics"]["auroc_reconstruction_error"] <= 1.0
  assert written["protocol"]["anomalous_classes"] == [3]
  scores = np.load(tmp_path / "scores.npz")
  assert len(scores["reconstruction_error"]) == len(scores["label"]) == 1000
  assert scores["is_anomaly"].sum() == np.sum(scores["label"] == 3) == 100
  assert os.path.exists(tmp_path / "anomaly_histogram_reconstruction_error.png")
  assert os.path.exists(tmp_path / "anomaly_top_reconstruction_error.png")
