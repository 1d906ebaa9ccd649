"""The published weights of torchvision's VGG16 and VGG19 (genjax.models.vgg.VGG) and of LPIPS' linear layers
(genjax.models.vgg.lpips), read without torch.

- `VGG_FILES[16]`, `VGG_FILES[19]`: torchvision's ImageNet weights (`vgg16-397923af.pth`, `vgg19-dcbb9e9d.pth`, zip
  format); `load_vgg_params(path, depth)` maps `features.{i}.weight` / `.bias` onto `params/conv{b}_{k}/kernel` /
  `bias` (OIHW -> HWIO) and ignores the classifier (`classifier.*`), which no feature network uses.
- `LPIPS_VGG_FILE`: richzhang/PerceptualSimilarity's LPIPS v0.1 weights for VGG (`lpips/weights/v0.1/vgg.pth`, the
  legacy torch.save format, storages tagged `cuda:0`); `load_lpips_params(path)` returns the five non-negative
  channel weights `lin0`..`lin4` (`lin{k}.model.1.weight`, a 1x1 convolution to one channel without bias).

`vgg_variables` and `lpips_weights` find a verified copy (`pretrained_files.verified_copy`: the user's file, the
cache, a download) and load it. Every name and shape is checked against the model; everything the user can fix
raises errors.UserError saying how to obtain the file.
"""

import flax
import jax
import numpy as np

from genjax.feature_networks import pretrained_files
from genjax.models import vgg

VGG_FILES = {
    16: pretrained_files.PublishedFile(
        "torchvision's ImageNet VGG16 weights",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        553_433_881,
    ),
    19: pretrained_files.PublishedFile(
        "torchvision's ImageNet VGG19 weights",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        574_673_361,
    ),
}
LPIPS_VGG_FILE = pretrained_files.PublishedFile(
    "the LPIPS v0.1 linear layers for VGG (richzhang/PerceptualSimilarity lpips/weights/v0.1/vgg.pth)",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    7_289,
)
# The channels of VGG16's relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, which LPIPS' lin0..lin4 weigh.
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def torch_feature_indices(depth: int) -> dict[str, int]:
  """conv name -> its index in torchvision's `features` Sequential (conv, ReLU, conv, ReLU, max pool, ...)."""
  indices, position = {}, 0
  for block, widths in enumerate(vgg.BLOCKS[depth], 1):
    for index in range(1, len(widths) + 1):
      indices[f"conv{block}_{index}"] = position
      position += 2  # the convolution and its ReLU
    position += 1  # the block's max pool
  return indices


def _expected_vgg_tensors(depth: int) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
  """torch name -> (flax variable path, shape in torch's layout) for every variable of the whole VGG trunk."""
  model = vgg.VGG(depth, taps=(vgg.layer_names(depth)[-1],))
  images = jax.ShapeDtypeStruct((1, 32, 32, 3), np.float32)
  abstract = flax.traverse_util.flatten_dict(jax.eval_shape(model.init, jax.random.key(0), images))
  indices = torch_feature_indices(depth)
  expected = {}
  for path, leaf in abstract.items():
    _, conv, variable = path
    if variable == "kernel":
      height, width, fan_in, fan_out = leaf.shape
      expected[f"features.{indices[conv]}.weight"] = (path, (fan_out, fan_in, height, width))
    else:
      expected[f"features.{indices[conv]}.bias"] = (path, leaf.shape)
  return expected


def load_vgg_params(path: str, depth: int, option_name: str | None = "weights_path") -> dict:
  """`{"params": {conv1_1: {kernel, bias}, ...}}` float32 NumPy variables of `vgg.VGG(depth, ...)` from torchvision's
  state dict (or any torch.save of the same architecture), without torch; UserError for a missing, unreadable or
  foreign file."""
  published = VGG_FILES[depth]
  state_dict = pretrained_files.read_state_dict(path, published, option_name)
  expected = _expected_vgg_tensors(depth)
  shapes = {key: shape for key, (_, shape) in expected.items()}
  pretrained_files.check_tensors(path, state_dict, shapes, ("classifier.",), published, option_name)
  variables = {}
  for key, (flax_path, _) in expected.items():
    array = state_dict[key]
    if flax_path[-1] == "kernel":
      array = np.transpose(array, (2, 3, 1, 0))  # OIHW -> HWIO
    variables[flax_path] = np.ascontiguousarray(array, np.float32)
  return flax.traverse_util.unflatten_dict(variables)


def load_lpips_params(path: str, option_name: str | None = "lpips_weights") -> dict[str, np.ndarray]:
  """`{"lin0": [64], "lin1": [128], "lin2": [256], "lin3": [512], "lin4": [512]}` float32: LPIPS' per-channel
  weights of the squared feature differences at `vgg.LPIPS_TAPS`, from its v0.1 VGG file; UserError otherwise."""
  state_dict = pretrained_files.read_state_dict(path, LPIPS_VGG_FILE, option_name)
  shapes = {f"lin{k}.model.1.weight": (1, channels, 1, 1) for k, channels in enumerate(LPIPS_CHANNELS)}
  pretrained_files.check_tensors(path, state_dict, shapes, (), LPIPS_VGG_FILE, option_name)
  return {f"lin{k}": np.asarray(state_dict[key].reshape(-1), np.float32) for k, key in enumerate(shapes)}


def vgg_variables(
    depth: int,
    weights_path: str | None = None,
    cache_dir: str | None = None,
    *,
    option_name: str | None = "weights_path",
    download: bool = True,
) -> dict:
  """The variables of `vgg.VGG(depth, ...)` with torchvision's ImageNet weights, from a verified copy (see
  `pretrained_files.verified_copy`)."""
  path = pretrained_files.verified_copy(
      VGG_FILES[depth], weights_path, cache_dir, option_name=option_name, download=download
  )
  return load_vgg_params(path, depth, option_name)


def lpips_weights(
    vgg16_path: str | None = None,
    lpips_path: str | None = None,
    cache_dir: str | None = None,
    *,
    option_names: tuple[str | None, str | None] = ("vgg16_weights", "lpips_weights"),
    download: bool = True,
) -> dict:
  """`{"vgg": VGG16 variables, "linear": LPIPS' channel weights}`, what `genjax.models.vgg.lpips` takes,
  from verified copies of torchvision's VGG16 and LPIPS' v0.1 file. `option_names`: how the user names each file,
  quoted in messages (None where no option does)."""
  vgg16_option, lpips_option = option_names
  linear_path = pretrained_files.verified_copy(
      LPIPS_VGG_FILE, lpips_path, cache_dir, option_name=lpips_option, download=download
  )
  return {
      "vgg": vgg_variables(16, vgg16_path, cache_dir, option_name=vgg16_option, download=download),
      "linear": load_lpips_params(linear_path, lpips_option),
  }
