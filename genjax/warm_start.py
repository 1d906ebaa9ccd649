"""Starting a run from another run's weights (`config.init_from=WORKDIR`), as ESRGAN starts its adversarial phase
from a network trained on pixels alone: the trainer's `warm_start` says which of the other run's weights it takes,
this module reads that run and checks that they fit. Only a fresh run starts so; a resumed one continues from its
own checkpoint."""

import jax
import jax.numpy as jnp
from absl import logging

from genjax import errors
from genjax import experiment
from genjax import runs


def from_run(built: experiment.Experiment, state, workdir: str):
  """`state` (fresh, of `built`) with the weights that its trainer takes from the latest checkpoint of the run in
  `workdir`, placed as `built` places its state. Raises `UserError` for a family that cannot start from another
  run, a workdir that holds no run, and weights that do not fit."""
  family = built.config.family
  if built.trainer.warm_start is None:
    raise errors.UserError(f"config.init_from is set, but a {family} run cannot start from another run's weights.")
  pretrained = runs.load(workdir)
  try:
    started = built.trainer.warm_start(state, pretrained.state)
  except AttributeError as e:  # The other run's state lacks a field this trainer takes.
    raise errors.UserError(
        f"config.init_from={workdir!r} holds a {pretrained.config.family} run, whose weights a {family} run cannot "
        f"start from ({e})."
    ) from e
  shapes = lambda tree: jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), tree)
  if jax.tree.structure(started) != jax.tree.structure(state) or shapes(started) != shapes(state):
    raise errors.UserError(
        f"The network of the run in config.init_from={workdir!r} (config.model {pretrained.config.model.to_dict()}) "
        f"does not fit this run's (config.model {built.config.model.to_dict()}); start from a run of the same "
        "architecture and sizes."
    )
  logging.info("Started from the weights of the run in %s at step %d.", pretrained.workdir, pretrained.step)
  # Copied, so that no two fields share a buffer (a generator and its average start equal): the train step donates
  # the state, and a buffer cannot be donated twice.
  return jax.tree.map(jnp.copy, jax.device_put(started, built.state_sharding))
