"""What the command-line entry points in experiments/ share: flag parsing that keeps `--config.x.y=v` overrides of
a saved config for later, user errors reported as one message with a non-zero exit instead of a traceback, and the
persistent compilation cache."""

import os
import sys
from collections.abc import Callable

from absl import app
from absl import flags

from genjax import config_lib
from genjax import console
from genjax import errors
from genjax import validation

CONFIG_OVERRIDE_PREFIX = "--config."
DEFAULT_COMPILATION_CACHE = os.path.join("~", ".cache", "genjax", "jax_compilation_cache")

COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache_dir",
    DEFAULT_COMPILATION_CACHE,
    "Where JAX keeps compiled programs between runs, so that a rerun starts without recompiling ('' disables).",
)


def enable_compilation_cache(directory: str) -> None:
  """JAX's persistent compilation cache in `directory` ('' leaves it off), for every program: start-up compiles
  many small ones, each too quick for JAX's default threshold of one second."""
  if not directory:
    return
  import jax  # Imported here, so that flag errors are reported before JAX spends seconds importing.

  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run(main: Callable[..., None], commands: tuple[str, ...] = ()) -> None:
  """`app.run(main)` for tools that take `--config.x.y=v` overrides of a config they load themselves (a run's saved
  config: evaluate.py, sample.py; a sweep's: sweep.py): `main(overrides)`, or `main(command, overrides)` for a tool
  whose first argument is one of `commands`."""

  def parse(argv: list[str]) -> list[str]:
    overrides = [arg for arg in argv[1:] if arg.startswith(CONFIG_OVERRIDE_PREFIX)]
    try:
      return flags.FLAGS([arg for arg in argv if arg not in overrides]) + overrides
    except flags.Error as e:
      sys.exit(f"genjax: error: {e}")

  def main_with_overrides(argv: list[str]) -> None:
    positional = [arg for arg in argv[1:] if not arg.startswith(CONFIG_OVERRIDE_PREFIX)]
    overrides = [arg for arg in argv[1:] if arg.startswith(CONFIG_OVERRIDE_PREFIX)]
    if commands and (len(positional) != 1 or positional[0] not in commands):
      raise app.UsageError(f"Say what to do, one of: {', '.join(commands)}.")
    if not commands and positional:
      raise app.UsageError(f"Unexpected arguments: {' '.join(positional)}")
    enable_compilation_cache(COMPILATION_CACHE.value)
    main(*positional, overrides)

  app.run(reporting_user_errors(main_with_overrides), flags_parser=parse)


def run_with_config_file(main: Callable[[], None]) -> None:
  """`app.run(main)` for tools that take `--config=FILE[:ARG]` and `--config.x.y=v` (train.py, benchmark.py):
  config mistakes (unknown keys, bad values, bad config arguments) are reported as one message too."""

  def parse(argv: list[str]) -> list[str]:
    try:
      remaining = flags.FLAGS(argv)
      if "config" in flags.FLAGS and flags.FLAGS["config"].present:
        flags.FLAGS.config.keys()  # ml_collections defers a config file's load error to first use: surface it now.
      return remaining
    except flags.Error as e:
      sys.exit(f"genjax: error: {e}")
    except (errors.UserError, AttributeError, KeyError, TypeError, ValueError, OSError, ImportError) as e:
      overrides = " ".join(arg for arg in argv[1:] if arg.startswith("--config"))
      # ml_collections' file errors end with the line that names the cause.
      cause = str(e).strip().splitlines()[-1].strip() if isinstance(e, OSError) else config_lib.describe_config_error(e)
      sys.exit(f"genjax: error: cannot load the config from {overrides}: {cause}")

  def main_without_arguments(argv: list[str]) -> None:
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    validation.check_config(flags.FLAGS.config)  # Before JAX is imported: a mistake costs a second, not ten.
    enable_compilation_cache(COMPILATION_CACHE.value)
    main()

  app.run(reporting_user_errors(main_without_arguments), flags_parser=parse)


def reporting_user_errors(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """`main` with a `UserError` becoming "genjax: error: ..." (or "genjax: stopped: ..." for a resumable stop) on
  stderr and the error's exit status (see `genjax.errors`), and other libraries' narration kept off the console."""

  def wrapped(argv: list[str]) -> None:
    console.quiet_libraries()
    try:
      main(argv)
    except errors.UserError as e:
      print(f"genjax: {'stopped' if isinstance(e, errors.Stopped) else 'error'}: {e}", file=sys.stderr)
      sys.exit(e.exit_code)

  return wrapped
