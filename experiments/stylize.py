r"""Paints a photograph in the style of another image (Gatys et al. 2016: genjax/style_transfer.py), with
torchvision's ImageNet VGG19 (or VGG16) weights, downloaded once to ~/.cache/genjax and checked by SHA-256.

  python experiments/stylize.py --content=photo.jpg --style=painting.jpg
  python experiments/stylize.py --content=photo.jpg --style=painting.jpg --output=/tmp/out.png --steps=500 \
    --max_side=512
  python experiments/stylize.py --content=photo.jpg --style=painting.jpg --vgg_weights=/data/vgg19-dcbb9e9d.pth

The result goes to --output (default: CONTENT-STYLE.png beside the content image). Either image may be grey, RGB or
with alpha (grey is taken as RGB, alpha dropped). The content is shrunk to --max_side on its longer side, the style
to the same longer side. Offline, without the weights, the error says which file to download and where to put it.
"""

from absl import app
from absl import flags

from genjax import cli

_CONTENT = flags.DEFINE_string("content", None, "The photograph whose content is kept.")
_STYLE = flags.DEFINE_string("style", None, "The image whose style is taken (a painting).")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the result (default: CONTENT-STYLE.png beside it).")
_STEPS = flags.DEFINE_integer("steps", 300, "Adam steps.", lower_bound=1)
_MAX_SIDE = flags.DEFINE_integer("max_side", 256, "Longer side of the result, in pixels, at most.", lower_bound=16)
_VGG = flags.DEFINE_enum("vgg", "19", ["16", "19"], "VGG16 or VGG19 (the paper's).")
_VGG_WEIGHTS = flags.DEFINE_string(
    "vgg_weights",
    None,
    "torchvision's vgg19-dcbb9e9d.pth (or vgg16-397923af.pth); default: the cache, else a download.",
)
flags.mark_flags_as_required(["content", "style"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from genjax import style_transfer
  from genjax.feature_networks import vgg_weights

  cli.enable_compilation_cache(cli.COMPILATION_CACHE.value)
  depth = int(_VGG.value)
  settings = style_transfer.Settings(depth=depth, steps=_STEPS.value, max_side=_MAX_SIDE.value)
  output = _OUTPUT.value or style_transfer.default_output_path(_CONTENT.value, _STYLE.value)
  variables = vgg_weights.vgg_variables(depth, _VGG_WEIGHTS.value, option_name="--vgg_weights")
  losses = style_transfer.stylize_file(_CONTENT.value, _STYLE.value, output, variables, settings)
  print(f"loss {losses[0]:.4g} -> {losses[-1]:.4g} in {len(losses)} steps; wrote {output}")


if __name__ == "__main__":
  app.run(cli.reporting_user_errors(main))
