"""WGAN with weight clipping (Arjovsky et al. 2017) on MNIST, with the paper's hyperparameters.

The critic is the DCGAN discriminator (batch normalisation is allowed here: there is no gradient penalty) trained
on the Wasserstein loss, 5 critic updates per generator update, critic weights clipped to [-0.01, 0.01], RMSProp
with learning rate 5e-5, batch 64 (runlocal raises the rate to 5e-4 to learn digits in its 1,000 steps).

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/wgan.py --workdir=/tmp/genjax/wgan_mnist

CIFAR-10 through TFDS, the DCGAN pair at 32x32 with the same WGAN hyperparameters:
  python experiments/train.py --config=configs/wgan.py:cifar10 --workdir=/tmp/genjax/wgan_cifar10

Offline, on a CPU in a few minutes (bundled mnist5k), unconditional or class-conditional:
  python experiments/train.py --config=configs/wgan.py:runlocal --workdir=/tmp/genjax/wgan_local
  python experiments/train.py --config=configs/wgan.py:runlocal,conditional --workdir=/tmp/genjax/cwgan_local
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False, conditional=False, cifar10=False)
  config = ml_collections.ConfigDict()
  config.family = "gan"
  config.seed = 0

  # Pixels in [-1, 1]: the generator ends in tanh.
  config.data = config_lib.image_data(config_lib.image_gan_dataset(options), "none", (-1.0, 1.0))

  config.model = ml_collections.ConfigDict()
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

  config.gan = ml_collections.ConfigDict()
  config.gan.loss = "wasserstein"  # non_saturating | minimax | hinge | least_squares | wasserstein
  config.gan.penalty = "none"  # none | wgan_gp | r1
  config.gan.penalty_weight = 10.0  # lambda of WGAN-GP, gamma of R1.
  config.gan.n_critic = 5  # Discriminator updates per generator update.
  config.gan.weight_clip = 0.01  # WGAN's critic weight clipping c; 0 disables.
  # Generator weight average used for samples (0 disables); a shorter memory for short runs.
  config.gan.ema_decay = 0.99 if options.runlocal else 0.999
  config.gan.ema_start_step = 500

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "rmsprop"  # adam | adamw | rmsprop
  # The paper's 5e-5 for full runs. At that rate the 1,000 steps of runlocal end in blobs (measured); 5e-4 gives
  # digit-like samples within them.
  config.optim.lr = 5e-4 if options.runlocal else 5e-5
  config.optim.b1 = 0.0  # Unused by RMSProp.
  config.optim.b2 = 0.9  # RMSProp's decay.
  config.optim.weight_decay = 0.0
  config.optim.schedule = "constant"  # constant | cosine
  config.optim.warmup_steps = 0
  config.optim.grad_clip_norm = 0.0  # 0 disables clipping.

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 64  # Global batch, over all devices and processes.
  config.train.total_steps = 1_000 if options.runlocal else 20_000
  config.train.log_every_steps = 100 if options.runlocal else 500

  config_lib.evaluation_and_checkpoints(config, every_steps=500 if options.runlocal else 5_000)
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
