"""WGAN-GP (Gulrajani et al. 2017) on MNIST, with the paper's hyperparameters.

The critic is the DCGAN discriminator with layer normalisation instead of batch normalisation (the paper's advice
for a critic with a gradient penalty), trained on the Wasserstein loss plus 10 x the two-sided gradient penalty,
5 critic updates per generator update, Adam with learning rate 1e-4 and betas (0, 0.9), batch 64.

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/wgan_gp.py --workdir=/tmp/genjax/wgan_gp_mnist

CIFAR-10 through TFDS with the paper's ResNet generator and critic (appendix of Gulrajani et al.) and the
hyperparameters of its Algorithm 1 (Adam 1e-4, betas (0, 0.9), 5 critic updates, lambda 10, batch 64):
  python experiments/train.py --config=configs/wgan_gp.py:cifar10 --workdir=/tmp/genjax/wgan_gp_cifar10

Offline, on a CPU in a few minutes (bundled mnist5k), unconditional or class-conditional:
  python experiments/train.py --config=configs/wgan_gp.py:runlocal --workdir=/tmp/genjax/wgan_gp_local
  python experiments/train.py --config=configs/wgan_gp.py:runlocal,conditional --workdir=/tmp/genjax/cwgan_gp_local
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
  # CIFAR-10: the paper's ResNet generator and critic (128 channels, 4x4 -> 32x32, a critic without normalisation).
  config.model.architecture = "resnet" if options.cifar10 else "dcgan"  # dcgan | resnet | mlp
  config.model.latent_size = 128 if options.cifar10 else 100
  config.model.g_base_size = 4 if options.cifar10 else 7  # Images are g_base_size * 2 ** len(g_channels) square.
  config.model.g_channels = (128, 128, 128) if options.cifar10 else (128, 64)
  config.model.d_channels = (128, 128, 128, 128) if options.cifar10 else (64, 128)
  config.model.num_classes = 10 if options.conditional else 0  # > 0: class-conditional G and projection D.
  config.model.d_normalization = "none" if options.cifar10 else "layer"  # batch | layer | none
  config.model.d_spectral_norm = False  # Divide each critic weight by its largest singular value (SNGAN).

  config.gan = ml_collections.ConfigDict()
  config.gan.loss = "wasserstein"  # non_saturating | minimax | hinge | least_squares | wasserstein
  config.gan.penalty = "wgan_gp"  # none | wgan_gp | r1
  config.gan.penalty_weight = 10.0  # lambda of WGAN-GP, gamma of R1.
  config.gan.n_critic = 5  # Discriminator updates per generator update.
  config.gan.weight_clip = 0.0  # WGAN's critic weight clipping c; 0 disables.
  # Generator weight average used for samples (0 disables); a shorter memory for short runs.
  config.gan.ema_decay = 0.99 if options.runlocal else 0.999
  config.gan.ema_start_step = 500

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"  # adam | adamw | rmsprop
  config.optim.lr = 1e-4
  config.optim.b1 = 0.0
  config.optim.b2 = 0.9
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
