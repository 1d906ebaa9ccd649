"""Slow specifications (`pytest -m slow`): the runlocal configs learn what they promise on mnist5k, and WGAN-GP
covers the 25-mode grid."""

import pytest

from conftest import load_config
from genjax import train_loop
from genjax import writers
from genjax.data import sources


def _final_eval_of_runlocal(name, tfds_data_dir, workdir):
  """Trains configs/<name>.py:runlocal on mnist5k and returns its last eval line."""
  config = load_config(name, "runlocal")
  config.data.data_dir = tfds_data_dir
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(workdir), sources.open_source(config.data), writer)
  return [m for m in writer.metrics if m["split"] == "eval"][-1]


@pytest.mark.slow
def test_runlocal_vae_reaches_a_good_bound_on_mnist5k(tfds_data_dir, tmp_path):
  final = _final_eval_of_runlocal("vae", tfds_data_dir, tmp_path)
  # Measured: 107.0 nats. A VAE that ignores its latent (KL -> 0) stays above about 150 nats on binarised MNIST.
  assert final["neg_elbo_nats"] < 112.0
  assert final["kl"] > 10.0


@pytest.mark.slow
def test_runlocal_autoencoder_reconstructs_test_digits(tfds_data_dir, tmp_path):
  final = _final_eval_of_runlocal("ae", tfds_data_dir, tmp_path)
  # Predicting the mean image gives an MSE of about 0.067 on MNIST; a working autoencoder is far below it.
  assert final["mse"] < 0.02


@pytest.mark.slow
def test_wgan_gp_covers_all_25_grid_modes_with_mostly_high_quality_samples(tmp_path):
  config = load_config("toy2d", "dataset=grid,loss=wgan_gp")
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(tmp_path), sources.open_source(config.data), writer)
  final = [m for m in writer.metrics if m["split"] == "eval"][-1]
  # Measured: 25 modes, 0.843 of the samples within 3 standard deviations of a mode (the issue asks for 0.8).
  assert final["modes_covered"] == 25
  assert final["high_quality_fraction"] >= 0.8
