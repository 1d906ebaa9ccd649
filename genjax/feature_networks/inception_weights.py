"""Obtaining and loading the weights of the FID Inception-v3 (genjax.models.inception.FIDInceptionV3).

The standard weights are pytorch-fid's port of the TensorFlow 2015-12-05 FID graph, the file FID_WEIGHTS_FILENAME
published at FID_WEIGHTS_URL, with which pytorch-fid computes FID (torch-fidelity, and through it torchmetrics, use
a copy with the same SHA-256).
`fid_inception_weights` finds a verified copy: the user's file, else a cached one, else a download
(`pretrained_files.verified_copy`). `load_fid_inception_params` reads a torch state dict of that network without
torch (the published file is in torch's legacy format), and returns flax variables for FIDInceptionV3, every name
and shape checked against the model.

Anything the user can fix (a missing, truncated or foreign file, no network) raises errors.UserError saying how to
obtain the file. Computing FID from the features is not this module's job.
"""

import dataclasses

import flax
import jax
import numpy as np

from genjax.feature_networks import pretrained_files
from genjax.models import inception

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
# The full digest, whose first 8 hex digits torch hub's naming convention puts in the file name; the same value is
# pinned by genforce's metrics/inception.py and by several projects that record the 95,628,359-byte file.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_WEIGHTS_FILE = pretrained_files.PublishedFile(
    "pytorch-fid's FID Inception-v3 weights", FID_WEIGHTS_URL, FID_WEIGHTS_SHA256, 95_628_359
)
FID_WEIGHTS_FILENAME = FID_WEIGHTS_FILE.filename

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
_IGNORED_PREFIX = "fc."
_IGNORED_SUFFIX = ".num_batches_tracked"


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
  published = dataclasses.replace(FID_WEIGHTS_FILE, sha256=expected_sha256)
  return pretrained_files.verified_copy(published, weights_path, cache_dir, option_name=option_name)


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


def load_fid_inception_params(path: str) -> dict:
  """`{"params": ..., "batch_stats": ...}` float32 NumPy variables for FIDInceptionV3 from a torch state dict.

  Reads pytorch-fid's weights file (FID_WEIGHTS_URL) or any torch.save of the same architecture's state dict,
  without torch. Convolution kernels go from torch's OIHW to flax's HWIO; BatchNorm weight, bias, running_mean and
  running_var become scale, bias (params) and mean, var (batch_stats). Raises UserError when the file is missing
  or unreadable, or when its tensors do not match the model's variables one to one with equal shapes.
  """
  state_dict = pretrained_files.read_state_dict(path, FID_WEIGHTS_FILE)
  state_dict = {key: array for key, array in state_dict.items() if not key.endswith(_IGNORED_SUFFIX)}
  expected = _expected_tensors()
  shapes = {key: shape for key, (_, shape) in expected.items()}
  pretrained_files.check_tensors(path, state_dict, shapes, (_IGNORED_PREFIX,), FID_WEIGHTS_FILE)
  variables = {}
  for key, (flax_path, _) in expected.items():
    array = state_dict[key]
    if flax_path[-1] == "kernel":
      array = np.transpose(array, (2, 3, 1, 0))  # OIHW -> HWIO
    variables[flax_path] = np.ascontiguousarray(array, np.float32)
  return flax.traverse_util.unflatten_dict(variables)
