r"""Restores your own images with a trained restoration run: denoises, upscales or fills them, at any size.

  python experiments/restore.py --workdir=/tmp/genjax/denoise_local --input=noisy.png --out_dir=/tmp/restored
  python experiments/restore.py --workdir=/tmp/genjax/sr_local --input=~/photos --out_dir=/tmp/upscaled
  python experiments/restore.py --workdir=/tmp/genjax/inpaint_local --input=photo.png --mask=mask.png --out_dir=/tmp/filled
  python experiments/restore.py --workdir=/tmp/genjax/denoise_local --input=~/clean --out_dir=/tmp/demo --degrade

--input is an image file or a folder, searched recursively (PNG, JPEG, BMP, TIFF, WebP). Each restored image is
written under --out_dir (default WORKDIR/restored/<step>/input-<name of --input>/) with its name (and its
subfolders), in the run's channels (grey or colour). Inpainting reads --mask, a file or a folder with the same names
(white: missing); its size must be the image's. --degrade first applies the run's own degradation (noise,
downscaling or its masks; a fixed seed) to clean images and writes it beside the result as NAME_degraded.png: a
quick way to see what the model does. Images larger than --tile are restored in overlapping tiles (see
genjax/restoring.py), so memory stays bounded; images of up to --max_pixels (400 million, above Pillow's bound of
about 179 million) are read. A file that cannot be read (or whose mask cannot) is skipped and
named in a warning, as every genjax tool does; the exit status is 1 only if none could be read.
"""

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/restored/STEP/input-NAME",
    batch_size=(8, "Tiles restored at once."),
    seed="--degrade",
)
_INPUT = flags.DEFINE_string("input", None, "An image file, or a folder of images (recursive).")
_MASK = flags.DEFINE_string("mask", None, "Inpainting: a mask file, or a folder of masks named as the images.")
_DEGRADE = flags.DEFINE_bool("degrade", False, "Degrade the (clean) inputs with the run's degradation first.")
_SCALE = flags.DEFINE_integer("scale", None, "Super-resolution: the factor expected (refused unless the run's).")
_TILE = flags.DEFINE_integer("tile", 256, "Tile side in input pixels for large images.", lower_bound=16)
_MARGIN = flags.DEFINE_integer("margin", 16, "Context kept around each tile (overlap: twice this).", lower_bound=0)
_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels",
    None,
    "The largest image read, in pixels, a bound against decompression bombs (default: genjax.restoring.MAX_PIXELS).",
    lower_bound=1,
)
flags.mark_flags_as_required(["input"])


def main(overrides: list[str]) -> None:
  from genjax import restoring
  from genjax import runs
  from genjax import tools

  run = _RUN.load(overrides)
  request = tools.RestoreRequest(
      inputs=_INPUT.value,
      mask=_MASK.value,
      degrade=_DEGRADE.value,
      scale=_SCALE.value,
      tiling=restoring.Tiling(_TILE.value, _MARGIN.value, _RUN.batch_size.value),
      max_pixels=_MAX_PIXELS.value or restoring.MAX_PIXELS,
      seed=_RUN.seed.value,
  )
  out_dir = runs.output_dir(run, "restored", [("input", [_INPUT.value])], _RUN.out_dir.value)
  written = tools.restore_files(run, out_dir, request)
  print(f"{len(written)} images written to {out_dir}")


if __name__ == "__main__":
  cli.run(main)
