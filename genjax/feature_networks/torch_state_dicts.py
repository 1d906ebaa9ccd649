"""Reading a state dict that torch.save wrote, without torch: the tensors by name as NumPy arrays, from either of
torch.save's formats (the legacy one of torch < 1.6 and the zip one of later versions).

Every pickle goes through a restricted unpickler that knows only what a state dict of tensors holds (an ordered
dict, tensor views, storage types) and refuses every other class, so that a foreign or malicious file cannot run
code. Callers check a file's SHA-256 before reading it; mapping names onto a flax model is theirs.
"""

import collections
import dataclasses
import pickle
import struct
import zipfile

import numpy as np

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


def read(path: str) -> dict[str, np.ndarray]:
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
