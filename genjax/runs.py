"""A training run read back from its workdir, for evaluation and sampling: the resolved config (config.json), the
trainer it defines, the eval split of its data, and its train state at one checkpoint step, placed on a mesh.

It restores only; training and resuming belong to `train_loop`.
"""

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from genjax import checkpoint
from genjax import config_lib
from genjax import errors
from genjax import sharding
from genjax import trainers
from genjax.data import catalog
from genjax.data import pipeline
from genjax.trainers import common


@dataclasses.dataclass(frozen=True)
class Run:
  workdir: str
  config: ml_collections.ConfigDict
  step: int
  trainer: common.Trainer
  state: Any
  example_shapes: dict[str, tuple[int, ...]]
  eval_source: Sequence
  mesh: jax.sharding.Mesh
  state_sharding: Any


def load(workdir: str, step: int | None = None, overrides: Sequence[str] = (), devices=None) -> Run:
  """Reads the run in `workdir` at checkpoint `step` (the latest by default).

  `overrides` ("data.data_dir=/data", ...) change the saved config before anything is built, e.g. to point at data
  that has moved. Raises `UserError` for a workdir that is not a genjax run, has no checkpoint, or lacks `step`.
  """
  config_path = os.path.join(workdir, "config.json")
  if not os.path.isfile(config_path):
    raise errors.UserError(
        f"{workdir!r} is not a genjax run: it has no config.json. Pass the --workdir that experiments/train.py wrote."
    )
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  config_lib.apply_overrides(config, list(overrides))

  checkpointer = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.ckpt.keep)
  try:
    saved_steps = checkpointer.all_steps()
    if not saved_steps:
      raise errors.UserError(f"The run in {workdir!r} has no checkpoint yet; train it first (or wait for a save).")
    step = saved_steps[-1] if step is None else step
    if step not in saved_steps:
      raise errors.UserError(
          f"The run in {workdir!r} has no checkpoint at step {step}; it has: {', '.join(map(str, saved_steps))}."
      )
    data = config.data
    eval_source = catalog.open_split(data.name, data.eval_split, data.data_dir, data.download)
    example_shapes = pipeline.example_shapes(eval_source, data)
    trainer = trainers.make_trainer(config, example_shapes)
    mesh = sharding.make_mesh(config.mesh, devices)
    abstract_state = jax.eval_shape(trainer.init, jax.random.key(0))
    state_sharding = sharding.state_shardings(abstract_state, mesh)
    state = checkpointer.restore_state(step, checkpoint.abstract_with_shardings(abstract_state, state_sharding))
  finally:
    checkpointer.close()
  return Run(workdir, config, step, trainer, state, example_shapes, eval_source, mesh, state_sharding)
