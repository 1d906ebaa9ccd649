r"""Draws from a trained run: a sample grid, latent interpolations, reconstructions and an export of N samples.

  python experiments/sample.py --workdir=/tmp/genjax/gan_local
  python experiments/sample.py --workdir=/tmp/genjax/vae_local --num_samples=10000 --format=npz
  python experiments/sample.py --workdir=/tmp/genjax/gan_local --interpolation=linear --endpoints=points.npy

Writes under --out_dir (default WORKDIR/export/<step>/):
  samples.png                 a grid of samples (one row per class for a class-conditional model)
  interpolations_<mode>.png   one strip per row, from one latent point to another (--interpolation: spherical or
                              linear); endpoints are random prior draws, the codes of pairs of test images for an
                              autoencoder, or given as a .npy array [2, strips, latent_size] with --endpoints
  reconstructions.png         test images (odd rows) and their reconstructions (even rows), for AE and VAE
  samples.npz or samples/     --num_samples samples as uint8 images (--format npz, or png: one file per image),
                              for data augmentation or scoring with outside tools (pytorch-fid, clean-fid)
"""

import os
import sys

from absl import app
from absl import flags

from genjax import errors

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where to write (default: WORKDIR/export/<step>).")
_NUM_GRID_IMAGES = flags.DEFINE_integer("num_grid_images", 64, "Images in samples.png (0: none).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 0, "Samples to export (0: none).")
_FORMAT = flags.DEFINE_enum("format", "png", ["png", "npz"], "Export format of --num_samples.")
_NUM_INTERPOLATIONS = flags.DEFINE_integer("num_interpolations", 8, "Interpolation strips (0: none).")
_INTERPOLATION_STEPS = flags.DEFINE_integer("interpolation_steps", 10, "Images per strip, ends included.")
_INTERPOLATION = flags.DEFINE_enum("interpolation", "spherical", ["spherical", "linear"], "Interpolation path.")
_ENDPOINTS = flags.DEFINE_string("endpoints", None, "A .npy array [2, strips, latent_size] of given endpoints.")
_NUM_RECONSTRUCTIONS = flags.DEFINE_integer("num_reconstructions", 32, "Test images to reconstruct (0: none).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Images generated per batch.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latent draws.")
_OVERRIDES = flags.DEFINE_multi_string("override", [], "Config override KEY=VALUE, e.g. data.data_dir=/data.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    for path in _write_everything():
      print(path)
  except errors.UserError as e:
    sys.exit(f"genjax: error: {e}")


def _write_everything() -> list[str]:
  import jax
  import numpy as np
  from PIL import Image

  from genjax import checkpoint
  from genjax import runs
  from genjax import sampling
  from genjax import writers
  from genjax.data import pipeline

  checkpoint.quiet_orbax_logging()
  run = runs.load(_WORKDIR.value, _STEP.value, _OVERRIDES.value)
  trainer, config = run.trainer, run.config
  pixel_range = tuple(config.data.pixel_range)
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "export", str(run.step))
  os.makedirs(out_dir, exist_ok=True)
  samples_key, endpoints_key = jax.random.split(jax.random.key(_SEED.value))
  num_classes = config.model.num_classes if trainer.needs_labels else 0
  written = []

  def save_grid(name, images, columns=None):
    path = os.path.join(out_dir, name)
    grid = writers.image_grid(images, pixel_range, columns)
    Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(path)
    written.append(path)

  if trainer.generate is not None and _NUM_GRID_IMAGES.value:
    save_grid("samples.png", sampling.generate(run, _NUM_GRID_IMAGES.value, samples_key, _NUM_GRID_IMAGES.value))
  if trainer.generate is not None and _NUM_SAMPLES.value:
    samples = sampling.generate(run, _NUM_SAMPLES.value, samples_key, _BATCH_SIZE.value)
    written.append(sampling.export(samples, pixel_range, os.path.join(out_dir, "samples"), _FORMAT.value))

  test_images = None
  if trainer.reconstruct is not None or trainer.generate is None:
    needed = max(_NUM_RECONSTRUCTIONS.value, 2 * _NUM_INTERPOLATIONS.value, 1)
    batch = next(pipeline.eval_batches(run.eval_source, config.data, needed, config.seed))
    test_images = batch["image"][: int(batch["mask"].sum())]
  if trainer.reconstruct is not None and _NUM_RECONSTRUCTIONS.value:
    originals = test_images[: _NUM_RECONSTRUCTIONS.value]
    reconstructions = np.asarray(jax.jit(trainer.reconstruct)(run.state, originals))
    columns = int(np.ceil(np.sqrt(len(originals))))
    paired = writers.interleave_rows(originals, reconstructions, columns)
    save_grid("reconstructions.png", paired, columns)

  if trainer.decode is not None and _NUM_INTERPOLATIONS.value:
    strips, steps = _NUM_INTERPOLATIONS.value, _INTERPOLATION_STEPS.value
    if _ENDPOINTS.value:
      start, end = _load_endpoints(_ENDPOINTS.value, trainer.latent_size)
    elif trainer.generate is not None:
      start, end = np.asarray(jax.random.normal(endpoints_key, (2, strips, trainer.latent_size)))
    else:  # An autoencoder: walk between the codes of pairs of test images.
      codes = sampling.encode(run, test_images[: 2 * strips])
      start, end = codes[0::2], codes[1::2]
    points = sampling.interpolate(start, end, steps, _INTERPOLATION.value)
    labels = np.repeat(np.arange(len(points)) % num_classes, steps) if num_classes else None
    images = sampling.decode(run, points.reshape(-1, points.shape[-1]), labels)
    save_grid(f"interpolations_{_INTERPOLATION.value}.png", images, steps)
  return written


def _load_endpoints(path: str, latent_size: int):
  import numpy as np

  try:
    endpoints = np.load(path)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"Cannot read --endpoints={path!r}: {e}") from e
  if endpoints.ndim != 3 or endpoints.shape[0] != 2 or endpoints.shape[2] != latent_size:
    raise errors.UserError(
        f"--endpoints must hold an array [2, strips, {latent_size}] (start and end points); {path!r} holds "
        f"{endpoints.shape}."
    )
  return endpoints.astype(np.float32)


if __name__ == "__main__":
  app.run(main)
