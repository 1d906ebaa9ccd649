"""Specification of configs/ and genjax.config_lib: every config loads, overrides apply, mistakes are refused."""

import glob
import os

import pytest

from conftest import REPO_ROOT, load_config
from genjax import config_lib
from genjax import errors

CONFIG_NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO_ROOT, "configs", "*.py")))


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_loads_offline_with_runlocal(name):
  config = load_config(name, "runlocal")
  assert config.data.name == "mnist5k"
  for key in ("seed", "family"):
    assert key in config
  for section, key in [("data", "name"), ("train", "total_steps"), ("train", "batch_size"), ("optim", "lr")]:
    assert key in config[section]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_defaults_to_a_full_tfds_dataset(name):
  assert load_config(name, "").data.name != "mnist5k"


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_docstring_carries_its_commands(name):
  with open(os.path.join(REPO_ROOT, "configs", f"{name}.py")) as f:
    source = f.read()
  assert f"python experiments/train.py --config=configs/{name}.py:runlocal" in source


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
