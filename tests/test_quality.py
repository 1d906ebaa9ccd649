"""Slow specifications (`pytest -m slow`): the runlocal configs learn what they promise on mnist5k."""

import pytest

from conftest import load_config
from genjax import train_loop
from genjax import writers
from genjax.data import catalog


@pytest.mark.slow
def test_runlocal_vae_reaches_a_good_bound_on_mnist5k(tfds_data_dir, tmp_path):
  config = load_config("vae", "runlocal")
  train = catalog.open_split("mnist5k", "train", tfds_data_dir, download=False)
  test = catalog.open_split("mnist5k", "test", tfds_data_dir, download=False)
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(tmp_path), train, test, writer)
  final = [m for m in writer.metrics if m["split"] == "eval"][-1]
  # Measured: 107.0 nats. A VAE that ignores its latent (KL -> 0) stays above about 150 nats on binarised MNIST.
  assert final["neg_elbo_nats"] < 112.0
  assert final["kl"] > 10.0


@pytest.mark.slow
def test_runlocal_autoencoder_reconstructs_test_digits(tfds_data_dir, tmp_path):
  config = load_config("ae", "runlocal")
  train = catalog.open_split("mnist5k", "train", tfds_data_dir, download=False)
  test = catalog.open_split("mnist5k", "test", tfds_data_dir, download=False)
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(config, str(tmp_path), train, test, writer)
  final = [m for m in writer.metrics if m["split"] == "eval"][-1]
  # Predicting the mean image gives an MSE of about 0.067 on MNIST; a working autoencoder is far below it.
  assert final["mse"] < 0.02
