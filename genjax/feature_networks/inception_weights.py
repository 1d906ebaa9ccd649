"""Obtaining and loading the weights of the FID Inception-v3 (genjax.models.inception.FIDInceptionV3).

The standard weights are pytorch-fid's port of the TensorFlow 2015-12-05 FID graph, the file FID_WEIGHTS_FILENAME
published at FID_WEIGHTS_URL, with which pytorch-fid computes FID (torch-fidelity, and through it torchmetrics, use
a copy with the same SHA-256).
`fid_inception_weights` finds a verified copy: the user's file, else a cached one, else a download.
`load_fid_inception_params` reads a torch state dict of that network without torch (`torch_state_dicts`, which the
next pretrained network reuses; the published file is in torch's legacy format), and returns flax variables for
FIDInceptionV3, every name and shape checked against the model.

Anything the user can fix (a missing, truncated or foreign file, no network) raises errors.UserError saying how to
obtain the file. Computing FID from the features is not this module's job.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request

from absl import logging
import flax
import jax
import numpy as np

from genjax import errors
from genjax.feature_networks import torch_state_dicts
from genjax.models import inception

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# The full digest, whose first 8 hex digits torch hub's naming convention puts in the file name; the same value is
# pinned by genforce's metrics/inception.py and by several projects that record the 95,628,359-byte file.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "genjax")

# Flax (collection, variable name) -> torch tensor name; the module names (conv, bn, Mixed_5b, ...) are shared.
_TORCH_TENSOR_NAMES = {
    ("params", "kernel"): "weight",  # of a conv
    ("params", "scale"): "weight",  # of a bn
    ("params", "bias"): "bias",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}
# Entries of the file that FIDInceptionV3 has no use for: the TF graph's 1008-way classifier (FID reads the
# pool_3 features before it) and BatchNorm's training-step counters.
_IGNORED_KEYS = ("fc.weight", "fc.bias")
_IGNORED_SUFFIX = ".num_batches_tracked"


def _how_to_obtain(option_name: str, cache_path: str) -> str:
  return (
      f"Download {FID_WEIGHTS_URL} (SHA-256 {FID_WEIGHTS_SHA256}) and pass the file's path as {option_name}, or "
      f"put it at {cache_path}, where it is looked for when {option_name} is not set."
  )


def fid_inception_weights(
    weights_path: str | None = None,
    cache_dir: str | None = None,
    *,
    option_name: str = "weights_path",
    expected_sha256: str = FID_WEIGHTS_SHA256,
) -> str:
  """Path of a checksum-verified copy of pytorch-fid's FID Inception weights.

  Uses `weights_path` when given; else `<cache_dir>/pt_inception-2015-12-05-6726825d.pth` (cache_dir defaults to
  ~/.cache/genjax); else downloads FID_WEIGHTS_URL there (to a temporary file, renamed once its SHA-256 matches).
  `option_name` is how the user sets `weights_path` (e.g. the config key), quoted in error messages.
  """
  cache_path = os.path.join(os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR), FID_WEIGHTS_FILENAME)
  how_to_obtain = _how_to_obtain(option_name, cache_path)
  if weights_path is not None:
    if not os.path.isfile(weights_path):
      raise errors.UserError(
          f"The FID Inception weights file {weights_path!r} ({option_name}) does not exist. {how_to_obtain}"
      )
    _check_sha256(weights_path, expected_sha256, f"Remove {option_name} or point it at the right file. {how_to_obtain}")
    return weights_path
  if os.path.isfile(cache_path):
    _check_sha256(cache_path, expected_sha256, f"Delete it so that it is downloaded again. {how_to_obtain}")
    return cache_path
  _download(FID_WEIGHTS_URL, cache_path, expected_sha256, how_to_obtain)
  return cache_path


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    while chunk := file.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _check_sha256(path: str, expected_sha256: str, advice: str) -> None:
  actual = _sha256(path)
  if actual != expected_sha256:
    raise errors.UserError(
        f"{path} is not the FID Inception weights file, or is damaged: its SHA-256 is {actual}, expected "
        f"{expected_sha256}. {advice}"
    )


def _download(url: str, destination: str, expected_sha256: str, how_to_obtain: str) -> None:
  """Downloads `url` to `destination` through a temporary file in the same directory, renamed once verified."""
  logging.info("Downloading the FID Inception weights from %s to %s.", url, destination)
  temporary_path = None
  try:
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    descriptor, temporary_path = tempfile.mkstemp(dir=os.path.dirname(destination), suffix=".part")
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "wb") as file, urllib.request.urlopen(url, timeout=60) as response:
      while chunk := response.read(1 << 20):
        digest.update(chunk)
        file.write(chunk)
    if digest.hexdigest() != expected_sha256:
      raise errors.UserError(
          f"The file downloaded from {url} has SHA-256 {digest.hexdigest()}, expected {expected_sha256} (an "
          f"interrupted download or a changed release). {how_to_obtain}"
      )
    # A rename within one directory is atomic: a concurrent or interrupted run never sees a partial file.
    os.replace(temporary_path, destination)
  except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors.
    raise errors.UserError(f"Could not download {url} to {destination} ({error}). {how_to_obtain}") from error
  finally:
    if temporary_path is not None and os.path.exists(temporary_path):
      os.remove(temporary_path)


def _expected_tensors() -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
  """torch state-dict name -> (flax variable path, shape in torch's layout) for every variable of FIDInceptionV3."""
  images = jax.ShapeDtypeStruct((1, inception.INPUT_SIZE, inception.INPUT_SIZE, 3), np.float32)
  abstract_variables = jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0), images)
  expected = {}
  for path, leaf in flax.traverse_util.flatten_dict(abstract_variables).items():
    collection, *modules, variable_name = path
    shape = leaf.shape
    if variable_name == "kernel":
      shape = (shape[3], shape[2], shape[0], shape[1])  # flax HWIO as torch's OIHW
    expected[".".join([*modules, _TORCH_TENSOR_NAMES[collection, variable_name]])] = (path, shape)
  return expected


def _listing(items: list[str], limit: int = 8) -> str:
  shown = ", ".join(items[:limit])
  return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def load_fid_inception_params(path: str) -> dict:
  """`{"params": ..., "batch_stats": ...}` float32 NumPy variables for FIDInceptionV3 from a torch state dict.

  Reads pytorch-fid's weights file (FID_WEIGHTS_URL) or any torch.save of the same architecture's state dict,
  without torch. Convolution kernels go from torch's OIHW to flax's HWIO; BatchNorm weight, bias, running_mean and
  running_var become scale, bias (params) and mean, var (batch_stats). Raises UserError when the file is missing
  or unreadable, or when its tensors do not match the model's variables one to one with equal shapes.
  """
  how_to_obtain = _how_to_obtain(
      "weights_path", os.path.join(os.path.expanduser(DEFAULT_CACHE_DIR), FID_WEIGHTS_FILENAME)
  )
  if not os.path.isfile(path):
    raise errors.UserError(f"The FID Inception weights file {path!r} does not exist. {how_to_obtain}")
  try:
    state_dict = torch_state_dicts.read(path)
  except ValueError as error:
    raise errors.UserError(
        f"Could not read {path} as a torch state dict ({error}); the file is damaged, truncated or of another kind. "
        f"{how_to_obtain}"
    ) from error

  expected = _expected_tensors()
  variables, unexpected, wrong_shapes = {}, [], []
  for key, array in state_dict.items():
    if key in _IGNORED_KEYS or key.endswith(_IGNORED_SUFFIX):
      continue
    if key not in expected:
      unexpected.append(key)
      continue
    flax_path, shape = expected[key]
    if array.shape != shape:
      wrong_shapes.append(f"{key} {array.shape} (the model needs {shape})")
      continue
    if flax_path[-1] == "kernel":
      array = np.transpose(array, (2, 3, 1, 0))  # OIHW -> HWIO
    variables[flax_path] = np.ascontiguousarray(array, np.float32)

  missing = [key for key in expected if key not in state_dict]
  if unexpected or wrong_shapes or missing:
    problems = [
        f"{label} ({len(items)}): {_listing(items)}"
        for label, items in [("unexpected tensors", unexpected), ("wrong shapes", wrong_shapes), ("missing", missing)]
        if items
    ]
    raise errors.UserError(
        f"{path} is not a state dict of pytorch-fid's FID Inception-v3: {'; '.join(problems)}. {how_to_obtain}"
    )
  return flax.traverse_util.unflatten_dict(variables)
