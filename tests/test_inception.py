"""Specification of the FID Inception-v3 (genjax/models/inception.py) and its weights (genjax/metrics/
inception_weights.py).

The weights file is written here, without torch, in both of torch.save's layouts, filled with random arrays of
pytorch-fid's names and shapes: the loader must map every tensor, refuse damaged or foreign files with a UserError
that says how to get the real one, and find a cached copy without the network. Agreement with torch itself was
checked outside the suite (no torch dependency): features equal to 1.2e-7 for random weights.
"""

import hashlib
import io
import os
import pickle
import struct
import urllib.error
import urllib.request
import zipfile

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import errors
from genjax import feature_networks
from genjax.feature_networks import inception_weights
from genjax.models import inception

# Parameter and statistics elements of pytorch-fid's FIDInceptionV3 without its fc layer and BatchNorm counters,
# counted on the torch network: 94 convolutions, each followed by a BatchNorm.
NUM_CONVOLUTIONS = 94
NUM_VARIABLE_ELEMENTS = 21_820_000

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


def _pickle_state_dict(state_dict: dict[str, np.ndarray], legacy: bool) -> bytes:
  """The pickle torch.save writes for a state dict (protocol 2), storage i holding the i-th tensor.

  Each tensor is `_rebuild_tensor_v2(storage, offset, shape, stride, requires_grad, hooks)`, its storage a
  persistent id ("storage", torch.<Type>Storage, key, location, numel), plus a view slot (None) in the legacy format.
  """
  out = bytearray(pickle.PROTO + bytes([2]))

  def put_global(module: str, name: str):
    out.extend(pickle.GLOBAL + f"{module}\n{name}\n".encode())

  def put_string(text: str):
    out.extend(pickle.BINUNICODE + struct.pack("<I", len(text.encode())) + text.encode())

  def put_ints(values):
    out.extend(pickle.MARK)
    for value in values:
      out.extend(pickle.BININT + struct.pack("<i", value))
    out.extend(pickle.TUPLE)

  put_global("collections", "OrderedDict")
  out.extend(pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.MARK)
  for key, (name, array) in enumerate(state_dict.items()):
    put_string(name)
    put_global("torch._utils", "_rebuild_tensor_v2")
    out.extend(pickle.MARK + pickle.MARK)
    put_string("storage")
    put_global("torch", _STORAGE_NAMES[array.dtype])
    put_string(str(key))
    put_string("cpu")
    out.extend(pickle.BININT + struct.pack("<i", array.size))
    if legacy:
      out.extend(pickle.NONE)
    out.extend(pickle.TUPLE + pickle.BINPERSID + pickle.BININT + struct.pack("<i", 0))
    put_ints(array.shape)
    put_ints(np.array(array.strides, np.int64) // array.itemsize)
    out.extend(pickle.NEWFALSE)
    put_global("collections", "OrderedDict")
    out.extend(pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.TUPLE + pickle.REDUCE)
  out.extend(pickle.SETITEMS + pickle.STOP)
  return bytes(out)


def _torch_save(state_dict: dict[str, np.ndarray], path: str, legacy: bool = False) -> str:
  """Writes `state_dict` in torch.save's zip layout (torch >= 1.6) or, with `legacy`, its earlier stream layout."""
  arrays = [np.ascontiguousarray(array) for array in state_dict.values()]
  data_pkl = _pickle_state_dict(state_dict, legacy)
  if legacy:
    with open(path, "wb") as file:
      pickle.dump(0x1950A86A20F9469CFC6C, file, protocol=2)  # torch's magic number
      pickle.dump(1001, file, protocol=2)  # its protocol version
      pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, file, protocol=2)
      file.write(data_pkl)
      pickle.dump([str(key) for key in range(len(arrays))], file, protocol=2)
      for array in arrays:
        file.write(struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes())
  else:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr("archive/data.pkl", data_pkl)
      archive.writestr("archive/byteorder", "little")
      for key, array in enumerate(arrays):
        archive.writestr(f"archive/data/{key}", array.astype(array.dtype.newbyteorder("<")).tobytes())
      archive.writestr("archive/version", "3\n")
  return path


def _random_fid_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """pytorch-fid's state dict names and shapes, in torch's layouts, with random He-scaled weights and BatchNorm
  statistics near the identity (so that activations stay finite through 94 layers)."""
  images = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
  shapes = jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0), images)
  rng = np.random.default_rng(seed)
  state_dict = {}
  for path, leaf in flax.traverse_util.flatten_dict(shapes).items():
    module = ".".join(path[1:-1])
    if path[-1] == "kernel":
      height, width, fan_in, features = leaf.shape
      kernel = rng.normal(0, np.sqrt(2 / (height * width * fan_in)), (features, fan_in, height, width))
      state_dict[f"{module}.weight"] = kernel.astype(np.float32)
    elif path[-1] == "scale":
      state_dict[f"{module}.weight"] = rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    elif path[-1] == "bias":
      state_dict[f"{module}.bias"] = rng.uniform(-0.2, 0.2, leaf.shape).astype(np.float32)
    elif path[-1] == "mean":
      state_dict[f"{module}.running_mean"] = rng.uniform(-0.2, 0.2, leaf.shape).astype(np.float32)
      state_dict[f"{module}.num_batches_tracked"] = np.array(1000, np.int64)
    else:
      state_dict[f"{module}.running_var"] = rng.uniform(0.5, 2.0, leaf.shape).astype(np.float32)
  # The TF graph's 1008-way classifier, which the file carries and pool_3 features do not use.
  state_dict["fc.weight"] = rng.normal(0, 0.01, (1008, 2048)).astype(np.float32)
  state_dict["fc.bias"] = np.zeros(1008, np.float32)
  return state_dict


def _sha256(path) -> str:
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def state_dict():
  return _random_fid_state_dict()


@pytest.fixture(scope="module")
def weights_file(state_dict, tmp_path_factory):
  return _torch_save(state_dict, str(tmp_path_factory.mktemp("weights") / "random_fid_inception.pth"))


@pytest.fixture
def no_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise urllib.error.URLError("no network in tests")

  monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _assert_says_how_to_obtain(error: errors.UserError):
  assert inception_weights.FID_WEIGHTS_URL in str(error)
  assert "weights_path" in str(error)


def test_state_dict_has_pytorch_fid_names_and_shapes(state_dict):
  # Names and shapes of torchvision's Inception3 as pytorch-fid patches it, checked against the torch network.
  assert state_dict["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  assert state_dict["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
  assert state_dict["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
  assert state_dict["Mixed_7a.branch3x3_2.conv.weight"].shape == (320, 192, 3, 3)
  assert state_dict["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
  assert state_dict["Mixed_7c.branch_pool.bn.running_var"].shape == (192,)
  assert sum(name.endswith("conv.weight") for name in state_dict) == NUM_CONVOLUTIONS
  used = [array.size for name, array in state_dict.items() if not name.startswith("fc.") and array.ndim]
  assert sum(used) == NUM_VARIABLE_ELEMENTS


@pytest.mark.parametrize("legacy", [False, True], ids=["zip_format", "legacy_format"])
def test_loader_maps_every_tensor_onto_the_flax_model(state_dict, tmp_path, legacy):
  path = _torch_save(state_dict, str(tmp_path / "weights.pth"), legacy=legacy)
  variables = inception_weights.load_fid_inception_params(path)

  images = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
  expected = flax.traverse_util.flatten_dict(jax.eval_shape(inception.FIDInceptionV3().init, jax.random.key(0), images))
  loaded = flax.traverse_util.flatten_dict(variables)
  assert {path: array.shape for path, array in loaded.items()} == {path: leaf.shape for path, leaf in expected.items()}
  assert all(array.dtype == np.float32 for array in loaded.values())
  # OIHW -> HWIO, and BatchNorm's four tensors into params and batch_stats.
  np.testing.assert_array_equal(
      variables["params"]["Mixed_6e"]["branch7x7dbl_5"]["conv"]["kernel"],
      state_dict["Mixed_6e.branch7x7dbl_5.conv.weight"].transpose(2, 3, 1, 0),
  )
  bn_params = variables["params"]["Mixed_7c"]["branch_pool"]["bn"]
  bn_stats = variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]
  np.testing.assert_array_equal(bn_params["scale"], state_dict["Mixed_7c.branch_pool.bn.weight"])
  np.testing.assert_array_equal(bn_params["bias"], state_dict["Mixed_7c.branch_pool.bn.bias"])
  np.testing.assert_array_equal(bn_stats["mean"], state_dict["Mixed_7c.branch_pool.bn.running_mean"])
  np.testing.assert_array_equal(bn_stats["var"], state_dict["Mixed_7c.branch_pool.bn.running_var"])


def test_features_are_finite_2048_vectors_that_do_not_depend_on_batch_mates(weights_file):
  variables = inception_weights.load_fid_inception_params(weights_file)
  features = jax.jit(inception.FIDInceptionV3().apply)
  rng = np.random.default_rng(1)
  first, second = (jnp.asarray(rng.uniform(-1, 1, (2, 299, 299, 3)), jnp.float32) for _ in range(2))
  first_features, second_features = features(variables, first), features(variables, second)
  for batch_features in (first_features, second_features):
    assert batch_features.shape == (2, inception.FEATURE_SIZE)
    assert np.all(np.isfinite(batch_features))
    assert np.all(batch_features >= 0)  # averages of ReLU outputs
    assert np.std(batch_features) > 0
  # Inference-mode BatchNorm: an image's features are its own, whatever it is batched with.
  mixed = features(variables, jnp.stack([first[0], second[1]]))
  np.testing.assert_allclose(mixed, np.stack([first_features[0], second_features[1]]), rtol=1e-5, atol=1e-6)


def test_model_refuses_images_that_were_not_preprocessed():
  with pytest.raises(ValueError, match="fid_preprocess"):
    inception.FIDInceptionV3().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))


@pytest.mark.parametrize("pixel_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_preprocess_maps_grey_28x28_images_to_299x299_rgb_in_minus_one_one(pixel_range):
  low, high = pixel_range
  images = np.random.default_rng(2).uniform(low, high, (3, 28, 28, 1)).astype(np.float32)
  images[0] = low  # a black image and a white one pin the two ends of the range
  images[1] = high
  processed = np.asarray(inception.fid_preprocess(jnp.asarray(images), pixel_range))
  assert processed.shape == (3, 299, 299, 3)
  assert processed.dtype == np.float32
  assert processed.min() >= -1.0 and processed.max() <= 1.0
  np.testing.assert_allclose(processed[0], -1.0, atol=1e-6)
  np.testing.assert_allclose(processed[1], 1.0, atol=1e-6)
  np.testing.assert_array_equal(processed[..., 0], processed[..., 1])  # grey repeated to RGB
  np.testing.assert_array_equal(processed[..., 0], processed[..., 2])


def test_preprocess_only_rescales_images_already_at_299():
  images = np.random.default_rng(3).integers(0, 256, (1, 299, 299, 3)).astype(np.float32)
  processed = inception.fid_preprocess(jnp.asarray(images), (0.0, 255.0))
  np.testing.assert_allclose(processed, images / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip_format", "legacy_format"])
def test_truncated_file_raises_user_error(state_dict, tmp_path, legacy):
  path = _torch_save(state_dict, str(tmp_path / "weights.pth"), legacy=legacy)
  with open(path, "r+b") as file:
    file.truncate(os.path.getsize(path) // 2)
  with pytest.raises(errors.UserError, match="damaged, truncated") as caught:
    inception_weights.load_fid_inception_params(path)
  _assert_says_how_to_obtain(caught.value)


def test_file_of_another_kind_raises_user_error(tmp_path):
  path = tmp_path / "weights.pth"
  path.write_bytes(b"<html>404 Not Found</html>")
  with pytest.raises(errors.UserError, match="damaged, truncated") as caught:
    inception_weights.load_fid_inception_params(str(path))
  _assert_says_how_to_obtain(caught.value)


def test_pickle_naming_other_classes_is_refused_without_running_them(tmp_path):
  path = tmp_path / "weights.pth"
  path.write_bytes(pickle.PROTO + bytes([2]) + pickle.GLOBAL + b"os\nsystem\n" + b"X\x04\x00\x00\x00exit\x85R.")
  with pytest.raises(errors.UserError, match="os.system"):
    inception_weights.load_fid_inception_params(str(path))


def test_names_and_shapes_that_do_not_match_the_model_raise_user_error(state_dict, tmp_path):
  foreign = dict(state_dict)
  del foreign["Mixed_5b.branch1x1.bn.running_var"]
  foreign["Mixed_6a.branch3x3.conv.weight"] = np.zeros((384, 288, 5, 5), np.float32)
  foreign["AuxLogits.conv0.conv.weight"] = np.zeros((128, 768, 1, 1), np.float32)
  path = _torch_save(foreign, str(tmp_path / "torchvision_like.pth"))
  with pytest.raises(errors.UserError) as caught:
    inception_weights.load_fid_inception_params(path)
  message = str(caught.value)
  assert "unexpected tensors (1): AuxLogits.conv0.conv.weight" in message
  assert "Mixed_6a.branch3x3.conv.weight (384, 288, 5, 5) (the model needs (384, 288, 3, 3))" in message
  assert "missing (1): Mixed_5b.branch1x1.bn.running_var" in message
  _assert_says_how_to_obtain(caught.value)


def test_missing_file_raises_user_error(tmp_path):
  missing = str(tmp_path / "pt_inception.pth")
  with pytest.raises(errors.UserError, match="does not exist") as caught:
    inception_weights.fid_inception_weights(weights_path=missing, cache_dir=str(tmp_path))
  _assert_says_how_to_obtain(caught.value)
  with pytest.raises(errors.UserError, match="does not exist") as caught:
    inception_weights.load_fid_inception_params(missing)
  _assert_says_how_to_obtain(caught.value)


def test_user_file_with_the_wrong_checksum_raises_user_error(weights_file, tmp_path, no_network):
  with pytest.raises(errors.UserError, match=f"expected {inception_weights.FID_WEIGHTS_SHA256}") as caught:
    inception_weights.fid_inception_weights(weights_path=weights_file, cache_dir=str(tmp_path))
  _assert_says_how_to_obtain(caught.value)


def test_user_file_with_the_right_checksum_is_used_as_is(weights_file, tmp_path, no_network):
  path = inception_weights.fid_inception_weights(
      weights_path=weights_file, cache_dir=str(tmp_path), expected_sha256=_sha256(weights_file)
  )
  assert path == weights_file


def test_cached_copy_is_used_without_network(weights_file, tmp_path, no_network):
  cached = tmp_path / inception_weights.FID_WEIGHTS_FILENAME
  cached.write_bytes(open(weights_file, "rb").read())
  path = inception_weights.fid_inception_weights(cache_dir=str(tmp_path), expected_sha256=_sha256(weights_file))
  assert path == str(cached)


def test_damaged_cached_copy_raises_user_error(weights_file, tmp_path, no_network):
  (tmp_path / inception_weights.FID_WEIGHTS_FILENAME).write_bytes(open(weights_file, "rb").read()[:1000])
  with pytest.raises(errors.UserError, match="Delete it") as caught:
    inception_weights.fid_inception_weights(cache_dir=str(tmp_path), expected_sha256=_sha256(weights_file))
  _assert_says_how_to_obtain(caught.value)


def test_offline_without_a_file_raises_user_error_and_leaves_no_partial_file(tmp_path, no_network):
  with pytest.raises(errors.UserError, match="Could not download") as caught:
    inception_weights.fid_inception_weights(cache_dir=str(tmp_path / "cache"), option_name="--config.eval.weights_path")
  assert "--config.eval.weights_path" in str(caught.value)
  assert inception_weights.FID_WEIGHTS_URL in str(caught.value)
  assert os.listdir(tmp_path / "cache") == []


def test_download_is_verified_then_cached(weights_file, tmp_path, monkeypatch):
  requested = []

  def serve(url, timeout):
    requested.append(url)
    return io.BytesIO(open(weights_file, "rb").read())

  monkeypatch.setattr(urllib.request, "urlopen", serve)
  digest = _sha256(weights_file)
  path = inception_weights.fid_inception_weights(cache_dir=str(tmp_path), expected_sha256=digest)
  assert requested == [inception_weights.FID_WEIGHTS_URL]
  assert path == str(tmp_path / inception_weights.FID_WEIGHTS_FILENAME)
  assert _sha256(path) == digest
  assert inception_weights.fid_inception_weights(cache_dir=str(tmp_path), expected_sha256=digest) == path
  assert len(requested) == 1


def test_download_with_the_wrong_checksum_raises_user_error_and_keeps_nothing(weights_file, tmp_path, monkeypatch):
  monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"truncated"))
  with pytest.raises(errors.UserError, match="has SHA-256") as caught:
    inception_weights.fid_inception_weights(cache_dir=str(tmp_path))
  _assert_says_how_to_obtain(caught.value)
  assert os.listdir(tmp_path) == []


def test_the_inception_feature_network_takes_images_of_any_size_and_range(weights_file, monkeypatch):
  monkeypatch.setattr(inception_weights, "fid_inception_weights", lambda path, option_name: weights_file)
  network = feature_networks.inception_network(None)
  assert network.image_shape is None and network.weights_sha256 == inception_weights.FID_WEIGHTS_SHA256
  digits = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
  features = jax.jit(network.features, static_argnums=2)(network.params, digits, (-1.0, 1.0))
  assert features.shape == (2, inception.FEATURE_SIZE) and np.all(np.isfinite(features))
