"""torchvision's VGG16 and VGG19 convolutional trunks (Simonyan & Zisserman 2015) as a flax.linen module that returns
the activations of named layers, the ImageNet normalisation their weights expect, and LPIPS (`lpips`: VGG16's
features weighed by LPIPS' learned linear layers).

Layers are named as the perceptual-loss literature names them: `conv{block}_{index}` is a convolution's output
before its ReLU (ESRGAN's features), `relu{block}_{index}` the same after it (SRGAN's, Gatys', LPIPS'). The
submodules carry those conv names, so that torchvision's `features.{i}.weight` is `params/conv{b}_{k}/kernel`
(`genjax.feature_networks.vgg_weights` maps the indices). Only the trunk is here: the classifier is no feature
network, and the network stops at the deepest layer asked for. Max pools are 2x2 with stride 2 and drop an odd last
row or column, as torch's floor mode does. Loading weights is `genjax.feature_networks.vgg_weights`' job; this file
knows nothing of files.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

# Output channels of each convolution, block by block (torchvision's configurations "D" and "E").
BLOCKS = {
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}
# torchvision's normalisation of [0, 1] RGB images (the statistics of ImageNet's training set).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_names(depth: int) -> list[str]:
  """The convolutions of VGG`depth` in order: conv1_1, conv1_2, conv2_1, ..."""
  return [
      f"conv{block}_{index}" for block, widths in enumerate(BLOCKS[depth], 1) for index in range(1, len(widths) + 1)
  ]


def layer_names(depth: int) -> list[str]:
  """Every layer a `VGG(depth)` can return, in order: conv1_1, relu1_1, conv1_2, relu1_2, ..."""
  return [name for conv in conv_names(depth) for name in (conv, "relu" + conv[len("conv") :])]


def imagenet_normalize(images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """`[N, H, W, 1 or 3]` images in `pixel_range` -> float32 RGB with ImageNet's mean subtracted and divided by its
  standard deviation, what torchvision's VGG weights were trained on. Grey images are repeated to RGB."""
  low, high = pixel_range
  if not high > low:
    raise ValueError(f"pixel_range must be (low, high) with high > low, got {pixel_range}")
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"expected NHWC images with 1 or 3 channels, got shape {images.shape}")
  images = (jnp.asarray(images, jnp.float32) - low) / (high - low)
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  return (images - jnp.array(IMAGENET_MEAN, jnp.float32)) / jnp.array(IMAGENET_STD, jnp.float32)


class VGG(nn.Module):
  """`VGG(depth, taps)(images) -> {tap: [N, h, w, C]}` for ImageNet-normalised RGB images `[N, H, W, 3]`
  (`imagenet_normalize`).

  depth: 16 or 19.
  taps: names from `layer_names(depth)`, e.g. ("relu1_2", "relu2_2", "conv5_4").
  precision: of the convolutions; HIGHEST makes CPU and accelerator features agree to float32 rounding, a perceptual
    loss in training may prefer DEFAULT.
  """

  depth: int
  taps: tuple[str, ...]
  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    if self.depth not in BLOCKS:
      raise ValueError(f"VGG depth must be one of {sorted(BLOCKS)}, got {self.depth}")
    known = layer_names(self.depth)
    unknown = [tap for tap in self.taps if tap not in known]
    if unknown or not self.taps:
      raise ValueError(f"VGG{self.depth} taps must be some of {', '.join(known)}; got {self.taps}")
    deepest = max(known.index(tap) for tap in self.taps)
    taps, x = {}, images
    for name in known[: deepest + 1]:
      if name.startswith("conv"):
        block, index = (int(number) for number in name[len("conv") :].split("_"))
        if index == 1 and block > 1:
          x = nn.max_pool(x, (2, 2), strides=(2, 2))
        width = BLOCKS[self.depth][block - 1][index - 1]
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), precision=self.precision, name=name)(x)
      else:
        x = nn.relu(x)
      if name in self.taps:
        taps[name] = x
    return taps


# LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), version 0.1
# with VGG16, as the `lpips` package computes it: at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, each position's
# feature vector is divided by its Euclidean norm (+ 1e-10), the squared differences are weighed per channel by
# LPIPS' non-negative linear layer, summed over channels, averaged over positions, and the five layers summed. The
# package's input scaling of [-1, 1] images (shift -0.030, -0.088, -0.188; scale 0.458, 0.448, 0.450) is ImageNet's
# mean and standard deviation carried to [-1, 1], so `imagenet_normalize` is it. The weights are an argument
# (`genjax.feature_networks.vgg_weights.lpips_weights` loads them), so a jitted caller receives them as arrays and
# never compiles them in as constants.

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
  both = imagenet_normalize(jnp.concatenate([reference, images]), pixel_range)
  features = VGG(16, LPIPS_TAPS).apply(weights["vgg"], both)
  distance = jnp.zeros(reference.shape[0], jnp.float32)
  for index, tap in enumerate(LPIPS_TAPS):
    unit = features[tap] / (jnp.sqrt(jnp.sum(jnp.square(features[tap]), axis=-1, keepdims=True)) + _LPIPS_EPSILON)
    first, second = jnp.split(unit, 2)
    weighed = jnp.sum(jnp.square(first - second) * weights["linear"][f"lin{index}"], axis=-1)
    distance = distance + jnp.mean(weighed, axis=(1, 2))
  return distance
