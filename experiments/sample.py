r"""Draws from a trained run: a sample grid, latent interpolations, reconstructions and an export of N samples.

  python experiments/sample.py --workdir=/tmp/genjax/gan_local
  python experiments/sample.py --workdir=/tmp/genjax/vae_local --num_samples=10000 --format=npz
  python experiments/sample.py --workdir=/tmp/genjax/gan_local --interpolation=linear --endpoints=points.npy
  python experiments/sample.py --workdir=/tmp/genjax/vae_local --from_images=a.png,b.png   # between real images
  python experiments/sample.py --workdir=RUN --config.data.data_dir=/data   # the data has moved

Writes under --out_dir (default WORKDIR/export/<step>/):
  samples.png                 a grid of samples (one row per class for a class-conditional model)
  interpolations_<mode>.png   one strip per row, from one latent point to another (--interpolation: spherical or
                              linear); endpoints are random prior draws, the codes of pairs of test images for an
                              autoencoder, given as a .npy array [2, strips, latent_size] with --endpoints, or the
                              codes of two image files with --from_images (resized and centre-cropped to the model's
                              input; one strip)
  reconstructions.png         test images (odd rows) and their reconstructions (even rows), for AE and VAE
  samples.npz or samples/     --num_samples samples as uint8 images (--format npz, or png: one file per image),
                              for data augmentation or scoring with outside tools (pytorch-fid, clean-fid)
`--config.x.y=v` overrides the run's saved config.
"""

import os

from absl import flags

from genjax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where to write (default: WORKDIR/export/<step>).")
_NUM_GRID_IMAGES = flags.DEFINE_integer("num_grid_images", 64, "Images in samples.png (0: none).", lower_bound=0)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 0, "Samples to export (0: none).", lower_bound=0)
_FORMAT = flags.DEFINE_enum("format", "png", ["png", "npz"], "Export format of --num_samples.")
_NUM_INTERPOLATIONS = flags.DEFINE_integer("num_interpolations", 8, "Interpolation strips (0: none).", lower_bound=0)
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 10, "Images per strip, ends included.", lower_bound=2
)
_INTERPOLATION = flags.DEFINE_enum("interpolation", "spherical", ["spherical", "linear"], "Interpolation path.")
_ENDPOINTS = flags.DEFINE_string("endpoints", None, "A .npy array [2, strips, latent_size] of given endpoints.")
_FROM_IMAGES = flags.DEFINE_list(
    "from_images", None, "Two image files A,B: interpolate between their codes (models that encode)."
)
_NUM_RECONSTRUCTIONS = flags.DEFINE_integer(
    "num_reconstructions", 32, "Test images to reconstruct (0: none).", lower_bound=0
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Images generated per batch.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latent draws.", lower_bound=0)
flags.mark_flags_as_required(["workdir"])


def main(overrides: list[str]) -> None:
  import jax

  from genjax import checkpoint
  from genjax import latents
  from genjax import pixels
  from genjax import runs
  from genjax import sampling

  checkpoint.quiet_orbax_logging()
  run = runs.load(_WORKDIR.value, _STEP.value, overrides)
  built, state = run.experiment, run.state
  trainer = built.trainer
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "export", str(run.step))
  samples_key, endpoints_key = jax.random.split(jax.random.key(_SEED.value))

  def save(name, grid):
    path = os.path.join(out_dir, name)
    pixels.save_png(path, grid)
    print(path)

  if trainer.sampler is not None and _NUM_GRID_IMAGES.value:
    save("samples.png", sampling.sample_grid(built, state, _NUM_GRID_IMAGES.value, samples_key))
  if trainer.sampler is not None and _NUM_SAMPLES.value:
    samples = sampling.generate(built, state, _NUM_SAMPLES.value, samples_key, _BATCH_SIZE.value)
    print(sampling.export(samples, tuple(run.config.data.pixel_range), os.path.join(out_dir, "samples"), _FORMAT.value))

  test_images = None
  if trainer.encoder is not None:
    needed = max(_NUM_RECONSTRUCTIONS.value, 2 * _NUM_INTERPOLATIONS.value, 1)
    test_images = sampling.first_images(built, run.data.eval, min(needed, len(run.data.eval)))
  if trainer.encoder is not None and _NUM_RECONSTRUCTIONS.value:
    save("reconstructions.png", sampling.reconstruction_grid(built, state, test_images[: _NUM_RECONSTRUCTIONS.value]))

  if _FROM_IMAGES.value:
    start, end = latents.codes_of_files(built, state, _FROM_IMAGES.value)
    grid = sampling.interpolation_grid(built, state, start, end, _INTERPOLATION_STEPS.value, _INTERPOLATION.value)
    save(f"interpolations_{_INTERPOLATION.value}.png", grid)
  elif trainer.decoder is not None and _NUM_INTERPOLATIONS.value:
    if _ENDPOINTS.value:
      start, end = sampling.load_endpoints(_ENDPOINTS.value, trainer.decoder.latent_size)
    else:
      start, end = sampling.interpolation_endpoints(built, state, _NUM_INTERPOLATIONS.value, endpoints_key, test_images)
    grid = sampling.interpolation_grid(built, state, start, end, _INTERPOLATION_STEPS.value, _INTERPOLATION.value)
    save(f"interpolations_{_INTERPOLATION.value}.png", grid)


if __name__ == "__main__":
  cli.run(main)
