"""DCGAN with the original non-saturating GAN loss on MNIST: the reference text's example, done right.

Hyperparameters of the reference text (and of DCGAN): batch 128, latent size 100, Adam lr 2e-4 with b1 = 0.5.
G: Dense 7x7x128 + BN + ReLU -> transposed conv 64 (4x4, stride 2) + BN + ReLU -> transposed conv 1 + tanh.
D: conv 64 (4x4, stride 2) + LeakyReLU 0.2 -> conv 128 (4x4, stride 2) + BN + LeakyReLU 0.2 -> Dense 1.

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/gan.py --workdir=/tmp/genjax/gan_mnist

CIFAR-10 through TFDS, the DCGAN at 32x32 (G: 4x4x512 -> 256 -> 128 -> 3 channels; D: 128 -> 256 -> 512), same
hyperparameters:
  python experiments/train.py --config=configs/gan.py:cifar10 --workdir=/tmp/genjax/gan_cifar10

Offline, on a CPU in a few minutes (bundled mnist5k), unconditional or class-conditional:
  python experiments/train.py --config=configs/gan.py:runlocal --workdir=/tmp/genjax/gan_local
  python experiments/train.py --config=configs/gan.py:runlocal,conditional --workdir=/tmp/genjax/cgan_local

Losses are overrides, e.g. the saturating minimax generator loss or least squares:
  python experiments/train.py --config=configs/gan.py:runlocal --workdir=/tmp/genjax/gan_minimax \
    --config.gan.loss=minimax
"""

import ml_collections

from genjax import config_lib
from genjax import errors


def parse_options(arg: str | None) -> ml_collections.ConfigDict:
  """The arguments that every image GAN config takes: runlocal (bundled mnist5k, short), conditional (one class
  embedding per label), cifar10 (32x32 colour)."""
  options = config_lib.parse_arg(arg, runlocal=False, conditional=False, cifar10=False)
  if options.runlocal and options.cifar10:
    raise errors.UserError("Config arguments runlocal and cifar10 exclude each other (runlocal trains on mnist5k).")
  return options


def base_config(options: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The DCGAN with the non-saturating loss, which wgan.py and wgan_gp.py override."""
  dataset = "mnist5k" if options.runlocal else "cifar10" if options.cifar10 else "mnist"
  # Pixels in [-1, 1]: the generator ends in tanh.
  config = config_lib.new_experiment("gan", config_lib.image_data(dataset, "none", (-1.0, 1.0)))
  config.model.architecture = "dcgan"  # dcgan | resnet | mlp
  config.model.latent_size = 100
  # Images are g_base_size * 2 ** len(g_channels) pixels square: 7 * 4 = 28 (MNIST) or 4 * 8 = 32 (CIFAR-10, the
  # DCGAN of Radford et al. at 32x32).
  config.model.g_base_size = 4 if options.cifar10 else 7
  config.model.g_channels = (512, 256, 128) if options.cifar10 else (128, 64)
  config.model.d_channels = (128, 256, 512) if options.cifar10 else (64, 128)
  config.model.num_classes = 10 if options.conditional else 0  # > 0: class-conditional G and projection D.
  config.model.d_normalization = "batch"  # batch | layer | none
  config.model.d_spectral_norm = False  # Divide each critic weight by its largest singular value (SNGAN).
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).

  # A shorter generator weight average for the short runlocal runs.
  config.gan = config_lib.gan("non_saturating", ema_decay=0.99 if options.runlocal else 0.999)
  config.optim = config_lib.optimizer("adam", 2e-4, 0.5, 0.999, "constant")
  config.train = config_lib.training(128, 1_500 if options.runlocal else 20_000, 100 if options.runlocal else 500)
  config_lib.evaluation_and_checkpoints(config, ("split", "grids"), every_steps=500 if options.runlocal else 5_000)
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config


def wasserstein_config(
    options: ml_collections.ConfigDict, optimizer: str, lr: float, b1: float, b2: float
) -> ml_collections.ConfigDict:
  """What WGAN and WGAN-GP share (Arjovsky et al. 2017, Gulrajani et al. 2017): the Wasserstein loss, 5 critic
  updates per generator update, batch 64, 1,000 steps in runlocal; the optimiser is each paper's."""
  config = base_config(options)
  config.gan.loss = "wasserstein"
  config.gan.n_critic = 5
  config.optim.name = optimizer
  config.optim.lr, config.optim.b1, config.optim.b2 = lr, b1, b2
  config.train.batch_size = 64
  config.train.total_steps = 1_000 if options.runlocal else 20_000
  return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return base_config(parse_options(arg))
