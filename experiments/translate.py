r"""Translates your own images with a trained translation run (pix2pix or CycleGAN), at any size.

  python experiments/translate.py --workdir=/tmp/genjax/pix2pix_local --input=grey.png --out_dir=/tmp/coloured
  python experiments/translate.py --workdir=/tmp/genjax/cyclegan_local --input=~/digits --out_dir=/tmp/thin \
    --direction=b_to_a

--input is an image file or a folder, searched recursively (PNG, JPEG, BMP, TIFF, WebP). Each translated image is
written under --out_dir (default WORKDIR/translated_<direction>/<step>/input-<name of --input>/) with its name (and
its subfolders), in the run's channels, at its own size: the networks are fully convolutional, so an image of up to
--tile pixels a side is mirrored at its bottom and right edges up to the generator's multiple, translated whole, and
cut back; a larger one is translated in overlapping tiles (see genjax/restoring.py), so memory stays bounded. A
CycleGAN generator normalises each tile by its own statistics: a --tile above the image's sides avoids tiles where
memory allows. --direction
is a_to_b (the run's inputs to its targets, the default) or b_to_a (a CycleGAN's way back). A file that cannot be
read is skipped and named in a warning, as every genjax tool does; the exit status is 1 only if none could be read.
"""

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/translated_DIRECTION/STEP/input-NAME", batch_size=(4, "Tiles translated at once.")
)
_INPUT = flags.DEFINE_string("input", None, "An image file, or a folder of images (recursive).")
_DIRECTION = flags.DEFINE_string("direction", "a_to_b", "a_to_b (inputs to targets) or b_to_a (CycleGAN's way back).")
_TILE = flags.DEFINE_integer(
    "tile", 1024, "Images larger than this a side are translated in tiles of it.", lower_bound=16
)
_MARGIN = flags.DEFINE_integer("margin", 64, "Context kept around each tile (overlap: twice this).", lower_bound=0)
_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels", None, "The largest image read, in pixels (default: genjax.restoring.MAX_PIXELS).", lower_bound=1
)
flags.mark_flags_as_required(["input"])


def main(overrides: list[str]) -> None:
  from genjax import restoring
  from genjax import runs
  from genjax import tools

  run = _RUN.load(overrides)
  kind = f"translated_{_DIRECTION.value}"
  out_dir = runs.output_dir(run, kind, [("input", [_INPUT.value])], _RUN.out_dir.value)
  max_pixels = _MAX_PIXELS.value or restoring.MAX_PIXELS
  tiling = restoring.Tiling(_TILE.value, _MARGIN.value, _RUN.batch_size.value)
  written = tools.translate_files(run, out_dir, _INPUT.value, _DIRECTION.value, max_pixels, tiling)
  print(f"{len(written)} images written to {out_dir}")


if __name__ == "__main__":
  cli.run(main)
