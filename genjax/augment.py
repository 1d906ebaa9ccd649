"""Differentiable augmentations of a critic's inputs for GANs trained on little data, on the device, per example:

- `diff_augment`: DiffAugment (Zhao et al. 2020), every transform on every image: colour (brightness + U(-0.5,
  0.5), saturation x U(0, 2) around each pixel's channel mean, contrast x U(0.5, 1.5) around each image's mean),
  translation (by up to 1/8 of the side, integer, zero-filled) and cutout (a zero square of half the side).
- `ada`: a subset of ADA's "bgc" pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with
  Limited Data"), each transform applied to each image with probability p: x-flip, rotation by a multiple of 90
  degrees, integer translation by up to 1/8 of the side (reflected at the borders), brightness (+ N(0, 0.2)),
  contrast (x lognormal(0, 0.5 ln 2)) and saturation (x lognormal(0, ln 2), colour images only). Left out: ADA's
  fractional (resampled) geometric transforms (isotropic and anisotropic scaling, arbitrary rotation, fractional
  translation), luma flip and hue rotation, and the image-space filtering and corruptions.
- `ada_probability`: ADA's controller of p from the sign of the critic's output on real images.

Images are `[N, H, W, C]` in [-1, 1] (squares, for the 90-degree rotations). Each function draws its parameters per
example from its key, so one key gives example i of two batches of the same size the same transform (reals and
fakes are augmented with independent keys in training, as in both papers). Every transform is differentiable in the
images, so the generator's gradient flows through them to its fakes. This module knows nothing of networks.
"""

import math

import jax
import jax.numpy as jnp

AUGMENTATIONS = ("none", "ada", "diffaugment")
DIFFAUGMENT_POLICY = ("color", "translation", "cutout")


def _uniform(key, n, low=0.0, high=1.0):
  return jax.random.uniform(key, (n, 1, 1, 1), minval=low, maxval=high)


def _translate(images: jax.Array, shifts: jax.Array, mode: str) -> jax.Array:
  """Each image moved by its integer `shifts [N, 2]` (rows, columns), the uncovered border filled by `mode`
  ("constant": zeros; "reflect")."""
  n, h, w, c = images.shape
  pad = max(h, w) // 8 + 1  # More than the largest shift, and less than a side (reflection's limit).
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
  crop = lambda image, shift: jax.lax.dynamic_slice(image, (pad - shift[0], pad - shift[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, shifts)


def _max_shift(images: jax.Array) -> int:
  return max(1, images.shape[1] // 8)


def diff_augment(images: jax.Array, key: jax.Array, policy=DIFFAUGMENT_POLICY) -> jax.Array:
  """DiffAugment with the transforms of `policy` (a subset of `DIFFAUGMENT_POLICY`, applied in that order)."""
  n, h, w, _ = images.shape
  keys = jax.random.split(key, 6)
  x = images
  if "color" in policy:
    x = x + _uniform(keys[0], n, -0.5, 0.5)
    channel_mean = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - channel_mean) * _uniform(keys[1], n, 0.0, 2.0) + channel_mean
    image_mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - image_mean) * _uniform(keys[2], n, 0.5, 1.5) + image_mean
  if "translation" in policy:
    shift = _max_shift(x)
    x = _translate(x, jax.random.randint(keys[3], (n, 2), -shift, shift + 1), "constant")
  if "cutout" in policy:
    size_h, size_w = h // 2, w // 2
    corners = jax.random.randint(keys[4], (n, 2), 0, jnp.array([h - size_h + 1, w - size_w + 1]))
    rows, columns = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    inside_rows = (rows >= corners[:, 0, None, None]) & (rows < corners[:, 0, None, None] + size_h)
    inside_columns = (columns >= corners[:, 1, None, None]) & (columns < corners[:, 1, None, None] + size_w)
    x = x * (1.0 - (inside_rows & inside_columns)[..., None].astype(x.dtype))
  return x


def ada(images: jax.Array, key: jax.Array, p: jax.Array) -> jax.Array:
  """ADA's transforms (module docstring), each applied to each image with probability `p` (a scalar in [0, 1])."""
  n, _, _, channels = images.shape
  keys = jax.random.split(key, 12)
  applies = lambda index: (jax.random.uniform(keys[index], (n, 1, 1, 1)) < p)
  x = images
  x = jnp.where(applies(0), jnp.flip(x, axis=2), x)
  turns = jax.random.randint(keys[1], (n, 1, 1, 1), 0, 4) * applies(2)
  for k in (1, 2, 3):
    x = jnp.where(turns == k, jnp.rot90(x, k, axes=(1, 2)), x)
  shift = _max_shift(x)
  shifts = jax.random.randint(keys[3], (n, 2), -shift, shift + 1) * applies(4)[:, :, 0, 0]
  x = _translate(x, shifts, "reflect")
  x = x + jax.random.normal(keys[5], (n, 1, 1, 1)) * 0.2 * applies(6)
  image_mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  contrast = jnp.exp(jax.random.normal(keys[7], (n, 1, 1, 1)) * 0.5 * math.log(2.0))
  x = (x - image_mean) * jnp.where(applies(8), contrast, 1.0) + image_mean
  if channels > 1:
    luma = jnp.mean(x, axis=-1, keepdims=True)
    saturation = jnp.exp(jax.random.normal(keys[9], (n, 1, 1, 1)) * math.log(2.0))
    x = (x - luma) * jnp.where(applies(10), saturation, 1.0) + luma
  return x


def ada_probability(
    p: jax.Array, mean_sign: jax.Array, target: float, images_seen: int, speed_images: float
) -> jax.Array:
  """ADA's adjustment of p after `images_seen` real images since the last one, on whose critic outputs the mean
  sign was `mean_sign` (r_t, the overfitting heuristic): p moves by sign(r_t - target) * images_seen /
  speed_images (so p can go from 0 to 1 in `speed_images` images; ADA's 500k), clipped to [0, 1]."""
  return jnp.clip(p + jnp.sign(mean_sign - target) * images_seen / speed_images, 0.0, 1.0)
