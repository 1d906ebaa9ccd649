r"""Encodes real images with a trained autoencoder or VAE: their codes, and a 2-D projection to look at them by.

  python experiments/encode.py --workdir=/tmp/genjax/vae_local                  # the run's test images
  python experiments/encode.py --workdir=/tmp/genjax/vae_local --images=~/digits
  python experiments/encode.py --workdir=/tmp/genjax/vae_local --images=~/digits --labels_from_subfolders

Images from a folder (every image under it) are resized and centre-cropped to the model's input and converted to
its channels; without --images, the first --num_images test images of the run's data are encoded, with their
labels. Writes under --out_dir (default WORKDIR/codes/<step>/):
  codes.npz        "codes" [N, latent_size] (a VAE's posterior means), "names" (file paths, or #index in the test
                   split), and "labels" where there are labels
  projection.png   the codes' first two principal components (PCA), coloured by label where there are labels
`--config.x.y=v` overrides the run's saved config.
"""

import os

from absl import flags

from genjax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_IMAGES = flags.DEFINE_string("images", None, "A folder of images to encode (default: the run's test images).")
_LABELS_FROM_SUBFOLDERS = flags.DEFINE_bool(
    "labels_from_subfolders", False, "With --images: each image's label is its top-level subfolder."
)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 1000, "Test images to encode without --images.", lower_bound=2)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where to write (default: WORKDIR/codes/<step>).")
flags.mark_flags_as_required(["workdir"])


def main(overrides: list[str]) -> None:
  import numpy as np
  from etils import epath

  from genjax import checkpoint
  from genjax import errors
  from genjax import latents
  from genjax import pixels
  from genjax import runs

  checkpoint.quiet_orbax_logging()
  run = runs.load(_WORKDIR.value, _STEP.value, overrides)
  built = run.experiment
  if built.trainer.encoder is None:
    raise errors.UserError(f"{run.workdir} holds a {run.config.family} model, which has no encoder; use an AE or VAE.")
  if _IMAGES.value:
    images = latents.read_folder(built, _IMAGES.value, _LABELS_FROM_SUBFOLDERS.value)
    source = _IMAGES.value
  else:
    images = latents.read_split(built, run.data.eval, _NUM_IMAGES.value)
    source = f"the test split of {run.config.data.name}"
  codes = latents.encode(built, run.state, images.images)
  out_dir = epath.Path(_OUT_DIR.value or os.path.join(run.workdir, "codes", str(run.step)))
  out_dir.mkdir(parents=True, exist_ok=True)
  arrays = {"codes": codes, "names": np.array(images.names)}
  if images.labels is not None:
    arrays["labels"] = images.labels
  with (out_dir / "codes.npz").open("wb") as f:
    np.savez(f, **arrays)
  title = f"{len(codes)} images of {source}"
  pixels.save_png(str(out_dir / "projection.png"), latents.projection_plot(images, codes, title))
  print(f"{len(codes)} codes of size {codes.shape[1]}")
  print(out_dir)


if __name__ == "__main__":
  cli.run(main)
