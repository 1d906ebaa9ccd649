"""Perceptual comparisons in the features of a pretrained VGG: LPIPS and Gram matrices, as pure functions.

- `lpips(weights, reference, images, pixel_range) -> [N]`: the Learned Perceptual Image Patch Similarity of Zhang et
  al. 2018 ("The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), version 0.1 with VGG16, as the
  `lpips` package computes it: at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, each position's feature vector is
  divided by its Euclidean norm (+ 1e-10), the squared differences are weighed per channel by LPIPS' non-negative
  linear layer, summed over channels, averaged over positions, and the five layers summed. 0 for identical images,
  lower is more alike. The package's input scaling of [-1, 1] images (shift -0.030, -0.088, -0.188; scale 0.458,
  0.448, 0.450) is ImageNet's mean and standard deviation carried to [-1, 1], so `vgg.imagenet_normalize` is it.
- `gram_matrix(features) -> [N, C, C]`: the style representation of Gatys et al. 2016.

The weights are an argument (`genjax.feature_networks.vgg_weights.lpips_weights` loads them), so a jitted caller
receives them as a frozen network's arrays and never compiles them in as constants.
"""

import jax
import jax.numpy as jnp

from genjax.models import vgg

# The VGG16 layers LPIPS compares, in the order of its linear layers lin0..lin4.
LPIPS_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_LPIPS_EPSILON = 1e-10  # The lpips package's normalize_tensor.


def lpips(weights, reference: jax.Array, images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """LPIPS v0.1 (VGG) between `[N, H, W, C]` images in `pixel_range` (grey or RGB; grey is repeated to RGB): `[N]`,
  symmetric, 0 for identical images.

  weights: `{"vgg": VGG16 variables, "linear": {"lin0": [64], ..., "lin4": [512]}}`.
  """
  if reference.shape != images.shape:
    raise ValueError(f"LPIPS compares images of one shape, got {reference.shape} and {images.shape}")
  both = vgg.imagenet_normalize(jnp.concatenate([reference, images]), pixel_range)
  features = vgg.VGG(16, LPIPS_TAPS).apply(weights["vgg"], both)
  distance = jnp.zeros(reference.shape[0], jnp.float32)
  for index, tap in enumerate(LPIPS_TAPS):
    unit = features[tap] / (jnp.sqrt(jnp.sum(jnp.square(features[tap]), axis=-1, keepdims=True)) + _LPIPS_EPSILON)
    first, second = jnp.split(unit, 2)
    weighed = jnp.sum(jnp.square(first - second) * weights["linear"][f"lin{index}"], axis=-1)
    distance = distance + jnp.mean(weighed, axis=(1, 2))
  return distance


def gram_matrix(features: jax.Array) -> jax.Array:
  """`[N, H, W, C]` features -> `[N, C, C]`: G[c, d] = mean over positions of F[., c] F[., d] (Gatys et al. 2016,
  divided by the number of positions so that style weights do not depend on the image's size)."""
  batch, height, width, channels = features.shape
  flat = jnp.reshape(features, (batch, height * width, channels))
  return jnp.einsum("npc,npd->ncd", flat, flat, precision=jax.lax.Precision.HIGHEST) / (height * width)
