"""The one setup seam: a config and a data spec -> mesh, trainer, abstract state, shardings, and the jitted,
sharded init, train and eval steps.

Everything that needs a built model goes through `build`: the training loop, run loading (evaluation, sampling),
the benchmark and the tests. The sequence is written once here: the state's shapes come from
`jax.eval_shape(trainer.init)`, its shardings from the mesh (`genjax.sharding`), and the state is materialised
directly in its sharding by a jitted init; the train step is jitted with explicit in/out shardings and donates the
old state's buffers to the new one.

Randomness is derived, never stored: one base key per run (from `config.seed`) is split into named streams, and
the key of a train step is `fold_in(train_key, state.step)`, computed inside the jitted step, so that nothing but
the batch crosses from host to device per step and a resumed run draws exactly what an unbroken run draws.
"""

import dataclasses
import functools
from typing import Any

import jax
import ml_collections
import numpy as np

from genjax import checkpoint
from genjax import sharding
from genjax import trainers
from genjax.data import sources
from genjax.trainers import contract


@dataclasses.dataclass(frozen=True)
class Keys:
  """The run's named random streams, all from `config.seed`: `train` is folded with the step, `eval` with the
  evaluation batch's index, and `sample` draws the same latents at every evaluation."""

  init: jax.Array
  train: jax.Array
  eval: jax.Array
  sample: jax.Array


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A config built on a mesh: what training, evaluation, sampling and benchmarking share.

  `train_step(state, batch)` takes a global batch `[k, B, ...]` laid out by `train_batch_sharding` (see
  `train_batch`); it calls `jitted_train_step(state, batch, keys.train)`, the jitted function itself (for
  lowering and compiling ahead of time). `eval_step(state, batch, key)` takes a global batch `[B, ...]` laid out by
  `batch_sharding`.
  """

  config: ml_collections.ConfigDict
  spec: sources.ExampleSpec
  mesh: jax.sharding.Mesh
  trainer: contract.Trainer
  abstract_state: Any
  state_sharding: Any
  batch_sharding: jax.sharding.NamedSharding
  train_batch_sharding: jax.sharding.NamedSharding
  replicated: jax.sharding.NamedSharding
  keys: Keys
  _init: Any
  jitted_train_step: Any
  eval_step: Any

  def init(self):
    """A fresh train state, created directly in its sharding."""
    return self._init(self.keys.init)

  def train_step(self, state, batch: dict[str, jax.Array]):
    """One train step (the old state's buffers are donated: do not use `state` afterwards)."""
    return self.jitted_train_step(state, batch, self.keys.train)

  def train_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's share `[k, B / processes, ...]` of a train batch -> the global batch."""
    return sharding.to_global_batch(local_batch, self.train_batch_sharding)

  def eval_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's share `[B / processes, ...]` of an evaluation batch -> the global batch."""
    return sharding.to_global_batch(local_batch, self.batch_sharding)

  def restore(self, checkpointer: checkpoint.Checkpointer, step: int, data_iterator=None):
    """The state saved at `step`, restored into this mesh's shardings (whatever mesh wrote it). With a
    `data_iterator`, the iterator is moved to the saved position and the checkpoint is first checked to be of this
    config's model."""
    target = checkpoint.abstract_with_shardings(self.abstract_state, self.state_sharding)
    if data_iterator is None:
      return checkpointer.restore_state(step, target)
    return checkpointer.restore(step, target, data_iterator, self.config)

  # The trainer's capabilities, each jitted once per experiment (outputs replicated, so every process can read
  # them); the `contract` capability must exist.

  @functools.cached_property
  def generate(self):
    """`generate(state, key, num_examples)`; num_examples is static."""
    return jax.jit(self.trainer.sampler.generate, static_argnums=2, out_shardings=self.replicated)

  @functools.cached_property
  def decode(self):
    """`decode(state, latents, labels or None)`."""
    return jax.jit(self.trainer.decoder.decode, out_shardings=self.replicated)

  @functools.cached_property
  def encode(self):
    """`encode(state, images)`."""
    return jax.jit(self.trainer.encoder.encode, out_shardings=self.replicated)

  @functools.cached_property
  def reconstruct(self):
    """`reconstruct(state, images)`."""
    return jax.jit(self.trainer.encoder.reconstruct, out_shardings=self.replicated)

  @functools.cached_property
  def gather(self):
    """Any array -> the same values replicated on every device (readable on every process)."""
    return jax.jit(lambda x: x, out_shardings=self.replicated)


def build(config: ml_collections.ConfigDict, spec: sources.ExampleSpec, devices=None) -> Experiment:
  """Builds `config`'s trainer for data of `spec` on a mesh over `devices` (all devices by default).

  Raises `UserError` for settings that cannot work (mesh, batch sizes, model options), before anything compiles.
  """
  sources.check_options(config.data, spec)
  mesh = sharding.make_mesh(config.mesh, devices)
  sharding.check_batch_size(config.train.batch_size, mesh, config.mesh, "config.train.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, config.mesh, "config.eval.batch_size")
  trainer = trainers.make_trainer(config, spec)

  replicated = sharding.replicated(mesh)
  # Placed on the mesh once, so that passing a key to a step moves nothing.
  init_key, train_key, eval_key, sample_key = (
      jax.device_put(key, replicated) for key in jax.random.split(jax.random.key(config.seed), 4)
  )
  abstract_state = jax.eval_shape(trainer.init, init_key)
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  batch_sharding = sharding.batch_sharding(mesh, config.mesh)
  train_batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)

  def train_step(state, batch, train_key):
    return trainer.train_step(state, batch, jax.random.fold_in(train_key, state.step))

  return Experiment(
      config=config,
      spec=spec,
      mesh=mesh,
      trainer=trainer,
      abstract_state=abstract_state,
      state_sharding=state_sharding,
      batch_sharding=batch_sharding,
      train_batch_sharding=train_batch_sharding,
      replicated=replicated,
      keys=Keys(init_key, train_key, eval_key, sample_key),
      _init=jax.jit(trainer.init, out_shardings=state_sharding),
      jitted_train_step=jax.jit(
          train_step,
          in_shardings=(state_sharding, train_batch_sharding, replicated),
          out_shardings=(state_sharding, replicated),
          donate_argnums=(0,),
      ),
      eval_step=jax.jit(
          trainer.eval_step, in_shardings=(state_sharding, batch_sharding, replicated), out_shardings=replicated
      ),
  )
