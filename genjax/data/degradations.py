"""Degradations that restoration models learn to undo: additive Gaussian noise, bicubic downscaling and missing
regions. Pure, seeded functions of JAX arrays (NHWC floats in [0, 1]), used inside jitted train steps and by
evaluation and experiments/restore.py alike, so a model is scored on exactly the degradation it was trained on.

- `add_noise`: x + sigma * N(0, 1), sigma fixed or drawn per image from a range (blind denoising); sigmas are on
  the 8-bit scale (25 means 25/255), as denoising papers quote them; the result is not clipped, as in DnCNN.
- `downscale`: the standard super-resolution degradation. A separable bicubic kernel (Keys' cubic convolution,
  a = -0.5), antialiased when shrinking by widening the kernel by the scale factor (what MATLAB's imresize and
  PIL's BICUBIC do), with half-pixel centres; the result is rounded to 8 bits, as low-resolution images are stored.
  Image sides must be multiples of the scale.
- `masks`: 1 where pixels are missing. "center": a centred box of half the height and width, as in context
  encoders; "boxes": 1 to 3 random boxes; "strokes": free-form brush strokes (random walks of thick lines).

`TASKS` is the one table of restoration tasks: each names its degradation (built from `config.restoration`) and
everything that follows from it elsewhere (the output scale, whether restoring needs a mask, the space scores are
computed in, the classical baselines, the architectures that may undo it). The trainer, the evaluator and
experiments/restore.py read these records through `contract.Restorer.degradation`; nothing else compares task
names.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

MASK_KINDS = ("center", "boxes", "strokes")

# (clean `[N, H, W, C]`, key) -> (degraded, mask `[N, H, W, 1]`, 1 where missing, or None).
Degrade = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array | None]]


def add_noise(images: jax.Array, key: jax.Array, sigma: float | tuple[float, float]) -> jax.Array:
  """`images [N, H, W, C]` plus Gaussian noise of standard deviation `sigma` / 255 (a fixed value, or a
  (low, high) range from which each image draws its own)."""
  noise_key, sigma_key = jax.random.split(key)
  if isinstance(sigma, (tuple, list)):
    sigmas = jax.random.uniform(sigma_key, (images.shape[0], 1, 1, 1), minval=sigma[0], maxval=sigma[1])
  else:
    sigmas = jnp.full((images.shape[0], 1, 1, 1), sigma)
  return images + sigmas / 255.0 * jax.random.normal(noise_key, images.shape, images.dtype)


def downscale(images: jax.Array, scale: int) -> jax.Array:
  """Bicubic downscaling of `images [N, H, W, C]` by an integer `scale`, rounded to 8 bits: `[N, H/s, W/s, C]`."""
  n, height, width, channels = images.shape
  if height % scale or width % scale:
    raise ValueError(f"Image sides {height}x{width} are not multiples of the scale {scale}.")
  small = jax.image.resize(images, (n, height // scale, width // scale, channels), "bicubic", antialias=True)
  return jnp.round(jnp.clip(small, 0.0, 1.0) * 255.0) / 255.0


def upscale(images: jax.Array, scale: int) -> jax.Array:
  """Bicubic upscaling by `scale` (the classical super-resolution baseline, and the input SRCNN-style networks
  refine)."""
  n, height, width, channels = images.shape
  return jax.image.resize(images, (n, height * scale, width * scale, channels), "bicubic")


def masks(key: jax.Array, shape: tuple[int, int, int], kind: str) -> jax.Array:
  """`[N, H, W, 1]` float masks, 1 where pixels are missing."""
  n, height, width = shape
  rows, columns = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
  if kind == "center":
    top, left = height // 4, width // 4
    box = (rows >= top) & (rows < top + height // 2) & (columns >= left) & (columns < left + width // 2)
    return jnp.broadcast_to(box, (n, height, width))[..., None].astype(jnp.float32)
  if kind == "boxes":
    return jax.vmap(lambda k: _random_boxes(k, height, width))(jax.random.split(key, n))[..., None]
  if kind == "strokes":
    return jax.vmap(lambda k: _strokes(k, height, width))(jax.random.split(key, n))[..., None]
  raise ValueError(f"Unknown mask kind {kind!r}; expected one of {MASK_KINDS}.")


def _random_boxes(key: jax.Array, height: int, width: int, max_boxes: int = 3) -> jax.Array:
  """1 to `max_boxes` boxes, each a sixth to a third of the image's sides."""
  count_key, size_key, corner_key = jax.random.split(key, 3)
  count = jax.random.randint(count_key, (), 1, max_boxes + 1)
  sizes = jax.random.uniform(size_key, (max_boxes, 2), minval=1 / 6, maxval=1 / 3) * jnp.array([height, width])
  corners = jax.random.uniform(corner_key, (max_boxes, 2)) * (jnp.array([height, width]) - sizes)
  rows, columns = jnp.arange(height)[None, :, None], jnp.arange(width)[None, None, :]
  top, left = corners[:, 0, None, None], corners[:, 1, None, None]
  inside = (rows >= top) & (rows < top + sizes[:, 0, None, None]) & (columns >= left)
  inside &= columns < left + sizes[:, 1, None, None]
  return jnp.any(inside & (jnp.arange(max_boxes) < count)[:, None, None], axis=0).astype(jnp.float32)


def _strokes(key: jax.Array, height: int, width: int, num_strokes: int = 4, segments: int = 6) -> jax.Array:
  """Free-form strokes: random walks of `segments` line segments, each drawn with a brush of random width."""
  start_key, step_key, width_key = jax.random.split(key, 3)
  scale = jnp.array([height, width], jnp.float32)
  starts = jax.random.uniform(start_key, (num_strokes, 1, 2)) * scale
  steps = jax.random.normal(step_key, (num_strokes, segments, 2)) * scale / 6
  points = jnp.concatenate([starts, starts + jnp.cumsum(steps, axis=1)], axis=1)  # [strokes, segments + 1, 2]
  brush = jax.random.uniform(width_key, (num_strokes, 1), minval=0.02, maxval=0.05) * jnp.min(scale)
  grid = jnp.stack(jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij"), axis=-1).astype(jnp.float32)
  a, b = points[:, :-1], points[:, 1:]  # Segment ends, [strokes, segments, 2].
  ab = b - a
  # The distance of every pixel to every segment: project onto the segment, clamped to its ends.
  t = jnp.clip(jnp.einsum("hwd,ksd->hwks", grid, ab) - jnp.einsum("ksd,ksd->ks", a, ab), 0.0, None) / jnp.maximum(
      jnp.einsum("ksd,ksd->ks", ab, ab), 1e-6
  )
  closest = a + jnp.clip(t, 0.0, 1.0)[..., None] * ab  # [h, w, strokes, segments, 2]
  distance = jnp.linalg.norm(grid[:, :, None, None, :] - closest, axis=-1)
  return jnp.any(distance <= brush[None, None], axis=(2, 3)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Degradation:
  """A restoration task: the degradation a network learns to undo, and what follows from it.

  name:           the task, as `config.task` names it; also the verb of messages ("trained to denoise").
  title:          the task as a noun, for messages ("Denoising").
  make_degrade:   `config.restoration` -> the `Degrade` function trained and evaluated on.
  scale:          `config.restoration` -> the factor restoring enlarges images by (degrading shrinks them by);
                  clean images' sides must be multiples of it.
  needs_mask:     whether restoring needs the mask of missing pixels (from the user, or from degrading).
  scores_on_luma: whether PSNR/SSIM are computed on the BT.601 luma of colour images with `scale` border pixels
                  shaved, as super-resolution papers report them, rather than on the image.
  whole_images:   whether evaluation restores whole images; False: crops of the training patches' size, for
                  degradations whose extent grows with the image (a mask of a whole image would leave holes beyond
                  any network's context).
  baselines:      the classical methods scored beside the restorer, names in `genjax.baselines.METHODS`.
  architectures:  the networks (`config.model.architecture`) that may undo it.
  """

  name: str
  title: str
  make_degrade: Callable[[ml_collections.ConfigDict], Degrade]
  scale: Callable[[ml_collections.ConfigDict], int]
  needs_mask: bool
  scores_on_luma: bool
  whole_images: bool
  baselines: tuple[str, ...]
  architectures: tuple[str, ...]


def _noise(options: ml_collections.ConfigDict) -> Degrade:
  """Gaussian noise of `options.sigma`, or of a sigma drawn per image from [sigma, sigma_max] (blind denoising)."""
  sigma = options.sigma if options.sigma_max == options.sigma else (options.sigma, options.sigma_max)
  return lambda clean, key: (add_noise(clean, key, sigma), None)


def _downscaling(options: ml_collections.ConfigDict) -> Degrade:
  scale = options.scale
  return lambda clean, key: (downscale(clean, scale), None)


def _missing_regions(options: ml_collections.ConfigDict) -> Degrade:
  kind = options.mask

  def degrade(clean, key):
    mask = masks(key, clean.shape[:3], kind)
    return clean * (1.0 - mask), mask

  return degrade


def _same_size(options: ml_collections.ConfigDict) -> int:
  del options
  return 1


TASKS = {
    degradation.name: degradation
    for degradation in (
        Degradation(
            "denoise",
            "Denoising",
            _noise,
            _same_size,
            needs_mask=False,
            scores_on_luma=False,
            whole_images=True,
            baselines=("tv", "nlm", "bm3d"),
            architectures=("dncnn",),
        ),
        Degradation(
            "super_resolution",
            "Super-resolution",
            _downscaling,
            lambda options: options.scale,
            needs_mask=False,
            scores_on_luma=True,
            whole_images=True,
            baselines=("bicubic",),
            architectures=("subpixel", "srresnet", "rrdb"),
        ),
        Degradation(
            "inpaint",
            "Inpainting",
            _missing_regions,
            _same_size,
            needs_mask=True,
            scores_on_luma=False,
            whole_images=False,
            baselines=("biharmonic",),
            architectures=("unet",),
        ),
    )
}
