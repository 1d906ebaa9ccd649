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
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False)
  config = ml_collections.ConfigDict()
  config.family = "classifier"
  config.seed = 0
  config.data = config_lib.image_data("mnist5k" if options.runlocal else "mnist", "none", (0.0, 1.0))
  # Random shifts of up to one pixel, against overfitting (mnist5k has 400 training digits per class).
  config.data.random_crop_padding = 1

  config.model = ml_collections.ConfigDict()
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
