"""Convolutional autoencoder on MNIST; `denoising` makes it a denoising autoencoder.

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/ae.py --workdir=/tmp/genjax/ae_mnist

Offline, on a laptop CPU in about a minute (bundled mnist5k, smaller model):
  python experiments/train.py --config=configs/ae.py:runlocal --workdir=/tmp/genjax/ae_local

Denoising autoencoder (Gaussian input noise, std 0.3 on [0, 1] pixels):
  python experiments/train.py --config=configs/ae.py:runlocal,denoising --workdir=/tmp/genjax/dae_local

One-class anomaly detection (genjax/evaluators/anomaly.py): digit 3 left out of training, then scored as the anomaly
of the test split; the sweep leaves out each digit in turn, for the README's AUROC table:
  python experiments/train.py --config=configs/ae.py:runlocal --workdir=/tmp/genjax/ae_without_3 \
    --config.data.exclude_classes="(3,)" --config.evals="('split', 'anomaly')"
  python experiments/anomaly.py --workdir=/tmp/genjax/ae_without_3
  python experiments/sweep.py run --config=configs/ae.py:runlocal --sweep=one_class \
    --sweep_dir=/tmp/genjax/sweeps/ae_one_class
"""

import ml_collections

from genjax import config_lib


def get_sweep(name: str) -> list[dict]:
  """Named sweeps: "one_class" leaves each digit out of training in turn and finds it among the test digits by
  reconstruction error (10 runs: the README's AUROC table); "normal_class" trains on each digit alone and finds the
  nine others."""
  return config_lib.pick(name, {"one_class": config_lib.one_class(10), "normal_class": config_lib.one_normal_class(10)})


def base_config(
    family: str, runlocal: bool, binarize: str, likelihood: str, total_steps: tuple[int, int], eval_every_steps: int
) -> ml_collections.ConfigDict:
  """What the MNIST autoencoder and VAE share (unlocked): the convolutional encoder and decoder, Adam with a cosine
  schedule, batch 64 (runlocal, bundled mnist5k) or 128; `total_steps` is (runlocal, full)."""
  data = config_lib.image_data("mnist5k" if runlocal else "mnist", binarize, (0.0, 1.0))
  config = config_lib.new_experiment(family, data)
  config.model.architecture = "conv"  # conv | mlp
  config.model.widths = (16, 32) if runlocal else (32, 64)  # conv channels or mlp hidden sizes
  config.model.latent_size = 16 if runlocal else 32
  config.model.likelihood = likelihood
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  config.optim = config_lib.optimizer("adam", 2e-3 if runlocal else 1e-3, 0.9, 0.999, "cosine", 100)
  config.train = config_lib.training(64 if runlocal else 128, total_steps[0 if runlocal else 1], 100 if runlocal else 500)
  config_lib.evaluation_and_checkpoints(config, ("split", "grids"), every_steps=eval_every_steps)
  config_lib.mesh_and_distributed(config)
  return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False, denoising=False)
  config = base_config(
      "autoencoder",
      options.runlocal,
      binarize="none",
      likelihood="gaussian",  # gaussian (squared error) | bernoulli (cross-entropy)
      total_steps=(1_500, 20_000),
      eval_every_steps=500 if options.runlocal else 5_000,
  )
  config.model.input_noise_std = 0.3 if options.denoising else 0.0
  config.lock()
  return config
