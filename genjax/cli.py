"""What the command-line entry points in experiments/ share: flag parsing that keeps `--config.x.y=v` overrides of
a saved config for later, and user errors reported as one message with a non-zero exit instead of a traceback."""

import sys
from collections.abc import Callable

from absl import app
from absl import flags

from genjax import errors

CONFIG_OVERRIDE_PREFIX = "--config."


def run(main: Callable[[list[str]], None]) -> None:
  """`app.run(main)`, where `main(overrides)` receives the `--config.x.y=v` arguments (for a run's saved config,
  see `config_lib.override`) and a `UserError` becomes "genjax: error: ..." on stderr with exit status 1."""

  def parse(argv: list[str]) -> list[str]:
    overrides = [arg for arg in argv[1:] if arg.startswith(CONFIG_OVERRIDE_PREFIX)]
    return flags.FLAGS([arg for arg in argv if arg not in overrides]) + overrides

  def main_reporting_user_errors(argv: list[str]) -> None:
    unexpected = [arg for arg in argv[1:] if not arg.startswith(CONFIG_OVERRIDE_PREFIX)]
    if unexpected:
      raise app.UsageError(f"Unexpected arguments: {' '.join(unexpected)}")
    try:
      main(argv[1:])
    except errors.UserError as e:
      sys.exit(f"genjax: error: {e}")

  app.run(main_reporting_user_errors, flags_parser=parse)
