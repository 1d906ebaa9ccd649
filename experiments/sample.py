r"""Draws from a trained run: a sample grid, latent interpolations, reconstructions and an export of N samples.

  python experiments/sample.py --workdir=/tmp/genjax/gan_local
  python experiments/sample.py --workdir=/tmp/genjax/vae_local --num_samples=10000 --format=npz
  python experiments/sample.py --workdir=/tmp/genjax/gan_local --interpolation=linear --endpoints=points.npy
  python experiments/sample.py --workdir=/tmp/genjax/vae_local --from_images=a.png,b.png   # between real images
  python experiments/sample.py --workdir=RUN --config.data.data_dir=/data   # the data has moved
  python experiments/sample.py --workdir=/tmp/genjax/stylegan2_local --truncation=0.7   # StyleGAN2
  python experiments/sample.py --workdir=/tmp/genjax/stylegan2_local --interpolation=w   # strips through W

Writes under --out_dir (default WORKDIR/export/<step>/, and below it from_images-<A>_<B>/ or endpoints-<file>/ for
interpolations between points you give, so that no output replaces another):
  samples.png                 a grid of --num_images samples (a class-conditional model's: one full row per class;
                              --truncation=psi pulls a style-space model's towards its mean w)
  interpolations_<mode>.png   one strip per row, from one latent point to another (--interpolation: spherical or
                              linear in the latent space, or w: straight between the points' ws, for a model with
                              a style space, truncated by --truncation); endpoints are random prior draws, the codes
                              of pairs of test images for an autoencoder, given as a .npy array
                              [2, strips, latent_size] with --endpoints, or the codes of two image files with
                              --from_images (resized and centre-cropped to the model's input; one strip)
  style_mixing_<band>.png     a model with a style space (StyleGAN2): --style_mixing row latents down the left and
                              as many column latents along the top; each cell is its row's image with its column's
                              coarse, middle or fine styles
  reconstructions.png         --num_reconstructions test images, in strips above their reconstructions (a denoising
                              autoencoder: the noisy inputs, their reconstructions, the clean images), for AE and VAE
  samples.npz or samples/     --num_samples samples as uint8 images (--format npz, or png: one file per image),
                              for data augmentation or scoring with outside tools (pytorch-fid, clean-fid)
`--config.x.y=v` overrides the run's saved config.
"""

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/export/STEP[/from_images-A_B or /endpoints-NAME]",
    batch_size=(256, "Images generated per batch."),
    seed="the latent draws",
    num_images=(64, "Images in samples.png (0: none).", 0),
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 0, "Samples to export (0: none).", lower_bound=0)
_FORMAT = flags.DEFINE_enum("format", "png", ["png", "npz"], "Export format of --num_samples.")
_NUM_INTERPOLATIONS = flags.DEFINE_integer("num_interpolations", 8, "Interpolation strips (0: none).", lower_bound=0)
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 10, "Images per strip, ends included.", lower_bound=2
)
_INTERPOLATION = flags.DEFINE_enum(
    "interpolation", "spherical", ["spherical", "linear", "w"], "Interpolation path (w: straight in StyleGAN2's W)."
)
_ENDPOINTS = flags.DEFINE_string("endpoints", None, "A .npy array [2, strips, latent_size] of given endpoints.")
_FROM_IMAGES = flags.DEFINE_list(
    "from_images", None, "Two image files A,B: interpolate between their codes (models that encode)."
)
_TRUNCATION = flags.DEFINE_float(
    "truncation", None, "Truncation psi in [0, 1] towards the mean w, for models with a style space (StyleGAN2)."
)
_STYLE_MIXING = flags.DEFINE_integer(
    "style_mixing", 5, "Rows and columns of the style-mixing grids (models with a style space; 0: none).", lower_bound=0
)
_NUM_RECONSTRUCTIONS = flags.DEFINE_integer(
    "num_reconstructions", 32, "Test images to reconstruct (0: none).", lower_bound=0
)


def main(overrides: list[str]) -> None:
  from genjax import runs
  from genjax import tools

  run = _RUN.load(overrides)
  request = tools.SampleRequest(
      num_grid_images=_RUN.num_images.value,
      num_samples=_NUM_SAMPLES.value,
      file_format=_FORMAT.value,
      num_interpolations=_NUM_INTERPOLATIONS.value,
      interpolation_steps=_INTERPOLATION_STEPS.value,
      interpolation=_INTERPOLATION.value,
      endpoints=_ENDPOINTS.value,
      from_images=_FROM_IMAGES.value,
      num_reconstructions=_NUM_RECONSTRUCTIONS.value,
      truncation=_TRUNCATION.value,
      style_mixing_size=_STYLE_MIXING.value,
      batch_size=_RUN.batch_size.value,
      seed=_RUN.seed.value,
  )
  given = [("from_images", _FROM_IMAGES.value), ("endpoints", _ENDPOINTS.value and [_ENDPOINTS.value])]
  for path in tools.write_samples(run, runs.output_dir(run, "export", given, _RUN.out_dir.value), request):
    print(path)


if __name__ == "__main__":
  cli.run(main)
