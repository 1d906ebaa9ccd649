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

from configs import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = gan.parse_options(arg)
  config = gan.wasserstein_config(options, "adam", 1e-4, b1=0.0, b2=0.9)
  if options.cifar10:  # The paper's ResNet generator and critic: 128 channels, 4x4 -> 32x32, no normalisation.
    config.model.architecture = "resnet"
    config.model.latent_size = 128
    config.model.g_channels = (128, 128, 128)
    config.model.d_channels = (128, 128, 128, 128)
  # A gradient penalty needs a critic without batch statistics (the paper's advice: layer normalisation).
  config.model.d_normalization = "none" if options.cifar10 else "layer"
  config.gan.penalty = "wgan_gp"
  return config
