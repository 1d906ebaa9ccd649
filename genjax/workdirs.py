"""What a run's workdir holds, read without building anything: its resolved config (config.json) and the spec of the
data it trained on (data_spec.json).

The data spec is saved with the run so that tools (restore.py, sample.py, encode.py, a generator used as training
data) can rebuild the run's model without opening, let alone downloading, its dataset. Runs saved before the spec
was written get it from the dataset's metadata (`sources.example_spec`), which needs the data's metadata at hand.

It knows files and JSON, not models: building an experiment from what it reads belongs to `genjax.runs`.
"""

import json

import ml_collections
from etils import epath

from genjax import config_lib
from genjax import errors
from genjax.data import sources

CONFIG_FILE = "config.json"
DATA_SPEC_FILE = "data_spec.json"


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's resolved config, with the keys that later genjax versions added (see `config_lib.with_added_keys`).

  Raises `UserError` for a workdir that is not a genjax run.
  """
  path = epath.Path(workdir) / CONFIG_FILE
  if not path.exists():
    raise errors.UserError(
        f"{workdir!r} is not a genjax run: it has no {CONFIG_FILE}. Pass the --workdir that experiments/train.py "
        "wrote."
    )
  return config_lib.with_added_keys(config_lib.from_json(json.loads(path.read_text())))


def read_data_spec(workdir: str, config: ml_collections.ConfigDict) -> sources.ExampleSpec:
  """The spec of the data the run trained on: the saved one, or (runs saved before it was) the one that the
  dataset's metadata gives for `config.data`."""
  path = epath.Path(workdir) / DATA_SPEC_FILE
  if path.exists():
    return sources.ExampleSpec.from_json(json.loads(path.read_text()))
  return sources.example_spec(config.data)
