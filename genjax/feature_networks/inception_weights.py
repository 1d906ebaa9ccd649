"""Obtaining and loading the weights of the FID Inception-v3 (genjax.models.inception.FIDInceptionV3).

The standard weights are pytorch-fid's port of the TensorFlow 2015-12-05 FID graph, the file FID_WEIGHTS_FILENAME
published at FID_WEIGHTS_URL, with which pytorch-fid computes FID (torch-fidelity, and through it torchmetrics, use
a copy with the same SHA-256).
`fid_inception_weights` finds a verified copy: the user's file, else a cached one, else a download.
`load_fid_inception_params` reads a torch state dict of that network without torch, in either of torch.save's
formats (the legacy one of torch < 1.6, whose size the published file has, and the zip one of later versions), and
returns flax variables for FIDInceptionV3, every name and shape checked against the model.

Anything the user can fix (a missing, truncated or foreign file, no network) raises errors.UserError saying how to
obtain the file. Computing FID from the features is not this module's job.
"""

import collections
import dataclasses
import hashlib
import http.client
import os
import pickle
import struct
import tempfile
import urllib.error
import urllib.request
import zipfile

from absl import logging
import flax
import jax
import numpy as np

from genjax import errors
from genjax.models import inception

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# The full digest, whose first 8 hex digits torch hub's naming convention puts in the file name; the same value is
# pinned by genforce's metrics/inception.py and by several projects that record the 95,628,359-byte file.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "genjax")

# torch.save's legacy format opens with these two pickled integers.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# The storage classes a state dict names, by element type.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

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


@dataclasses.dataclass
class _Storage:
  """A flat torch storage: its element type and count from the pickle, its elements once read."""

  dtype: np.dtype
  numel: int
  elements: np.ndarray | None = None


@dataclasses.dataclass
class _TensorView:
  """A tensor as torch pickles it (a strided view of a storage), made an array once the storage is read."""

  storage: _Storage
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]

  def to_array(self) -> np.ndarray:
    elements = self.storage.elements
    last = self.offset + sum((size - 1) * step for size, step in zip(self.shape, self.stride))
    if min(self.shape, default=1) > 0 and not 0 <= self.offset <= last < elements.size:
      raise ValueError(f"a tensor of shape {self.shape} reaches past its storage of {elements.size} elements")
    strides = tuple(step * elements.itemsize for step in self.stride)
    return np.lib.stride_tricks.as_strided(elements[self.offset :], self.shape, strides).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
  del requires_grad, backward_hooks, metadata  # Training-time state, meaningless for stored weights.
  return _TensorView(storage, storage_offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
  """Unpickles a torch state dict into _TensorViews, and refuses every class a state dict does not contain, so
  that a foreign pickle cannot run code."""

  def __init__(self, file, storages: dict[str, _Storage]):
    super().__init__(file)
    self._storages = storages

  def find_class(self, module: str, name: str):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor_v2
    if module == "torch" and name in _STORAGE_DTYPES:
      return np.dtype(_STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(f"{module}.{name} has no place in a state dict of tensors")

  def persistent_load(self, persistent_id):
    # ("storage", type, key, location, numel) in the zip format; the legacy format appends a view description,
    # None unless the storage is a slice of another, which module state dicts never are.
    kind, dtype, key, _, numel, *view = persistent_id
    if kind != "storage" or not isinstance(dtype, np.dtype) or any(part is not None for part in view):
      raise pickle.UnpicklingError(f"unsupported persistent id {persistent_id!r}")
    return self._storages.setdefault(key, _Storage(dtype, numel))


def _read_zip_format(path: str) -> dict:
  """torch.save since 1.6: <archive>/data.pkl, and each storage's raw bytes in <archive>/data/<key>."""
  with zipfile.ZipFile(path) as archive:
    pickles = [name for name in archive.namelist() if name == "data.pkl" or name.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError(f"expected one data.pkl in the archive, found {len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in archive.namelist():
      byteorder = archive.read(prefix + "byteorder").decode().strip()
    storages = {}
    with archive.open(pickles[0]) as file:
      state = _StateDictUnpickler(file, storages).load()
    for key, storage in storages.items():
      dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
      storage.elements = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype, count=storage.numel)
  return state


def _read_legacy_format(path: str) -> dict:
  """torch.save before 1.6: pickled magic number, protocol version and system info, the pickled object, the pickled
  list of storage keys, then per storage an int64 element count and its raw bytes, in that list's order."""
  storages = {}
  with open(path, "rb") as file:

    def load():
      # Every pickle goes through the restricted unpickler, the header's too: a foreign file must not run code.
      return _StateDictUnpickler(file, storages).load()

    if load() != _LEGACY_MAGIC_NUMBER or load() != _LEGACY_PROTOCOL_VERSION:
      raise ValueError("neither a zip archive nor torch's legacy format")
    byteorder = "<" if load().get("little_endian", True) else ">"
    state = load()
    for key in load():
      (numel,) = struct.unpack(byteorder + "q", file.read(8))
      storage = storages[key]
      if numel != storage.numel:
        raise ValueError(f"storage {key} holds {numel} elements, its tensors expect {storage.numel}")
      dtype = storage.dtype.newbyteorder(byteorder)
      data = file.read(numel * dtype.itemsize)
      if len(data) != numel * dtype.itemsize:
        raise ValueError(f"the file ends inside storage {key}")
      storage.elements = np.frombuffer(data, dtype)
  return state


def _read_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a torch.save'd state dict, by name, as NumPy arrays; ValueError if the file is unreadable."""
  try:
    state = _read_zip_format(path) if zipfile.is_zipfile(path) else _read_legacy_format(path)
    if not isinstance(state, dict) or not all(isinstance(v, _TensorView) for v in state.values()):
      raise ValueError("the file holds something other than a state dict of tensors")
    return {key: view.to_array() for key, view in state.items()}
  # A damaged pickle can raise almost anything (the pickle module's documentation lists AttributeError, EOFError,
  # ImportError and IndexError besides UnpicklingError), so every exception here means "not a readable file".
  except Exception as error:
    raise ValueError(f"{type(error).__name__}: {error}") from error


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
    state_dict = _read_state_dict(path)
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
