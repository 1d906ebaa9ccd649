"""Convolutional VAE on binarised MNIST (Bernoulli likelihood, dynamic binarisation).

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/vae.py --workdir=/tmp/genjax/vae_mnist

Offline, on a laptop CPU in about two minutes (bundled mnist5k, smaller model):
  python experiments/train.py --config=configs/vae.py:runlocal --workdir=/tmp/genjax/vae_local

Ablations are overrides, e.g. a beta-VAE on 8-bit pixels with a discretised logistic likelihood:
  python experiments/train.py --config=configs/vae.py:runlocal --workdir=/tmp/genjax/vae_dlogistic \
    --config.model.beta=4.0 --config.model.likelihood=discretized_logistic \
    --config.data.binarize=none --config.data.pixel_range="(-1.0, 1.0)"

One-class anomaly detection (genjax/evaluators/anomaly.py) as for configs/ae.py, scored by the negative ELBO and the
IWAE bound as well as the reconstruction error; the sweep leaves out each digit in turn (the README's AUROC table):
  python experiments/sweep.py run --config=configs/vae.py:runlocal --sweep=one_class \
    --sweep_dir=/tmp/genjax/sweeps/vae_one_class
"""

import ml_collections

from configs import ae
from genjax import config_lib


def get_sweep(name: str) -> list[dict]:
  """Named sweeps: "one_class" leaves each digit out of training in turn and finds it among the test digits by
  reconstruction error, negative ELBO and the IWAE bound (10 runs: the README's AUROC table)."""
  return config_lib.pick(name, {"one_class": config_lib.one_class(10)})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False)
  config = ae.base_config(
      "vae",
      options.runlocal,
      binarize="dynamic",
      likelihood="bernoulli",  # bernoulli | discretized_logistic
      total_steps=(3_000, 30_000),
      eval_every_steps=1_000 if options.runlocal else 5_000,
  )
  config.model.beta = 1.0
  config.lock()
  return config
