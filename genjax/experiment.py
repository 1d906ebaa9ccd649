"""The one setup seam: a config and a data spec -> mesh, trainer, abstract state, shardings, and the jitted,
sharded init, train and eval steps.

Everything that needs a built model goes through `build`: the training loop, run loading (evaluation, sampling),
the benchmark and the tests. The sequence is written once here: the state's shapes come from
`jax.eval_shape(trainer.init)`, its shardings from the mesh (`genjax.sharding`), and the state is materialised
directly in its sharding by a jitted init; the train step is jitted with explicit in/out shardings and donates the
old state's buffers to the new one.

The jitted train step takes a feed (`pipeline.HostFeed` or `pipeline.DeviceFeed`) rather than a batch: it takes
its raw batch from the feed (gathering it on the device for the on-device path) and preprocesses it (`preprocess`)
inside the same program, so no per-example work happens on the host and only uint8 pixels cross to the device.

Networks that a step uses but does not train (`contract.FrozenNetwork`: a trainer's pretrained feature network,
the generator of generated training data, see `synthetic`) are loaded once by `load_frozen`, placed by the sharding
rules and passed to the jitted step as its `frozen` argument: not compiled in as constants, not in the train state.

Randomness is derived, never stored: one base key per run (from `config.seed`) is split into named streams; the key
of a train step is `fold_in(train_key, state.step)` and each example's preprocessing key comes from its place in the
data stream, both computed inside the jitted step, so that nothing but the batch crosses from host to device per
step and a resumed run draws exactly what an unbroken run draws.
"""

import dataclasses
import functools
from typing import Any

import flax
import jax
import ml_collections
import numpy as np

from genjax import checkpoint
from genjax import sharding
from genjax import synthetic
from genjax import trainers
from genjax import validation
from genjax.data import pipeline
from genjax.data import preprocess
from genjax.data import sources
from genjax.trainers import contract


@flax.struct.dataclass
class Keys:
  """The run's named random streams, all from `config.seed`: `train` is folded with the step, `eval` with the
  evaluation batch's index, `sample` draws the same latents at every evaluation, and `train_data` / `eval_data`
  key each example's preprocessing (dynamic binarisation, flips, crops) by its place in the data."""

  init: jax.Array
  train: jax.Array
  eval: jax.Array
  sample: jax.Array
  train_data: jax.Array
  eval_data: jax.Array


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A config built on a mesh: what training, evaluation, sampling and benchmarking share.

  `train_step(state, feed, frozen)` runs one step on the raw batch that a feed gives (see `pipeline`), with the
  frozen networks' weights that `load_frozen` gives; it calls `jitted_train_step(state, feed, keys, frozen)`, the
  jitted function itself (for lowering and compiling ahead of time).
  `eval_step(state, batch, key)` takes a preprocessed global batch `[B, ...]` laid out by `batch_sharding` (see
  `eval_batch`).
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
  preprocess_options: preprocess.Options | None
  frozen_networks: dict[str, contract.FrozenNetwork]
  mixer: synthetic.Mixer | None
  _init: Any
  jitted_train_step: Any
  eval_step: Any
  _train_batch: Any
  _preprocess_eval: Any

  def init(self):
    """A fresh train state, created directly in its sharding."""
    return self._init(self.keys.init)

  def train_step(self, state, feed, frozen):
    """One train step (the old state's buffers are donated: do not use `state` afterwards)."""
    return self.jitted_train_step(state, feed, self.keys, frozen)

  def load_frozen(self, data: sources.DataSource | None) -> dict[str, Any]:
    """The weights of every frozen network by name, loaded (and checked against `data`, when given) and placed on
    the mesh by the config's sharding rules: the `frozen` argument of `train_step`."""
    loaded = {name: network.load(data) for name, network in self.frozen_networks.items()}
    shardings = sharding.frozen_shardings(jax.eval_shape(lambda: loaded), self.mesh, self.config.sharding)
    return jax.tree.map(sharding.put, jax.device_get(loaded), shardings)

  @property
  def stream(self) -> pipeline.Stream:
    """The order in which training reads examples (see `pipeline`)."""
    return pipeline.Stream(self.config.seed, self.trainer.batches_per_step, self.config.train.batch_size)

  def train_batch(self, feed, step: int, frozen) -> dict[str, jax.Array]:
    """The preprocessed batch `[k, B, ...]` that `train_step` trains on at `step` (the input path alone)."""
    return self._train_batch(feed, sharding.put(np.int32(step), self.replicated), self.keys, frozen)

  def host_feed(self, local_raw: dict[str, np.ndarray]) -> pipeline.HostFeed:
    """This process's share `[k, B / processes, ...]` of a raw train batch -> a feed for `train_step`."""
    return pipeline.HostFeed(sharding.to_global_batch(local_raw, self.train_batch_sharding))

  def eval_batch(self, local_raw: dict[str, np.ndarray], binarized: bool = True) -> dict[str, jax.Array]:
    """This process's share `[B / processes, ...]` of a raw evaluation batch (`pipeline.eval_batches`) -> the
    global batch, preprocessed with the split's fixed draws (no augmentation), with its "mask". With
    `binarized=False` the images keep their grey levels whatever the config binarises (real images for FID)."""
    options = self.preprocess_options
    if options is not None and not binarized:
      options = dataclasses.replace(options, binarize="none")
    return self._preprocess_eval(sharding.to_global_batch(local_raw, self.batch_sharding), self.keys, options)

  @property
  def state_bytes_per_device(self) -> int:
    return sharding.bytes_per_device(self.abstract_state, self.state_sharding)

  @property
  def restore_target(self):
    """The abstract state with this mesh's shardings, into which a checkpoint from any mesh restores."""
    return checkpoint.abstract_with_shardings(self.abstract_state, self.state_sharding)

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


def build(
    config: ml_collections.ConfigDict, spec: sources.ExampleSpec, devices=None, generated_data: bool = True
) -> Experiment:
  """Builds `config`'s trainer for data of `spec` on a mesh over `devices` (all devices by default).

  `generated_data=False` leaves out the generator that `config.data.synthetic` mixes into train batches: a run
  loaded to be evaluated or used does not train, so it must not need the generator's workdir.

  Raises `UserError` for settings that cannot work (mesh, batch sizes, model options), before anything compiles.
  """
  validation.check_config(config)
  sources.check_options(config.data, spec)
  mesh = sharding.make_mesh(config.mesh, devices)
  sharding.check_batch_size(config.train.batch_size, mesh, config.mesh, "config.train.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, config.mesh, "config.eval.batch_size")
  trainer = trainers.make_trainer(config, spec)
  mixer = synthetic.mixer(config, spec) if generated_data else None
  frozen_networks = {**trainer.frozen_networks, **({synthetic.NAME: mixer.network} if mixer else {})}

  replicated = sharding.replicated(mesh)
  # Made on the mesh once (by every process alike), so that passing a key to a step moves nothing.
  keys = jax.jit(lambda: Keys(*jax.random.split(jax.random.key(config.seed), 6)), out_shardings=replicated)()
  abstract_state = jax.eval_shape(trainer.init, keys.init)
  state_sharding = sharding.state_shardings(abstract_state, mesh, config.sharding)
  batch_sharding = sharding.batch_sharding(mesh, config.mesh)
  train_batch_sharding = sharding.stacked_batch_sharding(mesh, config.mesh)
  options = preprocess.Options.from_config(config.data, spec)

  def model_arrays(raw):
    """The arrays trainers see, and the image sizes that patch cutting consumes."""
    return {key: raw[key] for key in (*spec.shapes, sources.SIZE) if key in raw}

  def train_batch(feed, step, keys, frozen):
    raw = feed.raw_batch(step)
    if mixer is not None:
      raw = mixer.mix(raw, frozen[synthetic.NAME], step)
    raw = jax.lax.with_sharding_constraint(raw, train_batch_sharding)
    example_keys = preprocess.train_example_keys(keys.train_data, raw[pipeline.EPOCH], raw[pipeline.POSITION])
    return preprocess.apply(model_arrays(raw), example_keys, options, training=True)

  def train_step(state, feed, keys, frozen):
    batch = train_batch(feed, state.step, keys, frozen)
    key = jax.random.fold_in(keys.train, state.step)
    if trainer.frozen_networks:
      return trainer.train_step(state, batch, key, {name: frozen[name] for name in trainer.frozen_networks})
    return trainer.train_step(state, batch, key)

  def preprocess_eval(raw, keys, options):
    example_keys = preprocess.eval_example_keys(keys.eval_data, raw[pipeline.INDEX])
    batch = preprocess.apply(model_arrays(raw), example_keys, options, training=False)
    return {**batch, pipeline.MASK: raw[pipeline.MASK]}

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
      keys=keys,
      preprocess_options=options,
      frozen_networks=frozen_networks,
      mixer=mixer,
      _init=jax.jit(trainer.init, out_shardings=state_sharding),
      # The feed's arrays keep the shardings they were placed with (batch-sharded or replicated).
      jitted_train_step=jax.jit(train_step, out_shardings=(state_sharding, replicated), donate_argnums=(0,)),
      eval_step=jax.jit(
          trainer.eval_step, in_shardings=(state_sharding, batch_sharding, replicated), out_shardings=replicated
      ),
      _train_batch=jax.jit(train_batch, out_shardings=train_batch_sharding),
      _preprocess_eval=jax.jit(preprocess_eval, static_argnums=2, out_shardings=batch_sharding),
  )
