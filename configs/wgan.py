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

from configs import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = gan.parse_options(arg)
  config = gan.base_config(options)
  config.gan.loss = "wasserstein"
  config.gan.n_critic = 5
  config.gan.weight_clip = 0.01
  config.optim.name = "rmsprop"
  # The paper's 5e-5 for full runs. At that rate the 1,000 steps of runlocal end in blobs (measured); 5e-4 gives
  # digit-like samples within them.
  config.optim.lr = 5e-4 if options.runlocal else 5e-5
  config.optim.b1 = 0.0  # Unused by RMSProp.
  config.optim.b2 = 0.9  # RMSProp's decay.
  config.train.batch_size = 64
  config.train.total_steps = 1_000 if options.runlocal else 20_000
  return config
