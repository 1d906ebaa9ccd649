r"""Encodes real images with a trained autoencoder or VAE: their codes, and a 2-D projection to look at them by.

  python experiments/encode.py --workdir=/tmp/genjax/vae_local                  # the run's test images
  python experiments/encode.py --workdir=/tmp/genjax/vae_local --images=~/digits
  python experiments/encode.py --workdir=/tmp/genjax/vae_local --images=~/digits --labels_from_subfolders

Images from a folder (every image under it) are resized and centre-cropped to the model's input and converted to
its channels; without --images, the first --num_images test images of the run's data are encoded, with their
labels. Writes under --out_dir (default WORKDIR/codes/<step>/, or WORKDIR/codes/<step>/images-<folder name>/ for
--images, so that the codes of one folder never replace another's):
  codes.npz        "codes" [N, latent_size] (a VAE's posterior means), "names" (file paths, or #index in the test
                   split), and "labels" where there are labels
  projection.png   the codes' first two principal components (PCA), coloured by label where there are labels
`--config.x.y=v` overrides the run's saved config.
"""

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/codes/STEP[/images-NAME]",
    batch_size=(200, "Images encoded at once."),
    num_images=(1000, "Test images to encode without --images.", 2),
)
_IMAGES = flags.DEFINE_string("images", None, "A folder of images to encode (default: the run's test images).")
_LABELS_FROM_SUBFOLDERS = flags.DEFINE_bool(
    "labels_from_subfolders", False, "With --images: each image's label is its top-level subfolder."
)


def main(overrides: list[str]) -> None:
  from genjax import runs
  from genjax import tools

  run = _RUN.load([f"--config.eval.batch_size={_RUN.batch_size.value}", *overrides])
  out_dir = runs.output_dir(run, "codes", [("images", _IMAGES.value and [_IMAGES.value])], _RUN.out_dir.value)
  for path in tools.write_codes(run, out_dir, _IMAGES.value, _LABELS_FROM_SUBFOLDERS.value, _RUN.num_images.value):
    print(path)


if __name__ == "__main__":
  cli.run(main)
