"""StyleGAN2's networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"): the mapping
network, the synthesis network of modulated convolutions, and the residual critic with minibatch standard deviation.

- **Equalised learning rate.** Every weight is drawn from N(0, 1) (N(0, 1 / lr_multiplier) in the mapping network)
  and scaled at run time by its He constant 1 / sqrt(fan_in) (times lr_multiplier), so that Adam's per-parameter
  step is the same relative change in every layer (Karras et al. 2018, section 4.1).
- **Mapping** z (normalised to unit second moment; a class-conditional model appends a normalised class embedding)
  through `mapping_depth` dense layers to w. The trainer keeps the running mean of w (the truncation trick's centre);
  the networks hold no state.
- **Synthesis** from a learned 4x4 constant: per resolution an upsampling modulated 3x3 convolution and a modulated
  3x3 convolution, each followed by per-pixel noise times a learned strength (initialised to 0), a bias and a leaky
  ReLU, and a modulated 1x1 toRGB whose output is added to the upsampled image so far (the "skip" generator). Each
  layer reads its own w (`num_ws` of them), which is how style mixing and style-mixing grids address coarse,
  middle and fine styles. The output is linear (no tanh), as in the paper.
- **Modulated convolution** with weight demodulation (section 2.2): the kernel is scaled per example by the layer's
  style and each output feature map divided by the norm the scaled kernel gives it. `modulated_conv` runs it as one
  grouped convolution (`fused=True`: `feature_group_count` = batch size, one group per example) or as the batched
  alternative (`fused=False`, the default): scale the activations, one shared convolution, scale the outputs
  (mathematically the same; the official code also uses this form in training). XLA's CPU backend gives the grouped
  form no fast path: measured on this 2-core CPU under contention from other jobs (load about 6), batch 32, 16x16,
  64 -> 64 channels, 3x3, jitted: forward 71 ms grouped against 15 ms batched, forward and backward 4.6 s against
  56 ms (the grouped convolution's kernel gradient is the slow part).
- **Resampling** with the separable [1, 3, 3, 1] FIR filter (bilinear-like): upsampling inserts zeros and filters;
  downsampling filters with stride 2. The filter is a sum of shifted slices along each axis, not a depthwise
  convolution: XLA's CPU backend ran the depthwise form's forward and backward passes 15-70x slower (batch 32,
  16x16x16 upsampled: 85 ms against 4.3 ms; the runlocal train step 926 ms against 189 ms, beside other jobs). No
  transposed convolution anywhere: XLA's CPU kernel gradient of one is about 20x slower (see `layers`), so the
  generator upsamples (keeping a one-pixel margin beyond the border) before a convolution without padding rather
  than fusing the two, which gives the same pixels, borders included, and the critic's learned stride-2
  convolutions go through `layers.strided_conv`, whose double derivative (R1's cost) avoids that slow path too.
- **Critic**: fromRGB, one residual block per resolution halving it (two 3x3 convolutions, the second downsampling,
  beside a downsampling 1x1 skip; the sum scaled by sqrt(1/2)), then at 4x4 the minibatch standard deviation
  (Karras et al. 2018, section 3: the standard deviation over groups of `mbstd_group_size` examples, averaged into
  one extra feature map), a 3x3 convolution and two dense layers. A class-conditional critic adds the projection
  of a class embedding onto its last features (Miyato & Koyama 2018), as genjax's other critics do.

Images are NHWC; all resolutions are powers of two from 4 up.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from genjax.models import layers

_NHWC = ("NHWC", "HWIO", "NHWC")
# The leaky ReLU's slope and the gain that restores unit variance after it (StyleGAN's bias_act "lrelu").
_LRELU_SLOPE, _LRELU_GAIN = 0.2, math.sqrt(2.0)
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
  """StyleGAN2's feature maps at a resolution: channel_base / resolution, at most channel_max."""
  return min(channel_base // resolution, channel_max)


def num_ws(resolution: int) -> int:
  """The number of w vectors the synthesis network reads at `resolution`: two per block (the 4x4 block's
  convolution and toRGB; each later block's two convolutions), the last toRGB sharing its block's second index."""
  return 2 * (int(math.log2(resolution)) - 1)


def _lrelu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, _LRELU_SLOPE) * _LRELU_GAIN


def _fir(x: jax.Array, stride: int, padding: tuple[int, int], gain: float = 1.0) -> jax.Array:
  """The separable [1, 3, 3, 1] filter, normalised to sum `gain` in 2-D, over the height and width of `x [N, H, W,
  C]` with `padding` (before, after) zeros on each, keeping every `stride`-th output: a sum of four shifted slices
  per axis, which XLA's CPU backend runs (forward and backward) many times faster than the same filter as a
  depthwise convolution (`feature_group_count` = channels)."""
  taps = np.asarray(FIR_TAPS) / sum(FIR_TAPS) * math.sqrt(gain)
  for axis in (1, 2):
    padded = jnp.pad(x, [padding if dim == axis else (0, 0) for dim in range(x.ndim)])
    length = (padded.shape[axis] - len(taps)) // stride + 1
    x = sum(
        float(tap) * lax.slice_in_dim(padded, offset, offset + stride * (length - 1) + 1, stride, axis)
        for offset, tap in enumerate(taps)
    )
  return x


def upsample_2x(x: jax.Array, margin: int = 0) -> jax.Array:
  """`[N, H, W, C] -> [N, 2H + 2 margin, 2W + 2 margin, C]`: zeros inserted after every pixel, then the FIR filter
  with gain 4 (StyleGAN2's upfirdn2d with up=2: the filter's padding (2, 1) keeps the image centred). `margin` rows
  and columns of the filtered signal beyond each border are kept, so that a convolution without padding that
  follows sees the image's true surroundings rather than zeros (see `SynthesisLayer`)."""
  n, h, w, c = x.shape
  spread = jnp.pad(x.reshape(n, h, 1, w, 1, c), ((0, 0), (0, 0), (0, 1), (0, 0), (0, 1), (0, 0)))
  return _fir(spread.reshape(n, 2 * h, 2 * w, c), 1, (2 + margin, 1 + margin), gain=4.0)


def downsample_2x(x: jax.Array) -> jax.Array:
  """`[N, H, W, C] -> [N, H/2, W/2, C]`: the FIR filter with stride 2 (padding (1, 1))."""
  return _fir(x, 2, (1, 1))


def demodulation(weight: jax.Array, styles: jax.Array) -> jax.Array:
  """`[N, Cout]`: 1 / the norm of each example's style-scaled kernel per output feature map (section 2.2, eq. 3),
  from `weight [K, K, Cin, Cout]` and `styles [N, Cin]` without materialising the per-example kernels."""
  return lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)


def modulated_conv(
    x: jax.Array,
    weight: jax.Array,
    styles: jax.Array,
    demodulate: bool = True,
    fused: bool = False,
    padding: str = "SAME",
) -> jax.Array:
  """StyleGAN2's modulated convolution, stride 1: `x [N, H, W, Cin]`, `weight [K, K, Cin, Cout]`, `styles [N, Cin]`
  -> `[N, H', W', Cout]` (H' = H with `padding` "SAME", H - K + 1 with "VALID").

  fused=True: one grouped convolution over the batch laid out as channels (`[1, H, W, N * Cin]`, one group of Cin
  per example) with the per-example kernels side by side; fused=False: the activations scaled by the styles, one
  convolution with the shared kernel, the outputs scaled by the demodulation coefficients.
  """
  n, h, w, c_in = x.shape
  k, c_out = weight.shape[0], weight.shape[-1]
  if not fused:
    y = lax.conv_general_dilated(x * styles[:, None, None, :], weight, (1, 1), padding, dimension_numbers=_NHWC)
    return y * demodulation(weight, styles)[:, None, None, :] if demodulate else y
  kernels = weight[None] * styles[:, None, None, :, None]  # [N, K, K, Cin, Cout]
  if demodulate:
    kernels = kernels * demodulation(weight, styles)[:, None, None, None, :]
  kernels = kernels.transpose(1, 2, 3, 0, 4).reshape(k, k, c_in, n * c_out)
  grouped = x.transpose(1, 2, 0, 3).reshape(1, h, w, n * c_in)
  y = lax.conv_general_dilated(grouped, kernels, (1, 1), padding, dimension_numbers=_NHWC, feature_group_count=n)
  return y.reshape(*y.shape[1:3], n, c_out).transpose(2, 0, 1, 3)


class EqualizedDense(nn.Module):
  """A dense layer with equalised learning rate: weights N(0, 1 / lr_multiplier) scaled by lr_multiplier /
  sqrt(fan_in) at run time, bias (initialised to `bias_init`) scaled by lr_multiplier."""

  features: int
  lr_multiplier: float = 1.0
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    init = nn.initializers.normal(1.0 / self.lr_multiplier)
    weight = self.param("kernel", init, (fan_in, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier), (self.features,))
    scale = self.lr_multiplier / math.sqrt(fan_in)
    return x @ (weight * scale).astype(x.dtype) + (bias * self.lr_multiplier).astype(x.dtype)


class EqualizedConv(nn.Module):
  """A square convolution with equalised learning rate, "SAME" padding; `down=True` halves the resolution (FIR
  filter, then a stride-2 convolution through `layers.strided_conv`, StyleGAN2's conv2d_resample)."""

  features: int
  kernel_size: int
  down: bool = False
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    weight = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features), jnp.float32)
    weight = (weight / math.sqrt(k * k * x.shape[-1])).astype(x.dtype)
    if not self.down:
      y = lax.conv_general_dilated(x, weight, (1, 1), "SAME", dimension_numbers=_NHWC)
    elif k == 1:
      y = lax.conv_general_dilated(downsample_2x(x), weight, (1, 1), "VALID", dimension_numbers=_NHWC)
    else:
      # The filter's padding (k+1)/2 on each side leaves H + 1 rows (H + 2 for an even k), which the stride-2
      # convolution without padding takes to H / 2.
      pad = (k + 1) // 2
      y = layers.strided_conv(_fir(x, 1, (pad, pad)), weight, 2, 0)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,)).astype(x.dtype)
    return y


class MappingNetwork(nn.Module):
  """`z [N, latent] (+ labels [N]) -> w [N, w_size]`: `depth` equalised dense layers with leaky ReLU at a learning
  rate `lr_multiplier` times the rest (StyleGAN: 8 layers, 0.01)."""

  w_size: int
  depth: int
  lr_multiplier: float
  num_classes: int = 0

  @nn.compact
  def __call__(self, latents: jax.Array, labels: jax.Array | None) -> jax.Array:
    normalize = lambda v: v * lax.rsqrt(jnp.mean(jnp.square(v), axis=-1, keepdims=True) + 1e-8)
    x = normalize(latents)
    if self.num_classes:
      embedding = EqualizedDense(self.w_size, name="embed")(jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype))
      x = jnp.concatenate([x, normalize(embedding)], axis=-1)
    for index in range(self.depth):
      x = _lrelu(EqualizedDense(self.w_size, self.lr_multiplier, name=f"dense_{index}")(x))
    return x


class ModulatedConv(nn.Module):
  """A modulated convolution whose styles are an affine map of w (bias initialised to 1, so that the styles start
  at 1); `demodulate=False` for toRGB, which scales by the He constant instead."""

  features: int
  kernel_size: int
  demodulate: bool = True
  fused: bool = False
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    c_in, k = x.shape[-1], self.kernel_size
    styles = EqualizedDense(c_in, bias_init=1.0, name="affine")(w)
    if not self.demodulate:
      styles = styles / math.sqrt(k * k * c_in)
    weight = self.param("kernel", nn.initializers.normal(1.0), (k, k, c_in, self.features), jnp.float32)
    return modulated_conv(x, weight.astype(x.dtype), styles, self.demodulate, self.fused, self.padding)


class SynthesisLayer(nn.Module):
  """(2x upsampling,) a modulated 3x3 convolution, noise times a learned per-layer strength, a bias, leaky ReLU.

  `noise_key` None uses a fixed noise image per layer (StyleGAN's noise_mode="const": a latent then always gives
  the same image); a key draws fresh noise per example (training)."""

  features: int
  up: bool = False
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise_key: jax.Array | None, layer_index: int) -> jax.Array:
    if self.up:
      # Upsampled with a one-pixel margin and convolved without padding: the border pixels then equal those of
      # StyleGAN2's transposed convolution followed by the filter, which zero-padding the upsampled image would not.
      x = upsample_2x(x, margin=1)
    x = ModulatedConv(self.features, 3, fused=self.fused, padding="VALID" if self.up else "SAME", name="conv")(x, w)
    n, h, width = x.shape[:3]
    if noise_key is None:
      noise = jax.random.normal(jax.random.key(layer_index), (1, h, width, 1), x.dtype)
    else:
      noise = jax.random.normal(jax.random.fold_in(noise_key, layer_index), (n, h, width, 1), x.dtype)
    strength = self.param("noise_strength", nn.initializers.zeros_init(), ())
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return _lrelu(x + strength.astype(x.dtype) * noise + bias.astype(x.dtype))


class ToRGB(nn.Module):
  image_channels: int
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    y = ModulatedConv(self.image_channels, 1, demodulate=False, fused=self.fused, name="conv")(x, w)
    return y + self.param("bias", nn.initializers.zeros_init(), (self.image_channels,)).astype(x.dtype)


class SynthesisNetwork(nn.Module):
  """`ws [N, num_ws(resolution), w_size] -> [N, resolution, resolution, image_channels]` images (linear output)."""

  resolution: int
  image_channels: int
  channel_base: int
  channel_max: int
  fused: bool = False

  @nn.compact
  def __call__(self, ws: jax.Array, noise_key: jax.Array | None = None) -> jax.Array:
    channels = lambda resolution: channels_at(resolution, self.channel_base, self.channel_max)
    const = self.param("const", nn.initializers.normal(1.0), (4, 4, channels(4)))
    x = jnp.broadcast_to(const.astype(ws.dtype), (ws.shape[0], *const.shape))
    x = SynthesisLayer(channels(4), fused=self.fused, name="b4_conv1")(x, ws[:, 0], noise_key, 0)
    image = ToRGB(self.image_channels, self.fused, name="b4_torgb")(x, ws[:, 1])
    for block in range(1, int(math.log2(self.resolution)) - 1):
      resolution = 4 * 2**block
      conv0 = SynthesisLayer(channels(resolution), up=True, fused=self.fused, name=f"b{resolution}_conv0")
      x = conv0(x, ws[:, 2 * block - 1], noise_key, 2 * block - 1)
      conv1 = SynthesisLayer(channels(resolution), fused=self.fused, name=f"b{resolution}_conv1")
      x = conv1(x, ws[:, 2 * block], noise_key, 2 * block)
      image = upsample_2x(image) + ToRGB(self.image_channels, self.fused, name=f"b{resolution}_torgb")(
          x, ws[:, 2 * block + 1]
      )
    return image


class Generator(nn.Module):
  """The mapping and synthesis networks together. `__call__` (used to initialise) maps latents and broadcasts w to
  every layer; `map` and `synthesize` (through `apply(..., method=...)`) are the two halves, between which the
  trainer and the sampler mix styles and truncate."""

  resolution: int
  image_channels: int
  w_size: int = 512
  mapping_depth: int = 8
  mapping_lr_multiplier: float = 0.01
  channel_base: int = 16384
  channel_max: int = 512
  num_classes: int = 0
  fused: bool = False

  def setup(self):
    self.mapping = MappingNetwork(self.w_size, self.mapping_depth, self.mapping_lr_multiplier, self.num_classes)
    self.synthesis = SynthesisNetwork(
        self.resolution, self.image_channels, self.channel_base, self.channel_max, self.fused
    )

  def map(self, latents: jax.Array, labels: jax.Array | None) -> jax.Array:
    return self.mapping(latents, labels)

  def synthesize(self, ws: jax.Array, noise_key: jax.Array | None = None) -> jax.Array:
    return self.synthesis(ws, noise_key)

  def __call__(self, latents: jax.Array, labels: jax.Array | None, noise_key: jax.Array | None = None) -> jax.Array:
    w = self.map(latents, labels)
    return self.synthesize(jnp.repeat(w[:, None], num_ws(self.resolution), axis=1), noise_key)


def minibatch_stddev(x: jax.Array, group_size: int) -> jax.Array:
  """`[N, H, W, C] -> [N, H, W, C + 1]`: appends the standard deviation of each feature over groups of G examples
  (examples n, n + N/G, ... form a group, as in StyleGAN2), averaged over features and pixels, as one constant
  feature map per example. G is the largest divisor of N up to `group_size` (StyleGAN2 requires a multiple; here a
  batch of any size, such as a last partial one, can be scored)."""
  n, h, w, c = x.shape
  group = max(size for size in range(1, min(group_size, n) + 1) if n % size == 0)
  y = x.reshape(group, n // group, h, w, c)
  y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [N/G, H, W, C]
  y = jnp.mean(y, axis=(1, 2, 3))  # [N/G]
  y = jnp.tile(y, group)[:, None, None, None]  # Example n belongs to group n % (N/G).
  return jnp.concatenate([x, jnp.broadcast_to(y, (n, h, w, 1)).astype(x.dtype)], axis=-1)


class _CriticBlock(nn.Module):
  features: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    skip = EqualizedConv(self.out_features, 1, down=True, use_bias=False, name="skip")(x)
    x = _lrelu(EqualizedConv(self.features, 3, name="conv0")(x))
    x = _lrelu(EqualizedConv(self.out_features, 3, down=True, name="conv1")(x))
    return (skip + x) * math.sqrt(0.5)


class ResidualCritic(nn.Module):
  """`[N, R, R, C] (+ labels [N]) -> [N]` logits: StyleGAN2's residual discriminator (module docstring). `train` is
  accepted for the adversarial kit's signature; the critic has no batch statistics."""

  resolution: int
  channel_base: int = 16384
  channel_max: int = 512
  num_classes: int = 0
  mbstd_group_size: int = 4

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
    del train
    channels = lambda resolution: channels_at(resolution, self.channel_base, self.channel_max)
    x = _lrelu(EqualizedConv(channels(self.resolution), 1, name="fromrgb")(images))
    resolution = self.resolution
    while resolution > 4:
      x = _CriticBlock(channels(resolution), channels(resolution // 2), name=f"b{resolution}")(x)
      resolution //= 2
    x = minibatch_stddev(x, self.mbstd_group_size)
    x = _lrelu(EqualizedConv(channels(4), 3, name="b4_conv")(x))
    x = _lrelu(EqualizedDense(channels(4), name="b4_dense")(x.reshape(x.shape[0], -1)))
    logits = EqualizedDense(1, name="out")(x)[:, 0]
    if self.num_classes:
      logits += jnp.sum(nn.Embed(self.num_classes, x.shape[-1], name="projection")(labels) * x, axis=-1)
    return logits
