"""Layers shared by model families, chosen for gradients that take XLA's fast paths.

On CPU, XLA differentiates a transposed convolution with respect to its kernel as a convolution over the
zero-dilated input, about 20x slower than PyTorch (measured: 128x7x7x128 -> 64 channels, 4x4 kernel, stride 2), and
even a plain stride-1 convolution's kernel gradient takes 4-20x its forward pass once the feature maps are large
(a convolution whose kernel is the whole image). The ways round it live here:
- `conv`: flax's `nn.Conv` with `conv_general_dilated`, whose stride-1 kernel gradient on CPU is one matrix product
  per kernel tap once the convolution is large enough (1.4-5x faster than XLA's rule on this 2-core CPU; other
  backends keep XLA's rule);
- `ConvTranspose`: the usual transposed convolution (PyTorch's ConvTranspose2d geometry), with a custom VJP that
  computes the kernel gradient as the kernel gradient of the equivalent strided convolution;
- `Upsample2x`: a convolution followed by depth-to-space (sub-pixel convolution, Shi et al. 2016);
- `Conv`: a strided convolution whose input gradient is that fast transposed convolution. A gradient penalty
  differentiates a critic's input gradient with respect to its weights, and through XLA's own rule that is the
  slow transposed-convolution kernel gradient again.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int, output_padding: int = 0) -> jax.Array:
  """PyTorch's ConvTranspose2d geometry: output size (n - 1) * stride - 2 * padding + kernel size + output_padding
  (the extra rows and columns at the bottom and right)."""
  pad = kernel.shape[0] - 1 - padding  # The padding of the zero-dilated input that gives that size.
  edges = [(pad, pad + output_padding)] * 2
  return lax.conv_transpose(x, kernel, (stride, stride), edges, dimension_numbers=_NHWC)


def _strided_correlation(
    dy: jax.Array, kernel: jax.Array, stride: int, padding: int, output_padding: int = 0
) -> jax.Array:
  """z[j] = sum_k dy[stride * j - padding + k] kernel[k]: the adjoint of `_conv_transpose` in its input (its
  `output_padding` extra rows are cut from the far side, a negative padding)."""
  edges = [(padding, padding - output_padding)] * 2
  return lax.conv_general_dilated(dy, kernel, (stride, stride), edges, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int, output_padding: int = 0) -> jax.Array:
  """Transposed convolution `[N, H, W, Cin] x [K, K, Cin, Cout] -> [N, H', W', Cout]` with a fast VJP.

  Both cotangents are strided correlations of the output cotangent dy with the kernel flipped in space and with
  its channel axes swapped: the input gradient is that correlation itself, and the kernel gradient is the kernel
  gradient of that correlation (a strided convolution, which XLA differentiates quickly) taken with cotangent x.
  """
  return _conv_transpose(x, kernel, stride, padding, output_padding)


def _conv_transpose_fwd(x, kernel, stride, padding, output_padding):
  return _conv_transpose(x, kernel, stride, padding, output_padding), (x, kernel)


def _conv_transpose_bwd(stride, padding, output_padding, residuals, dy):
  x, kernel = residuals
  flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  dx = _strided_correlation(dy, flipped, stride, padding, output_padding)
  _, kernel_vjp = jax.vjp(lambda k: _strided_correlation(dy, k, stride, padding, output_padding), flipped)
  (d_flipped,) = kernel_vjp(x)
  return dx, jnp.flip(d_flipped, (0, 1)).transpose(0, 1, 3, 2)


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


# From this many multiply-adds per tap (examples x output positions x input x output channels) on, the products of
# `_kernel_gradient_by_taps` beat XLA's own kernel gradient by 1.4-5x on this 2-core CPU (one gradient: 16x32x32,
# 64 -> 64 channels: 65 ms against 47; 128x28x28, 32 -> 32: 426 against 96; 32x32x32, 128 -> 128: 1,232 against
# 248). Below it the two are close and either may win by shape (64x14x14, 32 -> 32: 8.4 against 5.8; 32x28x28,
# 8 -> 8: 2.3 against 4.9; 4x64x64, 64 -> 64: 42 against 46), and the runlocal DDPM, CycleGAN and super-resolution
# steps, whose convolutions are all below it, ran 1.3-2.3x slower with the products everywhere.
_TAPS_MIN_MULTIPLY_ADDS = 2**25
# From this many input x output channels on, one product over all examples beats one per example (32x16x16,
# 256 -> 256: 126 ms against 241; 64x40x40, 64 -> 64: 373 against 222).
_TAPS_MIN_CHANNELS_FOR_ONE_PRODUCT = 128 * 128


def _kernel_gradient_by_taps(x: jax.Array, dy: jax.Array, kernel_shape, padding) -> jax.Array:
  """The kernel gradient of a stride-1 convolution of `x` with cotangent `dy`: for each tap (i, j) of the kernel,
  the product of the input shifted by (i, j) with dy, summed over examples and positions (matrix products, which
  CPUs run fast, where XLA's own rule is a convolution whose kernel is the whole feature map)."""
  taps_h, taps_w, in_channels, out_channels = kernel_shape
  (top, bottom), (left, right) = padding
  padded = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)])
  height, width = dy.shape[1:3]
  one_product = in_channels * out_channels >= _TAPS_MIN_CHANNELS_FOR_ONE_PRODUCT

  def tap(i, j):
    shifted = padded[:, i : i + height, j : j + width]
    if one_product:
      return jnp.einsum("nhwc,nhwd->cd", shifted, dy, preferred_element_type=jnp.float32)
    return jnp.einsum("nhwc,nhwd->ncd", shifted, dy, preferred_element_type=jnp.float32).sum(0)

  return jnp.stack([jnp.stack([tap(i, j) for j in range(taps_w)]) for i in range(taps_h)]).astype(dy.dtype)


def _plain_conv(x: jax.Array, kernel: jax.Array, padding, precision) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_by_taps(x: jax.Array, kernel: jax.Array, padding, precision) -> jax.Array:
  return _plain_conv(x, kernel, padding, precision)


def _conv_by_taps_fwd(x, kernel, padding, precision):
  return _plain_conv(x, kernel, padding, precision), (x, kernel)


def _conv_by_taps_bwd(padding, precision, residuals, dy):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda x: _plain_conv(x, kernel, padding, precision), x)
  (dx,) = input_vjp(dy)

  def xla_rule(x, dy):
    _, kernel_vjp = jax.vjp(lambda k: _plain_conv(x, k, padding, precision), kernel)
    return kernel_vjp(dy)[0]

  dkernel = lax.platform_dependent(
      x, dy, cpu=lambda x, dy: _kernel_gradient_by_taps(x, dy, kernel.shape, padding), default=xla_rule
  )
  return dx, dkernel.astype(kernel.dtype)


_conv_by_taps.defvjp(_conv_by_taps_fwd, _conv_by_taps_bwd)


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
):
  """`lax.conv_general_dilated` (as flax's `nn.Conv` calls it) with the tap-wise kernel gradient of
  `_conv_by_taps` for 2-D, stride-1, undilated, ungrouped NHWC convolutions of at least `_TAPS_MIN_MULTIPLY_ADDS`
  per tap; any other takes lax's own."""
  plain = (
      lhs.ndim == 4
      and tuple(window_strides) == (1, 1)
      and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
      and feature_group_count == 1
      and lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
      == lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  )
  if plain:
    if isinstance(padding, str):
      padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (1, 1), padding)
    padding = tuple(tuple(pair) for pair in padding)
    (height, width), (taps_h, taps_w) = lhs.shape[1:3], rhs.shape[:2]
    out_height, out_width = height + sum(padding[0]) - taps_h + 1, width + sum(padding[1]) - taps_w + 1
    if lhs.shape[0] * out_height * out_width * rhs.shape[2] * rhs.shape[3] >= _TAPS_MIN_MULTIPLY_ADDS:
      return _conv_by_taps(lhs, rhs, padding, precision)
  return lax.conv_general_dilated(
      lhs,
      rhs,
      window_strides,
      padding,
      lhs_dilation,
      rhs_dilation,
      dimension_numbers,
      feature_group_count,
      precision=precision,
  )


def conv(*args, **kwargs) -> nn.Conv:
  """`nn.Conv(*args, **kwargs)` (the same parameters under the same names) whose stride-1 kernel gradient is fast
  on CPU (see `conv_general_dilated`)."""
  return nn.Conv(*args, conv_general_dilated=conv_general_dilated, **kwargs)


def _apply_square_kernel(layer: nn.Module, x: jax.Array, operation) -> jax.Array:
  """`operation(x, kernel, stride, padding)` plus a bias, with the parameters of `layer` (`Conv` or
  `ConvTranspose`): a float32 kernel [K, K, Cin, features] and bias, cast to the input's dtype."""
  kernel_shape = (layer.kernel_size, layer.kernel_size, x.shape[-1], layer.features)
  kernel = layer.param("kernel", layer.kernel_init, kernel_shape, jnp.float32)
  y = operation(x, kernel.astype(x.dtype), layer.stride, layer.padding)
  if layer.use_bias:
    y = y + layer.param("bias", nn.initializers.zeros_init(), (layer.features,), jnp.float32).astype(x.dtype)
  return y


class ConvTranspose(nn.Module):
  """Square transposed convolution with PyTorch's geometry (output_padding included) and the fast VJP of
  `conv_transpose`."""

  features: int
  kernel_size: int
  stride: int
  padding: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  output_padding: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    operation = lambda x, kernel, stride, padding: conv_transpose(x, kernel, stride, padding, self.output_padding)
    return _apply_square_kernel(self, x, operation)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def strided_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """Convolution `[N, H, W, Cin] x [K, K, Cin, Cout] -> [N, H', W', Cout]` with symmetric padding, whose input
  gradient is `conv_transpose` (so that its derivative with respect to the kernel is fast too).

  Measured on this 2-core CPU: the WGAN-GP penalty's parameter gradient for the MNIST DCGAN critic (batch 64)
  takes 27 ms this way against 174 ms through XLA's own rules, with equal results.
  """
  return _strided_correlation(x, kernel, stride, padding)


def _strided_conv_fwd(x, kernel, stride, padding):
  return _strided_correlation(x, kernel, stride, padding), (x, kernel)


def _strided_conv_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  dx = conv_transpose(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2), stride, padding)
  if dx.shape != x.shape:
    # H + 2 * padding - K is not a multiple of the stride: the transposed convolution comes out one row short of
    # the input, so this shape takes XLA's rule.
    _, x_vjp = jax.vjp(lambda x: _strided_correlation(x, kernel, stride, padding), x)
    (dx,) = x_vjp(dy)
  _, kernel_vjp = jax.vjp(lambda k: _strided_correlation(x, k, stride, padding), kernel)
  return dx, kernel_vjp(dy)[0]


strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


class Conv(nn.Module):
  """Square convolution with symmetric padding and the penalty-friendly gradient of `strided_conv`."""

  features: int
  kernel_size: int
  stride: int
  padding: int
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _apply_square_kernel(self, x, strided_conv)


def depth_to_space(x: jax.Array, block_size: int) -> jax.Array:
  """`[N, H, W, C * b * b] -> [N, H * b, W * b, C]`, the inverse of space-to-depth (TF's channel order)."""
  n, h, w, c = x.shape
  out_channels = c // (block_size * block_size)
  x = x.reshape(n, h, w, block_size, block_size, out_channels)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block_size, w * block_size, out_channels)


class Upsample2x(nn.Module):
  """`[N, H, W, C] -> [N, 2H, 2W, features]` by a 3x3 convolution to 4x the features, then depth-to-space."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = conv(4 * self.features, (3, 3), padding="SAME")(x)
    return depth_to_space(x, 2)


def flatten(x: jax.Array) -> jax.Array:
  return jnp.reshape(x, (x.shape[0], -1))
