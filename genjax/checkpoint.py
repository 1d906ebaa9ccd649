"""Orbax behind one door: saving and restoring the train state and the resolved config.

A checkpoint step holds two items: `state` (the train-state pytree) and `config` (the resolved config as JSON). The
data's position needs no item: the step fixes it (see `genjax.data.pipeline`). Saves are asynchronous. Restoring
goes into an abstract state that carries the current shardings, so a checkpoint written on 8 devices restores onto
1 and the other way round. A checkpoint from another model is refused with a `UserError` before any array is read.
"""

import logging
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from genjax import errors

# Config sections that must match for a checkpoint to be resumed; other sections (steps, logging, data, mesh,
# optimiser hyperparameters) may legitimately change between runs of the same model.
_MODEL_DEFINING_KEYS = ("family", "model")


def quiet_orbax_logging() -> None:
  """Drops orbax's INFO narration of every save and restore from the console; its warnings and errors stay."""
  absl_logging.get_absl_handler().addFilter(
      lambda record: "/orbax/" not in record.pathname or record.levelno >= logging.WARNING
  )


class Checkpointer:
  """Saves and restores one run's checkpoints under `directory`, keeping the latest `keep` of them."""

  def __init__(self, directory: str, keep: int):
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
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
    """Starts an asynchronous save; the state's arrays are copied off the device before this returns."""
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict())),
    )

  def saved_config(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

  def restore(self, step: int, abstract_state, config: ml_collections.ConfigDict | None = None):
    """Restores the state at `step` into `abstract_state`'s shapes and shardings. With `config`, first raises
    `UserError` if the checkpoint belongs to a different model; without, a mismatch is reported as a config.json
    edited after training."""
    if config is not None:
      self._check_compatible(step, config)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    except (ValueError, KeyError, TypeError) as e:
      cause = str(e).splitlines()[0]
      raise errors.UserError(
          f"The checkpoint at step {step} in {self.directory} does not fit this run's train state ({cause}). "
          + (
              "It was probably written with a different optimiser or model; resume with the config it was written "
              "with, or use a new --workdir."
              if config is not None
              else "Was config.json edited after training?"
          )
      ) from e
    return restored["state"]

  def _check_compatible(self, step: int, config: ml_collections.ConfigDict) -> None:
    saved = self.saved_config(step)
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

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


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
