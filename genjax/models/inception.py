"""The Inception-v3 of the reference FID implementations, as a flax.linen module, and the preprocessing it expects.

`FIDInceptionV3` is a port of pytorch-fid's `fid_inception_v3()` (mseitzer/pytorch-fid, src/pytorch_fid/
inception.py), which is torchvision's Inception-v3 patched to reproduce the TensorFlow graph of 2015-12-05 that
the original FID code (Heusel et al. 2017) used: the average pools of the Mixed blocks do not count padding, the
last block (Mixed_7c) pools its fourth branch with a max pool, every convolution has no bias and is followed by
BatchNorm with eps 0.001. It returns the 2048-d "pool_3" features (the global average pool after Mixed_7c); the
1008-way classifier of the TF graph is not part of it.

Submodules carry torchvision's attribute names (Conv2d_1a_3x3, Mixed_5b, branch1x1, conv, bn, ...), so that the
torch parameter `Mixed_5b.branch1x1.conv.weight` is the flax parameter `params/Mixed_5b/branch1x1/conv/kernel`.
The module is inference only: BatchNorm uses its stored statistics. Loading the published weights is
genjax/metrics/inception_weights.py's job; this file knows nothing of files.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

# The TF graph's input resolution; features at any other size are not comparable with published FIDs.
INPUT_SIZE = 299
FEATURE_SIZE = 2048


def fid_preprocess(images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """`[N, H, W, 1 or 3]` images with values in `pixel_range` -> `[N, 299, 299, 3]` float32 in [-1, 1].

  Grey images are repeated to three channels (what PIL's convert("RGB") does in pytorch-fid's data loader).
  Resizing is bilinear with half-pixel centres, like pytorch-fid's F.interpolate(mode="bilinear",
  align_corners=False); its weights sum to one, so rescaling before resizing (pytorch-fid rescales after) changes
  nothing. Checked against torch 2.13 on random images: jax.image.resize(method="bilinear", antialias=False)
  agrees to float32 rounding (max abs difference 2e-7) when upsampling 28, 32, 64, 128, 256 and 298 -> 299 and
  when downsampling 300, 512 and 1024 -> 299. Antialiasing only acts when downsampling, where torch's bilinear
  mode has none (with it on, 512 -> 299 differs by up to 1.1), so it is off.
  """
  low, high = pixel_range
  if not high > low:
    raise ValueError(f"pixel_range must be (low, high) with high > low, got {pixel_range}")
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"expected NHWC images with 1 or 3 channels, got shape {images.shape}")
  images = (jnp.asarray(images, jnp.float32) - low) * (2.0 / (high - low)) - 1.0
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  if images.shape[1:3] == (INPUT_SIZE, INPUT_SIZE):
    return images
  return jax.image.resize(images, (images.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False)


class BasicConv2d(nn.Module):
  """Convolution without bias, BatchNorm (eps 0.001, stored statistics), ReLU: torchvision's BasicConv2d."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)
  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad_h, pad_w = self.padding
    x = nn.Conv(
        self.features,
        self.kernel_size,
        self.strides,
        padding=((pad_h, pad_h), (pad_w, pad_w)),
        use_bias=False,
        precision=self.precision,
        name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3_same(x: jax.Array) -> jax.Array:
  # TF's average pool divides by the number of real pixels under the window, not by 9 (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_stride2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  """35x35 block (Mixed_5b..5d): 1x1, 5x5, double 3x3 and average-pool branches."""

  pool_features: int
  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch1x1 = conv(64, (1, 1), name="branch1x1")(x)

    branch5x5 = conv(48, (1, 1), name="branch5x5_1")(x)
    branch5x5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(branch5x5)

    branch3x3dbl = conv(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(branch3x3dbl)

    branch_pool = conv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """Grid reduction 35x35 -> 17x17 (Mixed_6a): stride-2 3x3, double 3x3 and max-pool branches."""

  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch3x3 = conv(384, (3, 3), strides=2, name="branch3x3")(x)

    branch3x3dbl = conv(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, (3, 3), strides=2, name="branch3x3dbl_3")(branch3x3dbl)

    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block (Mixed_6b..6e): 1x1, factorised 7x7, double factorised 7x7 and average-pool branches."""

  channels_7x7: int
  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv2d, precision=self.precision)
    c7 = self.channels_7x7
    branch1x1 = conv(192, (1, 1), name="branch1x1")(x)

    branch7x7 = conv(c7, (1, 1), name="branch7x7_1")(x)
    branch7x7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)

    branch7x7dbl = conv(c7, (1, 1), name="branch7x7dbl_1")(x)
    branch7x7dbl = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(branch7x7dbl)
    branch7x7dbl = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(branch7x7dbl)
    branch7x7dbl = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(branch7x7dbl)
    branch7x7dbl = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(branch7x7dbl)

    branch_pool = conv(192, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Grid reduction 17x17 -> 8x8 (Mixed_7a): 1x1 + stride-2 3x3, 1x1 + 7x7 + stride-2 3x3, max-pool branches."""

  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch3x3 = conv(192, (1, 1), name="branch3x3_1")(x)
    branch3x3 = conv(320, (3, 3), strides=2, name="branch3x3_2")(branch3x3)

    branch7x7x3 = conv(192, (1, 1), name="branch7x7x3_1")(x)
    branch7x7x3 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = conv(192, (3, 3), strides=2, name="branch7x7x3_4")(branch7x7x3)

    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block (Mixed_7b, 7c): 1x1, split 3x3, double split 3x3 and pool branches.

  `max_pool=True` is the TF graph's Mixed_7c (pytorch-fid's FIDInceptionE_2), which pools its fourth branch with a
  3x3 max pool; Mixed_7b (FIDInceptionE_1) uses the padding-excluding average pool like the other blocks.
  """

  max_pool: bool
  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch1x1 = conv(320, (1, 1), name="branch1x1")(x)

    branch3x3 = conv(384, (1, 1), name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate(
        [
            conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
            conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3),
        ],
        axis=-1,
    )

    branch3x3dbl = conv(448, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = jnp.concatenate(
        [
            conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(branch3x3dbl),
            conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(branch3x3dbl),
        ],
        axis=-1,
    )

    if self.max_pool:
      # Padding with -inf, as torch's max_pool2d(padding=1) and TF's SAME max pool do.
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3_same(x)
    branch_pool = conv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
  """`[N, 299, 299, 3]` images in [-1, 1] (see `fid_preprocess`) -> `[N, 2048]` pool_3 features.

  `precision` is that of every convolution. It defaults to HIGHEST because the reference features are float32
  ones: at DEFAULT, TPUs (one bf16 pass) and recent GPUs (TF32) round the inputs of all 94 convolutions, and the
  features, hence FIDs, drift from the reference's. On CPU it makes no difference.
  """

  precision: jax.lax.PrecisionLike = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"expected [N, 299, 299, 3] images (see fid_preprocess), got shape {images.shape}")
    conv = functools.partial(BasicConv2d, precision=self.precision)
    x = conv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(images)  # 149x149x32
    x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x)  # 147x147x32
    x = conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)  # 147x147x64
    x = _max_pool_3x3_stride2(x)  # 73x73x64
    x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x)  # 73x73x80
    x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x)  # 71x71x192
    x = _max_pool_3x3_stride2(x)  # 35x35x192
    x = InceptionA(32, self.precision, name="Mixed_5b")(x)  # 35x35x256
    x = InceptionA(64, self.precision, name="Mixed_5c")(x)  # 35x35x288
    x = InceptionA(64, self.precision, name="Mixed_5d")(x)  # 35x35x288
    x = InceptionB(self.precision, name="Mixed_6a")(x)  # 17x17x768
    x = InceptionC(128, self.precision, name="Mixed_6b")(x)
    x = InceptionC(160, self.precision, name="Mixed_6c")(x)
    x = InceptionC(160, self.precision, name="Mixed_6d")(x)
    x = InceptionC(192, self.precision, name="Mixed_6e")(x)  # 17x17x768
    x = InceptionD(self.precision, name="Mixed_7a")(x)  # 8x8x1280
    x = InceptionE(max_pool=False, precision=self.precision, name="Mixed_7b")(x)  # 8x8x2048
    x = InceptionE(max_pool=True, precision=self.precision, name="Mixed_7c")(x)  # 8x8x2048
    return jnp.mean(x, axis=(1, 2))
