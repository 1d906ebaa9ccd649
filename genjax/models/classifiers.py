"""Image classifiers: a small convolutional network whose penultimate activations are a domain feature space.

Images are NHWC floats in the data pipeline's pixel range. The classifier returns logits; `features` returns the
activations that FID, KID and precision/recall compare (for MNIST-like data, in the manner of TF-GAN's MNIST
classifier score). Dropout sits after the features, so the features of an image never depend on a random key.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from genjax.models import layers


class ConvClassifier(nn.Module):
  """`[N, H, W, C] -> [N, num_classes]` logits: per entry of `channels` a 3x3 convolution, ReLU and 2x2 max pool,
  then a dense ReLU layer of `feature_size` (the features), dropout and a dense layer to the logits.

  Each stage halves H and W (rounding down), so H and W must be at least 2 ** len(channels).
  """

  channels: Sequence[int] = (32, 64)
  feature_size: int = 128
  num_classes: int = 10
  dropout_rate: float = 0.5

  def setup(self):
    self.convs = [layers.conv(width, (3, 3), padding="SAME") for width in self.channels]
    self.feature_layer = nn.Dense(self.feature_size)
    self.dropout = nn.Dropout(self.dropout_rate)
    self.logits_layer = nn.Dense(self.num_classes)

  def features(self, images: jax.Array) -> jax.Array:
    """The penultimate activations `[N, feature_size]`, as at inference (deterministic)."""
    x = images
    for conv in self.convs:
      x = nn.max_pool(nn.relu(conv(x)), (2, 2), strides=(2, 2))
    return nn.relu(self.feature_layer(layers.flatten(x)))

  def __call__(self, images: jax.Array, train: bool) -> jax.Array:
    """Logits `[N, num_classes]`; with `train`, dropout draws from the "dropout" rng stream."""
    return self.logits_layer(self.dropout(self.features(images), deterministic=not train))
