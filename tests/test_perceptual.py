"""Specification of the pretrained perceptual networks and metrics: genjax/models/vgg.py, genjax/feature_networks/
(vgg_weights.py, pretrained_files.py), LPIPS in genjax/models/vgg.py, and genjax/metrics/perceptual.py.

Weight files are written here without torch, in both of torch.save's formats, with random arrays under
torchvision's and LPIPS' names and shapes (LPIPS' published file is the legacy format with storages tagged
`cuda:0`, as written here). Agreement with torch on the real weights is experiments/check_perceptual_weights.py's
job, outside the suite.
"""

import hashlib
import os
import pickle
import struct
import urllib.error
import urllib.request
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import errors
from genjax.feature_networks import pretrained_files
from genjax.feature_networks import torch_state_dicts
from genjax.feature_networks import vgg_weights
from genjax.metrics import perceptual
from genjax.models import vgg

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


def _pickle_state_dict(state_dict: dict[str, np.ndarray], legacy: bool, location: str) -> bytes:
  """The pickle torch.save writes for a state dict (protocol 2), storage i holding the i-th tensor: each tensor is
  `_rebuild_tensor_v2(storage, offset, shape, stride, requires_grad, hooks)`, its storage the persistent id
  ("storage", torch.<Type>Storage, key, location, numel), plus a view slot (None) in the legacy format."""
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
    put_string(location)
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


def _torch_save(state_dict: dict[str, np.ndarray], path, legacy: bool = False, location: str = "cpu") -> str:
  """Writes `state_dict` in torch.save's zip layout (torch >= 1.6) or, with `legacy`, its earlier stream layout."""
  state_dict = {name: np.ascontiguousarray(array) for name, array in state_dict.items()}
  data_pkl = _pickle_state_dict(state_dict, legacy, location)
  if legacy:
    with open(path, "wb") as file:
      pickle.dump(0x1950A86A20F9469CFC6C, file, protocol=2)  # torch's magic number
      pickle.dump(1001, file, protocol=2)  # its protocol version
      pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, file, protocol=2)
      file.write(data_pkl)
      pickle.dump([str(key) for key in range(len(state_dict))], file, protocol=2)
      for array in state_dict.values():
        file.write(struct.pack("<q", array.size) + array.astype("<" + array.dtype.str[1:]).tobytes())
  else:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr("archive/data.pkl", data_pkl)
      archive.writestr("archive/byteorder", "little")
      for key, array in enumerate(state_dict.values()):
        archive.writestr(f"archive/data/{key}", array.astype("<" + array.dtype.str[1:]).tobytes())
      archive.writestr("archive/version", "3\n")
  return str(path)


def _random_vgg_state_dict(depth: int, seed: int = 0) -> dict[str, np.ndarray]:
  """torchvision's VGG state dict names and shapes with He-scaled random weights (activations stay of order one
  through 16 layers), and a small stand-in for its classifier, which the loader must ignore."""
  rng = np.random.default_rng(seed)
  state_dict, fan_in = {}, 3
  for (name, index), width in zip(vgg_weights.torch_feature_indices(depth).items(), _widths(depth)):
    kernel = rng.standard_normal((width, fan_in, 3, 3), np.float32) * np.float32(np.sqrt(2 / (9 * fan_in)))
    state_dict[f"features.{index}.weight"] = kernel
    state_dict[f"features.{index}.bias"] = rng.uniform(-0.1, 0.1, width).astype(np.float32)
    fan_in = width
  state_dict["classifier.6.weight"] = rng.standard_normal((10, 4), np.float32)
  return state_dict


def _widths(depth: int) -> list[int]:
  return [width for block in vgg.BLOCKS[depth] for width in block]


def _random_lpips_state_dict(seed: int = 1) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  return {
      f"lin{k}.model.1.weight": rng.uniform(0, 1, (1, channels, 1, 1)).astype(np.float32)
      for k, channels in enumerate(vgg_weights.LPIPS_CHANNELS)
  }


def _sha256(path) -> str:
  return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _published_as(published: pretrained_files.PublishedFile, path) -> pretrained_files.PublishedFile:
  """`published` as if its hash were that of the file at `path` (a test's stand-in for the real file)."""
  return pretrained_files.PublishedFile(published.description, published.url, _sha256(path), published.num_bytes)


@pytest.fixture(scope="module")
def vgg16_state_dict():
  return _random_vgg_state_dict(16)


@pytest.fixture(scope="module")
def vgg16_file(vgg16_state_dict, tmp_path_factory):
  return _torch_save(vgg16_state_dict, tmp_path_factory.mktemp("weights") / "vgg16.pth")


@pytest.fixture(scope="module")
def lpips_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("weights") / "vgg.pth"
  return _torch_save(_random_lpips_state_dict(), path, legacy=True, location="cuda:0")


@pytest.fixture(scope="module")
def lpips_weights(vgg16_file, lpips_file):
  weights = {"vgg": vgg_weights.load_vgg_params(vgg16_file, 16), "linear": vgg_weights.load_lpips_params(lpips_file)}
  return jax.device_put(weights)  # Once, not at every call.


@pytest.fixture(scope="module")
def jitted_lpips():
  from genjax.evaluators import perceptual_scores

  return perceptual_scores._lpips  # The evaluations' compiled LPIPS: one compilation for the tests that share it.


@pytest.fixture
def no_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise urllib.error.URLError("no network in tests")

  monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _images(seed: int, shape=(2, 16, 16, 3)) -> np.ndarray:
  return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def test_torchvision_feature_indices_skip_relus_and_pools():
  assert list(vgg_weights.torch_feature_indices(16).values()) == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
  assert list(vgg_weights.torch_feature_indices(19).values())[-4:] == [28, 30, 32, 34]
  assert vgg.conv_names(19)[-1] == "conv5_4" and len(vgg.conv_names(19)) == 16


@pytest.mark.parametrize("legacy", [False, True], ids=["zip_format", "legacy_format"])
def test_vgg16_loader_maps_every_convolution_and_ignores_the_classifier(vgg16_state_dict, tmp_path, legacy):
  path = _torch_save(vgg16_state_dict, tmp_path / "vgg16.pth", legacy=legacy)
  variables = vgg_weights.load_vgg_params(path, 16)
  assert sorted(variables["params"]) == sorted(vgg.conv_names(16))
  np.testing.assert_array_equal(
      variables["params"]["conv3_3"]["kernel"], vgg16_state_dict["features.14.weight"].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(variables["params"]["conv5_3"]["bias"], vgg16_state_dict["features.28.bias"])


def test_vgg19_loader_reads_all_sixteen_convolutions(tmp_path):
  state_dict = _random_vgg_state_dict(19)
  variables = vgg_weights.load_vgg_params(_torch_save(state_dict, tmp_path / "vgg19.pth"), 19)
  assert variables["params"]["conv5_4"]["kernel"].shape == (3, 3, 512, 512)
  np.testing.assert_array_equal(variables["params"]["conv3_4"]["bias"], state_dict["features.16.bias"])


def test_vgg_taps_are_named_layers_before_and_after_relu(lpips_weights):
  taps = ("conv1_1", "relu1_1", "relu2_2", "conv3_3", "relu5_3")
  images = np.asarray(vgg.imagenet_normalize(jnp.asarray(_images(0)), (0.0, 1.0)))
  features = jax.jit(vgg.VGG(16, taps).apply)(lpips_weights["vgg"], images)
  features = {name: np.asarray(value) for name, value in features.items()}
  assert {name: value.shape for name, value in features.items()} == {
      "conv1_1": (2, 16, 16, 64),
      "relu1_1": (2, 16, 16, 64),
      "relu2_2": (2, 8, 8, 128),
      "conv3_3": (2, 4, 4, 256),
      "relu5_3": (2, 1, 1, 512),
  }
  np.testing.assert_array_equal(features["relu1_1"], np.maximum(features["conv1_1"], 0))
  assert np.min(features["conv3_3"]) < 0 <= np.min(features["relu5_3"])
  # conv1_1 at an interior pixel is the torch kernel's correlation with the 3x3 neighbourhood, plus the bias.
  kernel, bias = lpips_weights["vgg"]["params"]["conv1_1"]["kernel"], lpips_weights["vgg"]["params"]["conv1_1"]["bias"]
  by_hand = np.einsum("hwc,hwcf->f", images[0, 4:7, 9:12], np.asarray(kernel)) + np.asarray(bias)
  np.testing.assert_allclose(features["conv1_1"][0, 5, 10], by_hand, rtol=1e-5, atol=1e-5)


def test_vgg_builds_only_the_layers_up_to_the_deepest_tap():
  shapes = jax.eval_shape(vgg.VGG(19, ("relu2_1",)).init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  assert sorted(shapes["params"]) == ["conv1_1", "conv1_2", "conv2_1"]
  with pytest.raises(ValueError, match="taps must be some of"):
    vgg.VGG(16, ("conv5_4",)).init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))


def test_imagenet_normalize_centres_imagenet_mean_and_repeats_grey():
  mean_colour = np.broadcast_to(np.array(vgg.IMAGENET_MEAN, np.float32) * 2 - 1, (1, 2, 2, 3))
  np.testing.assert_allclose(vgg.imagenet_normalize(jnp.asarray(mean_colour), (-1.0, 1.0)), 0, atol=1e-6)
  grey = vgg.imagenet_normalize(jnp.full((1, 2, 2, 1), 255.0), (0.0, 255.0))
  np.testing.assert_allclose(grey[0, 0, 0], (1 - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD), rtol=1e-6)


def test_lpips_of_identical_images_is_zero_and_the_distance_is_symmetric(lpips_weights, jitted_lpips):
  first, second = _images(1), _images(2)
  distance = lambda a, b: np.asarray(jitted_lpips(lpips_weights, a, b, (0.0, 1.0)))
  np.testing.assert_allclose(distance(first, first), 0.0, atol=1e-6)
  forward = distance(first, second)
  np.testing.assert_allclose(distance(second, first), forward, rtol=1e-6)
  assert forward.shape == (2,) and np.all(forward > 0)


def test_lpips_grows_with_the_size_of_a_perturbation(lpips_weights, jitted_lpips):
  clean = _images(3)
  noise = np.random.default_rng(4).normal(0, 1, clean.shape).astype(np.float32)
  small, large = (
      np.asarray(jitted_lpips(lpips_weights, clean, clean + scale * noise, (0.0, 1.0))) for scale in (0.02, 0.2)
  )
  assert np.all(large > small)


def test_gram_matrix_of_hand_features():
  # Two positions, two channels: F = [[1, 2], [3, 4]]; G = F^T F / 2.
  features = jnp.array([[[[1.0, 2.0]], [[3.0, 4.0]]]])
  np.testing.assert_allclose(perceptual.gram_matrix(features)[0], [[5.0, 7.0], [7.0, 10.0]])
  # Constant features: every entry is the product of the constants, whatever the image's size.
  constant = jnp.broadcast_to(jnp.array([2.0, -1.0, 0.5]), (1, 5, 7, 3))
  np.testing.assert_allclose(perceptual.gram_matrix(constant)[0], np.outer([2.0, -1.0, 0.5], [2.0, -1.0, 0.5]))


def test_lpips_file_with_cuda_storages_in_the_legacy_format_loads(lpips_file):
  linear = vgg_weights.load_lpips_params(lpips_file)
  expected = _random_lpips_state_dict()
  assert [array.shape for array in linear.values()] == [(64,), (128,), (256,), (512,), (512,)]
  np.testing.assert_array_equal(linear["lin3"], expected["lin3.model.1.weight"].reshape(-1))


def test_missing_tensor_is_named_in_a_user_error(tmp_path):
  state_dict = _random_lpips_state_dict()
  del state_dict["lin3.model.1.weight"]
  state_dict["lin2.model.1.weight"] = np.zeros((1, 64, 1, 1), np.float32)
  path = _torch_save(state_dict, tmp_path / "vgg.pth", legacy=True, location="cuda:0")
  with pytest.raises(errors.UserError) as caught:
    vgg_weights.load_lpips_params(path)
  message = str(caught.value)
  assert "missing (1): lin3.model.1.weight" in message
  assert "lin2.model.1.weight (1, 64, 1, 1) (the model needs (1, 256, 1, 1))" in message
  assert vgg_weights.LPIPS_VGG_FILE.url in message


@pytest.mark.parametrize("legacy", [False, True], ids=["zip_format", "legacy_format"])
def test_truncated_file_raises_user_error(vgg16_state_dict, tmp_path, legacy):
  path = _torch_save(vgg16_state_dict, tmp_path / "vgg16.pth", legacy=legacy)
  with open(path, "r+b") as file:
    file.truncate(os.path.getsize(path) // 2)
  with pytest.raises(errors.UserError, match="damaged, truncated") as caught:
    vgg_weights.load_vgg_params(path, 16)
  assert vgg_weights.VGG_FILES[16].url in str(caught.value)


def test_wrong_hash_is_refused_before_anything_is_unpickled(tmp_path, monkeypatch, no_network):
  path = tmp_path / "vgg16-397923af.pth"
  path.write_bytes(pickle.PROTO + bytes([2]) + pickle.GLOBAL + b"os\nsystem\n" + b"X\x04\x00\x00\x00exit\x85R.")
  unpickled = []
  monkeypatch.setattr(torch_state_dicts, "read", lambda path: unpickled.append(path))
  with pytest.raises(errors.UserError, match=f"expected {vgg_weights.VGG_FILES[16].sha256}") as caught:
    vgg_weights.vgg_variables(16, str(path), cache_dir=str(tmp_path), option_name="--vgg_weights")
  assert "--vgg_weights" in str(caught.value) and vgg_weights.VGG_FILES[16].url in str(caught.value)
  assert unpickled == []


def test_missing_weights_offline_say_where_to_get_and_put_the_file(tmp_path, no_network):
  cache = tmp_path / "cache"
  with pytest.raises(errors.UserError, match="Could not download") as caught:
    vgg_weights.vgg_variables(19, cache_dir=str(cache), option_name="--vgg_weights")
  message = str(caught.value)
  assert vgg_weights.VGG_FILES[19].url in message
  assert str(cache / "vgg19-dcbb9e9d.pth") in message and "--vgg_weights" in message
  assert os.listdir(cache) == []
  with pytest.raises(errors.UserError, match="are not at"):
    vgg_weights.lpips_weights(cache_dir=str(cache), download=False)


def test_verified_cached_copy_is_used_without_network(lpips_file, tmp_path, no_network):
  published = _published_as(vgg_weights.LPIPS_VGG_FILE, lpips_file)
  cached = tmp_path / published.filename
  cached.write_bytes(open(lpips_file, "rb").read())
  assert pretrained_files.verified_copy(published, cache_dir=str(tmp_path), download=False) == str(cached)
  cached.write_bytes(open(lpips_file, "rb").read()[:100])
  with pytest.raises(errors.UserError, match="Delete it"):
    pretrained_files.verified_copy(published, cache_dir=str(tmp_path))


def test_evaluations_report_lpips_only_with_cached_weights_and_say_why_not(
    lpips_weights, jitted_lpips, tmp_path, monkeypatch
):
  from genjax.evaluators import perceptual_scores

  references = list(_images(5, (2, 16, 16, 3)))
  images = [np.clip(image + 0.1, 0, 1) for image in references]
  without = perceptual_scores.PerceptualScores((0.0, 1.0), cache_dir=str(tmp_path))
  assert set(without.scores(references, images)) == {"swd"}
  assert without.protocol["lpips"].startswith("not computed:")
  assert vgg_weights.LPIPS_VGG_FILE.url in without.protocol["lpips"]
  assert str(tmp_path / "vgg.pth") in without.protocol["lpips"]  # where to put it

  monkeypatch.setattr(vgg_weights, "lpips_weights", lambda **kwargs: lpips_weights)
  with_weights = perceptual_scores.PerceptualScores((0.0, 1.0))
  scores = with_weights.scores(references, images)
  expected = jitted_lpips(lpips_weights, np.stack(references), np.stack(images), (0.0, 1.0))
  assert scores["lpips"] == pytest.approx(float(np.mean(expected)), rel=1e-5)
  assert "lpips" not in with_weights.scores(references, images, paired=False)
