"""Full-reference image quality of reconstructions: mean squared error, PSNR and SSIM, one value per image.

PSNR and SSIM come from dm-pix (`dm_pix.psnr`, `dm_pix.ssim`), which assume pixels in [0, 1]; images here may be in
any known `pixel_range` (low, high) and are rescaled to [0, 1] first, so [-1, 1] and [0, 1] copies of the same
images score the same. Images are NHWC floats `[N, H, W, C]`. Every function is pure and jittable and returns `[N]`
so that callers choose how to aggregate (and can see which images are outliers).

An exact reconstruction has MSE 0 and PSNR +inf (the IEEE value, not a cap: any cap would be an arbitrary number
that an average would mix with real ones). JSON has no inf, so a caller that logs a mean PSNR must decide what an
exact match contributes, e.g. average over the finite values and count the exact matches. Features are not this
module's job: FID-style distances live in `feature_distances`.
"""

import dm_pix
import jax
import jax.numpy as jnp

from genjax import pixels


def _to_unit_range(images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  return pixels.rescale(jnp.asarray(images, jnp.float32), pixel_range, pixels.UNIT_RANGE)


def mean_squared_error(reference: jax.Array, reconstruction: jax.Array) -> jax.Array:
  """Mean over pixels and channels of the squared difference: `[N, H, W, C] x2 -> [N]`, in squared pixel units of
  the images' own range (not rescaled)."""
  difference = jnp.asarray(reference, jnp.float32) - jnp.asarray(reconstruction, jnp.float32)
  return jnp.mean(jnp.square(difference), axis=(1, 2, 3))


def psnr(reference: jax.Array, reconstruction: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """Peak signal-to-noise ratio 10 log10((high - low)^2 / MSE): `[N, H, W, C] x2 -> [N]` dB; +inf where the images
  are identical. Higher is better."""
  return dm_pix.psnr(_to_unit_range(reference, pixel_range), _to_unit_range(reconstruction, pixel_range))


def ssim(reference: jax.Array, reconstruction: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """Structural similarity (Wang et al. 2004) with the standard 11x11 Gaussian window (sigma 1.5) and constants
  K1 = 0.01, K2 = 0.03 relative to the data range: `[N, H, W, C] x2 -> [N]`, at most 1 (identical images), averaged
  over the valid window positions and the channels (colour images get the mean of per-channel SSIMs).

  The window is applied without padding, so H and W must be at least 11 (MNIST's 28x28 leaves an 18x18 map).
  """
  height, width = reference.shape[1:3]
  if min(height, width) < 11:
    raise ValueError(f"SSIM's 11x11 window needs images of at least 11x11 pixels; got {height}x{width}.")
  # After rescaling the data range is 1, which is what max_val sets the stabilising constants C1, C2 from.
  return dm_pix.ssim(_to_unit_range(reference, pixel_range), _to_unit_range(reconstruction, pixel_range), max_val=1.0)
