"""Specification of configs/ and genjax.config_lib: every config loads, overrides apply, mistakes are refused."""

import glob
import json
import os

import pytest

from conftest import REPO_ROOT, load_config
from genjax import config_lib
from genjax import errors

CONFIG_NAMES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(REPO_ROOT, "configs", "*.py"))
    if not os.path.basename(p).startswith("_")
)
# Every config but the 2-D toy one trains on images: offline with :runlocal, a full TFDS dataset otherwise.
IMAGE_CONFIG_NAMES = [name for name in CONFIG_NAMES if name != "toy2d"]
GAN_IMAGE_CONFIG_NAMES = ["gan", "wgan", "wgan_gp"]


@pytest.mark.parametrize("name", IMAGE_CONFIG_NAMES)
def test_every_config_loads_offline_with_runlocal(name):
  config = load_config(name, "runlocal")
  # The datasets bundled with genjax, or the translation tasks made from them.
  assert config.data.name in ("mnist5k", "photos") or config.data.name.startswith("known_map:")
  for key in ("seed", "family"):
    assert key in config
  for section, key in [("data", "name"), ("train", "total_steps"), ("train", "batch_size"), ("optim", "lr")]:
    assert key in config[section]


@pytest.mark.parametrize("name", IMAGE_CONFIG_NAMES)
def test_every_config_defaults_to_a_full_tfds_dataset(name):
  assert load_config(name, "").data.name not in ("mnist5k", "photos")


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_docstring_carries_its_commands(name):
  with open(os.path.join(REPO_ROOT, "configs", f"{name}.py")) as f:
    source = f.read()
  assert f"python experiments/train.py --config=configs/{name}.py:" in source


@pytest.mark.parametrize("name", GAN_IMAGE_CONFIG_NAMES)
def test_gan_configs_have_a_cifar10_variant_at_32x32(name):
  config = load_config(name, "cifar10")
  assert config.data.name == "cifar10"
  assert config.model.g_base_size * 2 ** len(config.model.g_channels) == 32


def test_wgan_gp_cifar10_variant_has_the_papers_resnet_and_hyperparameters():
  config = load_config("wgan_gp", "cifar10")
  assert config.model.architecture == "resnet" and config.model.d_normalization == "none"
  assert (config.optim.name, config.optim.lr, config.optim.b1, config.optim.b2) == ("adam", 1e-4, 0.0, 0.9)
  assert (config.gan.n_critic, config.gan.penalty, config.gan.penalty_weight) == (5, "wgan_gp", 10.0)
  assert config.train.batch_size == 64


def test_runlocal_and_cifar10_together_are_refused():
  with pytest.raises(errors.UserError, match="runlocal and cifar10 exclude each other"):
    load_config("gan", "runlocal,cifar10")


@pytest.mark.parametrize(
    "arg, loss, penalty, n_critic, weight_clip",
    [
        ("dataset=grid,loss=wgan_gp", "wasserstein", "wgan_gp", 5, 0.0),
        ("dataset=ring,loss=wgan", "wasserstein", "none", 5, 0.01),
        ("dataset=ring,loss=hinge", "hinge", "none", 1, 0.0),
    ],
)
def test_toy2d_arguments_choose_the_dataset_and_the_loss(arg, loss, penalty, n_critic, weight_clip):
  config = load_config("toy2d", arg)
  assert config.data.name == arg.split(",")[0].split("=")[1]
  assert (config.gan.loss, config.gan.penalty, config.gan.n_critic, config.gan.weight_clip) == (
      loss,
      penalty,
      n_critic,
      weight_clip,
  )


@pytest.mark.parametrize(
    "arg, message", [("dataset=spiral", "dataset='spiral' is not one of grid, ring"), ("loss=gp", "loss='gp'")]
)
def test_toy2d_refuses_unknown_datasets_and_losses(arg, message):
  with pytest.raises(errors.UserError, match=message):
    load_config("toy2d", arg)


def test_override_applies_and_mistyped_key_is_refused():
  config = load_config("vae")
  config.train.total_steps = 7
  assert config.train.total_steps == 7
  with pytest.raises(AttributeError):
    config.train.total_stepz = 7


def test_parse_arg_reads_flags_and_typed_values():
  options = config_lib.parse_arg("runlocal,size=32,name=ring", runlocal=False, size=0, name="grid")
  assert (options.runlocal, options.size, options.name) == (True, 32, "ring")
  assert config_lib.parse_arg(None, runlocal=False).runlocal is False


@pytest.mark.parametrize(
    "arg, message",
    [
        ("runlocl", "Unknown config argument 'runlocl'.*accepts: runlocal"),
        ("runlocal=maybe", "is not a boolean"),
        ("size=big", "is not a valid int"),
        ("size", "needs a value"),
    ],
)
def test_parse_arg_refuses_mistakes(arg, message):
  with pytest.raises(errors.UserError, match=message):
    config_lib.parse_arg(arg, runlocal=False, size=0)


def test_overrides_of_a_saved_config_convert_to_the_type_they_replace_and_refuse_unknown_keys():
  saved = config_lib.from_json(json.loads(json.dumps(load_config("gan").to_dict())))  # As read from config.json.
  config = config_lib.override(
      saved, ["--config.train.total_steps=9", "--config.model.g_channels=(16, 8)", "--config.data.data_dir=/data"]
  )
  assert (config.train.total_steps, config.model.g_channels, config.data.data_dir) == (9, (16, 8), "/data")
  with pytest.raises(errors.UserError, match='total_stepz.*Did you mean "total_steps"'):
    config_lib.override(saved, ["--config.train.total_stepz=9"])
  with pytest.raises(errors.UserError, match="trian"):
    config_lib.override(saved, ["--config.trian.total_steps=9"])
  with pytest.raises(errors.UserError, match="total_steps"):
    config_lib.override(saved, ["--config.train.total_steps=many"])


def test_a_saved_config_reads_back_as_the_config_that_was_saved():
  for name, arg in [("gan", "runlocal"), ("toy2d", "dataset=ring,loss=hinge"), ("vae", "")]:
    config = load_config(name, arg)
    assert config_lib.from_json(json.loads(json.dumps(config.to_dict()))).to_dict() == config.to_dict()


# Keys that configs gained after tests/data/resolved_configs.json was written: the evaluation list, the eval options
# that every config now declares (the same schema for every config), the choice of input path and the compute dtype.
ADDED_KEYS = {
    "sharding.rules",
    "sharding.fsdp_axis",
    "sharding.min_fsdp_size",
    "model.dtype",
    "data.on_device",
    "data.channels",
    "data.image_key",
    "data.patch_size",
    "data.image_size",
    "data.folder_labels",
    "data.reverse_pairs",
    "data.on_device_max_bytes",
    "data.exclude_classes",
    "data.real_per_class",
    "data.synthetic.workdir",
    "data.synthetic.fraction",
    "data.synthetic.labels",
    "evals",
    "eval.grids.num_images",
    "eval.mode_coverage.num_samples",
    "eval.sample_quality.classifier_workdir",
    "eval.sample_quality.num_images",
    "eval.sample_quality.feature_network",
    "eval.sample_quality.inception_weights",
    "eval.sample_quality.real_floor",
    "eval.likelihood.iwae_samples",
    "eval.likelihood.num_images",
    "eval.anomaly.iwae_samples",
    "eval.anomaly.num_images",
    "eval.restoration.baselines",
    "gan.penalty_every",
    "gan.ema_half_life_images",
}


# Values changed on purpose since then: worker processes by default where there are spare cores.
CHANGED_VALUES = {"data.num_workers": -1}
# Keys moved on purpose since then: each evaluation's options into its own section of `eval`.
MOVED_KEYS = {
    "eval.classifier_workdir": "eval.sample_quality.classifier_workdir",
    "eval.num_samples": "eval.mode_coverage.num_samples",
    "eval.num_grid_images": "eval.grids.num_images",
    "eval.num_quality_images": "eval.sample_quality.num_images",
}


def _flatten(tree, prefix=""):
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


with open(os.path.join(REPO_ROOT, "tests", "data", "resolved_configs.json")) as _f:
  RESOLVED_BEFORE = json.load(_f)


@pytest.mark.parametrize("variant", sorted(RESOLVED_BEFORE))
def test_every_config_variant_resolves_to_the_values_it_had(variant):
  name, arg = variant.split(":")
  before = {MOVED_KEYS.get(key, key): value for key, value in _flatten(RESOLVED_BEFORE[variant]).items()}
  before |= CHANGED_VALUES
  now = _flatten(json.loads(json.dumps(load_config(name, arg).to_dict())))
  assert {key: now.get(key) for key in before} == before
  assert set(now) - set(before) <= ADDED_KEYS


def test_no_pair_of_config_files_repeats_six_lines():
  windows = {}
  for name in CONFIG_NAMES:
    with open(os.path.join(REPO_ROOT, "configs", f"{name}.py")) as f:
      lines = [line.strip() for line in f if line.strip() and not line.strip().startswith(("#", '"""'))]
    for start in range(len(lines) - 5):
      windows.setdefault(tuple(lines[start : start + 6]), set()).add(name)
  repeated = {window: names for window, names in windows.items() if len(names) > 1}
  assert not repeated, repeated


def test_a_config_saved_before_newer_options_reads_back_with_their_defaults():
  saved = load_config("vae", "runlocal").to_dict()
  del saved["eval"]["likelihood"]["num_images"], saved["eval"]["restoration"], saved["data"]["reverse_pairs"]
  config = config_lib.with_added_keys(config_lib.from_json(saved))
  assert config.eval.likelihood.num_images == 0 and config.eval.restoration.baselines is True
  assert config.data.reverse_pairs is False
  saved = load_config("ddpm", "runlocal").to_dict()
  del saved["diffusion"]["vlb_weight"]
  assert config_lib.with_added_keys(config_lib.from_json(saved)).diffusion.vlb_weight == 0.001
