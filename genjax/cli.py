"""What the command-line entry points in experiments/ share: the flags of every tool that reads a trained run
(`define_run_flags`: --workdir, --step, --out_dir, --num_images, --batch_size, --seed) and loading that run, flag
parsing that keeps `--config.x.y=v` overrides of a saved config for later, user errors reported as one message with
a non-zero exit instead of a traceback, and the persistent compilation cache.

The tools' logic lives in the library (`genjax.sampling`, `genjax.latents`, `genjax.restoring`,
`genjax.evaluators.offline`), where it is tested in-process; a tool parses its flags and calls one function.
"""

import dataclasses
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence

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


@dataclasses.dataclass(frozen=True)
class RunFlags:
  """The flags of a tool that reads a trained run; `num_images` is None for a tool that takes every input given,
  `batch_size` for one that takes one image at a time, `seed` for one that draws nothing."""

  workdir: flags.FlagHolder
  step: flags.FlagHolder
  out_dir: flags.FlagHolder
  num_images: flags.FlagHolder | None
  batch_size: flags.FlagHolder | None
  seed: flags.FlagHolder | None

  def load(self, overrides: Sequence[str] = ()):
    """The run of --workdir at --step (the latest by default), `overrides` applied to its saved config."""
    from genjax import checkpoint  # Imported here, so that flag errors are reported before JAX is imported.
    from genjax import runs

    checkpoint.quiet_orbax_logging()
    return runs.load(self.workdir.value, self.step.value, overrides)


def define_run_flags(
    *,
    out_dir: str,
    batch_size: tuple[int, str] | None = None,
    seed: str | None = None,
    num_images: tuple[int, str, int] | None = None,
) -> RunFlags:
  """Defines --workdir (required), --step, --out_dir and, given `batch_size`, `seed` and `num_images`, --batch_size,
  --seed and --num_images, with one name and meaning in every tool; the arguments give each tool's defaults and
  what the flags count.

  out_dir:    where the tool writes by default (see `runs.output_dir`), as its help says it.
  batch_size: (default, what a batch holds).
  seed:       what the seed draws.
  num_images: (default, what is counted, lower bound).
  """
  images = None
  if num_images is not None:
    default, counted, lower_bound = num_images
    images = flags.DEFINE_integer("num_images", default, counted, lower_bound=lower_bound)
  run_flags = RunFlags(
      workdir=flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py."),
      step=flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).", lower_bound=0),
      out_dir=flags.DEFINE_string("out_dir", None, f"Where to write (default: {out_dir})."),
      num_images=images,
      batch_size=None if batch_size is None else flags.DEFINE_integer("batch_size", *batch_size, lower_bound=1),
      seed=None if seed is None else flags.DEFINE_integer("seed", 0, f"Seed of {seed}.", lower_bound=0),
  )
  flags.mark_flags_as_required(["workdir"])
  return run_flags


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
