"""Orbax behind one door: saving and restoring the train state and the resolved config.

A checkpoint step holds two items: `state` (the train-state pytree) and `config` (the resolved config as JSON). The
data's position needs no item: the step fixes it (see `genjax.data.pipeline`). Saves are asynchronous. Restoring
goes into an abstract state that carries the current shardings, so a checkpoint written on 8 devices restores onto
1 and the other way round. A checkpoint from another model is refused with a `UserError` before any array is read.
"""

import contextlib
import functools
import itertools
import logging
import os
import re
import shutil
import sys

import jax
import ml_collections
from etils import epath
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from genjax import errors
from genjax import sharding

# Config sections that must match for a checkpoint to be resumed; other sections (steps, logging, data, mesh,
# optimiser hyperparameters) may legitimately change between runs of the same model.
_MODEL_DEFINING_KEYS = ("family", "model")


def absolute_workdir(workdir: str) -> str:
  """`workdir` as an absolute path (`~` expanded), logged once; an object-store URL (gs://...) is returned as it is.

  orbax writes only to absolute paths: given a relative one, every save fails in the background and every restore
  reads as damaged. An empty `--workdir=` is refused rather than taken to mean the current directory.
  """
  if not workdir.strip():
    raise errors.UserError("--workdir is empty; pass the directory of the run, e.g. --workdir=/tmp/genjax/vae_local.")
  absolute = _absolute(workdir)
  logging.info("Workdir: %s", absolute)
  return absolute


def _absolute(path: str) -> str:
  return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def quiet_orbax_logging() -> None:
  """Drops orbax's INFO narration of every save and restore from the console; its warnings and errors stay, except
  the tracebacks its background threads log for a failed write (a full disk), which genjax reports as one message
  when the failure surfaces (`errors.StorageError`)."""

  def keep(record: logging.LogRecord) -> bool:
    if "/orbax/" not in record.pathname:
      return True
    if record.levelno < logging.WARNING:
      return False
    return not (record.exc_info and _storage_failure(record.exc_info[1]) is not None)

  absl_logging.get_absl_handler().addFilter(keep)


class Checkpointer:
  """Saves and restores one run's checkpoints under `directory`, keeping the latest `keep` (at least 1) of them.

  Only finite states reach it (the loop checks before every save), so the newest checkpoint is always one to
  resume from. A damaged checkpoint (truncated array files, garbled metadata, a missing manifest) is moved aside to
  `<directory>_damaged/<step>`, never deleted, and restoring falls back to the newest intact step.
  """

  def __init__(self, directory: str, keep: int):
    if keep < 1:
      raise errors.UserError(f"config.ckpt.keep={keep} must be at least 1 (the newest checkpoint is always kept).")
    self.directory = _absolute(directory)  # orbax writes only to absolute paths.
    # The step whose save may still be writing in the background: its failure surfaces only at the next save, wait
    # or close, and is reported under its own step.
    self._unfinished_step = None
    self._storage_failed = False
    _quiet_abandoned_io()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
            enable_async_checkpointing=True,
            create=True,
        ),
        handler_registry=_handler_registry(),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state, config: ml_collections.ConfigDict) -> None:
    """Starts an asynchronous save; the state's arrays are copied off the device before this returns. A failure to
    write (of the previous save, which finishes first, or of this one's start) raises `StorageError`."""
    self.wait_until_finished()
    with self._storage_errors(step):
      self._manager.save(
          step,
          args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict())),
      )
    self._unfinished_step = step

  def saved_config(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

  def restore(self, step: int, abstract_state, config: ml_collections.ConfigDict | None = None):
    """Restores the state at `step` into `abstract_state`'s shapes and shardings. With `config`, first raises
    `UserError` if the checkpoint belongs to a different model. A checkpoint whose arrays do not match the state
    raises `UserError`; one that cannot be read raises `DamagedCheckpoint`."""
    if config is not None:
      self._check_compatible(step, config)
    self._check_state_matches(step, abstract_state, config is not None)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    except Exception as e:  # TensorStore, JSON and file errors all mean the same here: the arrays cannot be read.
      raise DamagedCheckpoint(step, f"its arrays cannot be read: {_short_reason(e)}") from e
    return restored["state"]

  def restore_newest_intact(self, abstract_state, config: ml_collections.ConfigDict):
    """`(step, state)` of the newest checkpoint that can be read, or `(0, None)` if there is none. Damaged newer
    ones are moved aside with a warning; a checkpoint of another model or optimiser is refused (`UserError`)."""
    for step in reversed(self.all_steps()):
      try:
        return step, self.restore(step, abstract_state, config)
      except DamagedCheckpoint as damaged:
        moved_to = self._move_aside(step)
        logging.warning(
            "The checkpoint at step %d is damaged (%s); moved it to %s and trying the one before.",
            step,
            damaged.reason,
            moved_to,
        )
    damaged_directory = epath.Path(self._damaged_directory)
    if damaged_directory.exists() and any(damaged_directory.iterdir()):
      damaged = ", ".join(sorted((path.name for path in damaged_directory.iterdir()), key=_step_order))
      raise errors.UserError(
          f"No checkpoint in {self.directory} can be read: the damaged ones (steps {damaged}) are in "
          f"{self._damaged_directory}, kept for inspection. To start over from step 0 in this workdir, move that folder "
          f"away (mv {self._damaged_directory} {self._damaged_directory}.old) and rerun; or use a new --workdir."
      )
    return 0, None

  @property
  def _damaged_directory(self) -> str:
    return self.directory.rstrip("/") + "_damaged"

  def _move_aside(self, step: int) -> str:
    """Moves a damaged step out of orbax's way (the run will save that step number again), on process 0 only."""
    destination = epath.Path(self._damaged_directory) / str(step)
    # A step number can be damaged again after it was trained again: the earlier copy stays, the new one is step.1 (or
    # step.2, ...). Every process finds the same name, since process 0 moves only after all have looked.
    for copy in itertools.count(1):
      if not destination.exists():
        break
      destination = epath.Path(self._damaged_directory) / f"{step}.{copy}"
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"genjax: damaged checkpoint {step} about to be moved aside")
    if jax.process_index() == 0:
      destination.parent.mkdir(parents=True, exist_ok=True)
      (epath.Path(self.directory) / str(step)).rename(destination)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"genjax: damaged checkpoint {step} moved aside")
    self._manager.reload()
    return str(destination)

  def _check_state_matches(self, step: int, abstract_state, config_checked: bool) -> None:
    """Compares the checkpoint's array names, shapes and dtypes with the state's before reading any array."""
    try:
      saved = _shapes_by_path(self._manager.item_metadata(step)["state"])
    except Exception as e:  # Unreadable metadata: the checkpoint is damaged, whatever the state.
      raise DamagedCheckpoint(step, f"its metadata cannot be read: {_short_reason(e)}") from e
    expected = _shapes_by_path(abstract_state)
    if saved != expected:
      difference = sorted(set(saved.items()) ^ set(expected.items()))[0][0]
      raise errors.UserError(
          f"The checkpoint at step {step} in {self.directory} does not fit this run's train state (it differs at "
          f"{difference!r}). "
          + (
              "It was probably written with a different optimiser or model; resume with the config it was written "
              "with, or use a new --workdir."
              if config_checked
              else "Was config.json edited after training?"
          )
      )

  def _check_compatible(self, step: int, config: ml_collections.ConfigDict) -> None:
    try:
      saved = self.saved_config(step)
    except Exception as e:  # Any failure to read the small JSON item means the step is damaged.
      raise DamagedCheckpoint(step, f"its config cannot be read: {_short_reason(e)}") from e
    current = config.to_dict()
    differences = []
    for key in _MODEL_DEFINING_KEYS:
      differences += _differences(saved.get(key), _as_json(current.get(key)), key)
    if differences:
      raise errors.UserError(
          f"The workdir {os.path.dirname(self.directory)} holds a checkpoint (step {step}) of a different model: "
          + "; ".join(differences[:8])
          + ". Resume it with the config it was written with (see its config.json), or use a new --workdir."
      )

  @contextlib.contextmanager
  def _storage_errors(self, step: int):
    """Turns a failure to write `step` into `StorageError`. orbax raises it from its background threads: an
    `OSError` (ENOSPC, or "handle is closed" when the disk filled up under an open file) or TensorStore's
    `ValueError` with a status such as RESOURCE_EXHAUSTED."""
    try:
      yield
    except (OSError, ValueError) as e:
      reason = _storage_failure(e)
      if reason is None:
        raise
      self._storage_failed = True
      previous = [saved for saved in self.all_steps() if saved < step]
      raise errors.StorageError(
          f"Could not write the checkpoint of step {step} in {self.directory}: {reason}{self._free_space()}. "
          + (f"The previous checkpoint (step {previous[-1]}) is intact; " if previous else "No checkpoint was written; ")
          + "free some space (or choose a --workdir with room) and rerun the same command to resume."
      ) from e

  def _free_space(self) -> str:
    if "://" in self.directory:  # An object store has no free space to report.
      return ""
    existing = epath.Path(self.directory)
    while not existing.exists():
      existing = existing.parent
    usage = shutil.disk_usage(existing)
    return f" ({usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.1f} MiB on that file system)"

  def wait_until_finished(self) -> None:
    """Waits for the last save; its failure to write raises `StorageError`."""
    if self._unfinished_step is None:
      return
    with self._storage_errors(self._unfinished_step):
      self._manager.wait_until_finished()
    self._unfinished_step = None

  def close(self) -> None:
    """Finishes the last save (its failure to write raises `StorageError`) and stops orbax's threads. After a
    reported storage failure, orbax raises that same failure again here; it is not reported twice."""
    if self._storage_failed:
      with contextlib.suppress(Exception):
        self._manager.close()
      return
    self.wait_until_finished()
    with self._storage_errors(self._unfinished_step or 0):
      self._manager.close()


@functools.cache  # Installed once per process, before the first save or restore.
def _quiet_abandoned_io() -> None:
  """When a restore or a save fails, the array reads or writes that orbax abandoned finish on an event loop it has
  closed, and each prints "RuntimeError: Event loop is closed": as an unraisable exception, or through
  sys.excepthook from TensorStore's threads, sometimes before the failure itself is reported. That is noise after a handled failure
  (genjax runs no event loop of its own), so exactly those are dropped; every other exception passes on."""
  previous_unraisable_hook, previous_excepthook = sys.unraisablehook, sys.excepthook

  def is_abandoned_io(exception) -> bool:
    return isinstance(exception, RuntimeError) and str(exception) == "Event loop is closed"

  def unraisable_hook(unraisable):
    if not is_abandoned_io(unraisable.exc_value):
      previous_unraisable_hook(unraisable)

  def excepthook(exception_type, exception, traceback):
    if not is_abandoned_io(exception):
      previous_excepthook(exception_type, exception, traceback)

  sys.unraisablehook, sys.excepthook = unraisable_hook, excepthook


class DamagedCheckpoint(Exception):
  """A checkpoint step that exists but cannot be read."""

  def __init__(self, step: int, reason: str):
    super().__init__(f"checkpoint step {step} is damaged: {reason}")
    self.step, self.reason = step, reason


# TensorStore's status codes that mean the storage, not the caller, failed.
_STORAGE_STATUSES = ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED")


def _storage_failure(error: BaseException) -> str | None:
  """The short reason (e.g. "No space left on device") if `error` or an error it came from is a failure of the
  storage, else None."""
  while error is not None:
    if isinstance(error, OSError):
      return error.strerror or str(error)
    text = str(error)
    if text.startswith(_STORAGE_STATUSES):
      os_error = re.search(r"os_error_code='(\d+)'", text)
      return os.strerror(int(os_error.group(1))) if os_error else text.split(":")[0]
    error = error.__cause__ or error.__context__
  return None


def _step_order(name: str) -> tuple[int, ...]:
  """Orders moved-aside steps by number ("4" < "4.1" < "10")."""
  return tuple(int(part) for part in name.split(".") if part.isdigit())


def _short_reason(error: Exception) -> str:
  """The cause of a read failure in a few words. TensorStore's messages ("OUT_OF_RANGE: Error opening ...: Error
  reading ... of local file ...: Requested byte range [0, 42484) is not valid for value of size 14161
  [tensorstore_spec='{...}']") nest the context before the cause and append the whole spec; only the cause is kept."""
  text = str(error).strip()
  first_line = text.splitlines()[0] if text else type(error).__name__
  first_line = re.sub(r"\s*\[\w+='.*$", "", first_line)
  if re.match(r"[A-Z_]+: ", first_line):
    first_line = first_line.rsplit(": ", 1)[-1]
  return first_line if len(first_line) <= 160 else first_line[:157] + "..."


def _shapes_by_path(tree) -> dict[str, tuple]:
  """`{path: (shape, dtype)}` of a state pytree or of orbax's metadata of one (their paths name the same fields)."""
  return {
      sharding.path_name(path): (tuple(leaf.shape), str(leaf.dtype)) for path, leaf in jax.tree.leaves_with_path(tree)
  }


def _handler_registry() -> ocp.handlers.CheckpointHandlerRegistry:
  """How each item of a checkpoint step is saved and restored."""
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  for item, handler, save_args, restore_args in [
      ("state", ocp.StandardCheckpointHandler, ocp.args.StandardSave, ocp.args.StandardRestore),
      ("config", ocp.JsonCheckpointHandler, ocp.args.JsonSave, ocp.args.JsonRestore),
  ]:
    registry.add(item, save_args, handler)
    registry.add(item, restore_args, handler)
  return registry


def _as_json(value):
  """The value as it reads back from JSON (tuples become lists)."""
  if isinstance(value, dict):
    return {k: _as_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_as_json(v) for v in value]
  return value


def _differences(saved, current, prefix: str) -> list[str]:
  if isinstance(saved, dict) and isinstance(current, dict):
    found = []
    for key in sorted(set(saved) | set(current)):
      found += _differences(saved.get(key), current.get(key), f"{prefix}.{key}")
    return found
  if saved != current:
    return [f"{prefix} was {saved!r}, now {current!r}"]
  return []


def abstract_with_shardings(abstract_state, shardings):
  """Attaches shardings to an abstract state from `jax.eval_shape`, as the restore target."""
  return jax.tree.map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), abstract_state, shardings
  )
