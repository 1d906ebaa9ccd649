"""Convolutional MNIST classifier, trained to be the domain feature network of FID, KID and precision/recall.

Its penultimate activations (`config.model.feature_size` of them) are the feature space in which samples of a
generative model trained on the same kind of images are compared with real ones, as TF-GAN does with its MNIST
classifier. Any labelled TFDS image dataset works through `--config.data.name` (fashion_mnist, kmnist, emnist, ...);
set `--config.model.num_classes` to its number of classes.

Full MNIST through TFDS (downloads on first use):
  python experiments/train.py --config=configs/classifier.py --workdir=/tmp/genjax/classifier_mnist

Fashion-MNIST:
  python experiments/train.py --config=configs/classifier.py --workdir=/tmp/genjax/classifier_fashion_mnist \
    --config.data.name=fashion_mnist

Offline, on a laptop CPU in about a minute (bundled mnist5k; about 98% accuracy on its 1,000 test digits):
  python experiments/train.py --config=configs/classifier.py:runlocal --workdir=/tmp/genjax/classifier_local

On generated data (genjax/synthetic.py), from a class-conditional GAN trained first: generated digits only (its
Classification Accuracy Score), or half of each batch generated beside 10 real digits per class:
  python experiments/train.py --config=configs/gan.py:runlocal,conditional --workdir=/tmp/genjax/cgan_local
  python experiments/train.py --config=configs/classifier.py:runlocal --workdir=/tmp/genjax/classifier_cas \
    --config.data.synthetic.workdir=/tmp/genjax/cgan_local --config.data.synthetic.fraction=1
  python experiments/train.py --config=configs/classifier.py:runlocal --workdir=/tmp/genjax/classifier_aug10 \
    --config.data.synthetic.workdir=/tmp/genjax/cgan_local --config.data.real_per_class=10

The README's table of both, 3 seeds each (24 runs):
  python experiments/sweep.py run --config=configs/classifier.py:runlocal --sweep=generated_data \
    --sweep_dir=/tmp/genjax/sweeps/generated_data --config.data.synthetic.workdir=/tmp/genjax/cgan_local
  python experiments/sweep.py report --sweep_dir=/tmp/genjax/sweeps/generated_data --metric=accuracy
"""

import ml_collections

from genjax import config_lib


def get_sweep(name: str) -> list[dict]:
  """Named sweeps over this config. "generated_data" (with config.data.synthetic.workdir set for every point):
  real data only and generated data only (the Classification Accuracy Score), then 10, 50 and 100 real images per
  class with and without half of each batch generated, 3 seeds each."""
  seeds = config_lib.seeds(3)
  return config_lib.pick(
      name,
      {
          "generated_data": [
              *config_lib.product(config_lib.sweep("data.synthetic.fraction", [0.0, 1.0]), seeds),
              *config_lib.product(
                  config_lib.sweep("data.real_per_class", [10, 50, 100]),
                  config_lib.sweep("data.synthetic.fraction", [0.0, 0.5]),
                  seeds,
              ),
          ],
      },
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False)
  config = config_lib.new_experiment(
      "classifier", config_lib.image_data("mnist5k" if options.runlocal else "mnist", "none", (0.0, 1.0))
  )
  # Random shifts of up to one pixel, against overfitting (mnist5k has 400 training digits per class).
  config.data.random_crop_padding = 1
  config.model.architecture = "conv"  # conv: 3x3 convolution, ReLU and 2x2 max pool per entry of channels.
  config.model.channels = (16, 32, 64) if options.runlocal else (32, 64, 128)
  config.model.feature_size = 128  # The width of the feature space that evaluation compares images in.
  config.model.num_classes = 10
  config.model.dropout_rate = 0.5  # Between the features and the logits.
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).

  config.optim = config_lib.optimizer("adam", 3e-3 if options.runlocal else 1e-3, 0.9, 0.999, "cosine", 100)
  config.train = config_lib.training(
      64 if options.runlocal else 128, 1_000 if options.runlocal else 10_000, 100 if options.runlocal else 500
  )
  config_lib.evaluation_and_checkpoints(config, ("split",), every_steps=500 if options.runlocal else 2_500)
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
