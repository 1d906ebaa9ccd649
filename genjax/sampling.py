"""Drawing from a restored run: batched samples, latent interpolations and sample export (PNG folders, NumPy files).

Everything here takes a `runs.Run` and plain arrays; experiments/sample.py is the command line over it. Images
come back as float arrays in the data's pixel range (`config.data.pixel_range`), NHWC.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from genjax import errors
from genjax import runs
from genjax import sharding

INTERPOLATIONS = ("linear", "spherical")


def generate(run: runs.Run, num_images: int, key: jax.Array, batch_size: int) -> np.ndarray:
  """`num_images` samples `[N, H, W, C]`, drawn `batch_size` at a time (batch i with `fold_in(key, i)`)."""
  if run.trainer.generate is None:
    raise errors.UserError(f"A {run.config.family} model cannot sample (it has no prior over its codes).")
  replicated = sharding.replicated(run.mesh)
  generate_batch = jax.jit(
      run.trainer.generate, static_argnums=2, in_shardings=(run.state_sharding, replicated), out_shardings=replicated
  )
  batches = []
  for index, start in enumerate(range(0, num_images, batch_size)):
    count = min(batch_size, num_images - start)
    batches.append(np.asarray(generate_batch(run.state, jax.random.fold_in(key, index), count)))
  return np.concatenate(batches)[:num_images]


def interpolate(start: np.ndarray, end: np.ndarray, num_steps: int, mode: str) -> np.ndarray:
  """Points from `start [S, D]` to `end [S, D]`: `[S, num_steps, D]`, both ends included.

  "linear" walks the straight segment; "spherical" (slerp, White 2016) walks the great circle and interpolates
  the norm linearly, which keeps Gaussian latents at the typical radius that a straight line cuts through.
  """
  if mode not in INTERPOLATIONS:
    raise errors.UserError(f"Interpolation {mode!r} is not one of {', '.join(INTERPOLATIONS)}.")
  start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
  t = np.linspace(0.0, 1.0, num_steps)[None, :, None]
  if mode == "linear":
    return ((1 - t) * start[:, None] + t * end[:, None]).astype(np.float32)
  start_norm = np.linalg.norm(start, axis=-1, keepdims=True)[:, None]
  end_norm = np.linalg.norm(end, axis=-1, keepdims=True)[:, None]
  start_unit, end_unit = start[:, None] / start_norm, end[:, None] / end_norm
  angle = np.arccos(np.clip(np.sum(start_unit * end_unit, axis=-1, keepdims=True), -1.0, 1.0))
  sin_angle = np.sin(angle)
  # Nearly parallel endpoints: the great circle degenerates, and the straight segment is the same path.
  safe = sin_angle > 1e-6
  weights_start = np.where(safe, np.sin((1 - t) * angle) / np.where(safe, sin_angle, 1.0), 1 - t)
  weights_end = np.where(safe, np.sin(t * angle) / np.where(safe, sin_angle, 1.0), t)
  direction = weights_start * start_unit + weights_end * end_unit
  direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
  return (direction * ((1 - t) * start_norm + t * end_norm)).astype(np.float32)


def decode(run: runs.Run, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
  """Images `[N, H, W, C]` that the run's decoder (or generator) makes of `latents [N, latent_size]`."""
  if run.trainer.decode is None:
    raise errors.UserError(f"A {run.config.family} model has no decoder to interpolate through.")
  if latents.shape[-1] != run.trainer.latent_size:
    raise errors.UserError(
        f"The latents have {latents.shape[-1]} dimensions; this model's latent size is {run.trainer.latent_size}."
    )
  return np.asarray(jax.jit(run.trainer.decode)(run.state, jnp.asarray(latents), labels))


def encode(run: runs.Run, images: np.ndarray) -> np.ndarray:
  if run.trainer.encode is None:
    raise errors.UserError(f"A {run.config.family} model has no encoder.")
  return np.asarray(jax.jit(run.trainer.encode)(run.state, jnp.asarray(images)))


def to_uint8(images: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
  low, high = pixel_range
  return np.round(np.clip((np.asarray(images) - low) / (high - low), 0.0, 1.0) * 255).astype(np.uint8)


def export(images: np.ndarray, pixel_range: tuple[float, float], path: str, file_format: str) -> str:
  """Writes images as 8-bit data for other tools (pytorch-fid, clean-fid, augmentation pipelines).

  "npz": one file `path` (".npz" appended if missing) holding `images` uint8 `[N, H, W, C]`;
  "png": a folder `path` of 000000.png, 000001.png, ... Returns what was written.
  """
  pixels = to_uint8(images, pixel_range)
  if file_format == "npz":
    path = path if path.endswith(".npz") else path + ".npz"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, images=pixels)
  elif file_format == "png":
    os.makedirs(path, exist_ok=True)
    for index, image in enumerate(pixels):
      Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(os.path.join(path, f"{index:06d}.png"))
  else:
    raise errors.UserError(f"Export format {file_format!r} is not one of npz, png.")
  return path
