r"""Trains any genjax experiment from an ml_collections config file.

  python experiments/train.py --config=configs/vae.py:runlocal --workdir=/tmp/genjax/vae_local
  python experiments/train.py --config=configs/vae.py --workdir=DIR --config.train.total_steps=50000

Rerunning with the same --workdir resumes from its latest checkpoint. Problems the user can fix are reported as a
one-paragraph message with exit status 1.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from genjax import config_lib
from genjax import errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/vae.py:runlocal.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flags_as_required(["config", "workdir"])


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config mistakes (unknown keys, bad values, bad config arguments) reported as one
  message and exit status 1 instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"genjax: error: {e}")
  except (errors.UserError, AttributeError, KeyError, TypeError, ValueError) as e:
    overrides = " ".join(arg for arg in argv[1:] if arg.startswith("--config"))
    sys.exit(f"genjax: error: cannot load the config from {overrides}: {config_lib.describe_config_error(e)}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  # Imported here so that flag errors are reported before JAX and TFDS spend seconds importing.
  from genjax import checkpoint
  from genjax import sharding
  from genjax import train_loop

  checkpoint.quiet_orbax_logging()
  config = _CONFIG.value
  try:
    sharding.initialize_distributed(config.distributed)
    train_loop.run(config, _WORKDIR.value)
  except errors.UserError as e:
    sys.exit(f"genjax: error: {e}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
