"""Generated training data: a trained class-conditional generator, frozen, as a second source of labelled examples
that replace a share of every train batch (`config.data.synthetic`).

This is how a generator is used for data augmentation and for the Classification Accuracy Score (Ravuri & Vinyals
2019: a classifier trained on generated images only, tested on real ones). Examples are drawn on the device inside
the jitted train step, from the step's own key (so a resumed run draws exactly what an unbroken one draws), and
enter as raw examples: images quantised to uint8 as stored images are, so that the same preprocessing and
augmentation apply to generated and real examples alike. Each of the k batches of a step keeps its first
`B - n` real examples and takes n generated ones after them, n = round(fraction * B); the real examples a step
skips are visited in later epochs, since the real stream advances by whole batches.

The generator reaches the step as a frozen network (`contract.FrozenNetwork`, see `genjax.experiment`): its weights
are an argument of the jitted step, not constants compiled into it, and not part of the train state. This module
owns checking and loading it (`mixer`, `Mixer.network`) and the mixing itself (`Mixer.mix`); what a generator is
belongs to its trainer (`contract.Decoder`), the order of the real examples to `genjax.data.pipeline`.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from genjax import checkpoint
from genjax import errors
from genjax import trainers
from genjax import workdirs
from genjax.data import sources
from genjax.trainers import contract

LABEL_DRAWS = ("uniform", "real")
# The name under which the generator reaches the train step (see `genjax.experiment`).
NAME = "synthetic_generator"
# Keeps the generated examples' draws apart from the other uses of the config's seed.
_SYNTHETIC_STREAM = 0x5E17


def mixer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> "Mixer | None":
  """The mixing that `config.data.synthetic` asks for on data of `spec`, or None when it names no generator.

  Raises `UserError`, before anything is read but the generator's config, for settings that cannot work and for
  a workdir that does not hold a class-conditional generator of `spec`'s classes.
  """
  synthetic = config.data.synthetic
  if not synthetic.workdir:
    return None
  if not 0.0 <= synthetic.fraction <= 1.0:
    raise errors.UserError(f"config.data.synthetic.fraction={synthetic.fraction} must be in [0, 1].")
  if synthetic.labels not in LABEL_DRAWS:
    raise errors.UserError(f"config.data.synthetic.labels={synthetic.labels!r} is not one of {', '.join(LABEL_DRAWS)}.")
  if not spec.has_labels:
    raise errors.UserError(
        f"config.data.synthetic draws labelled examples from a class-conditional generator; {config.data.name!r} "
        "has no labels to train them beside."
    )
  generator_config = workdirs.read_config(synthetic.workdir)
  generator_spec = workdirs.read_data_spec(synthetic.workdir, generator_config)
  trainer = trainers.make_trainer(generator_config, generator_spec)
  decoder = trainer.decoder
  if trainer.sampler is None or decoder is None or not decoder.num_classes:
    raise errors.UserError(
        f"config.data.synthetic.workdir={synthetic.workdir!r} holds a {generator_config.family!r} run, not a "
        "class-conditional generator; train one, e.g. configs/gan.py:runlocal,conditional."
    )
  if decoder.num_classes != spec.num_classes:
    raise errors.UserError(
        f"The generator in {synthetic.workdir!r} makes {decoder.num_classes} classes; {config.data.name!r} has "
        f"{spec.num_classes}."
    )
  return Mixer(
      config=config,
      decode=decoder.decode,
      init_generator=trainer.init,
      generator_spec=generator_spec,
      generator_config=generator_config,
      latent_size=decoder.latent_size,
      num_generated=round(synthetic.fraction * config.train.batch_size),
      data_key=spec.data_key,
  )


@dataclasses.dataclass(frozen=True)
class Mixer:
  """Mixes a frozen class-conditional generator's examples into raw train batches.

  decode:        (generator state, latents `[N, latent_size]` from N(0, I), labels `[N]`) -> examples in the
                 generator's data range.
  num_generated: n, the generated examples at the end of each batch.
  """

  config: ml_collections.ConfigDict
  decode: Callable[[object, jax.Array, jax.Array], jax.Array]
  init_generator: Callable
  generator_spec: sources.ExampleSpec
  generator_config: ml_collections.ConfigDict
  latent_size: int
  num_generated: int
  data_key: str

  @property
  def workdir(self) -> str:
    return self.config.data.synthetic.workdir

  @property
  def network(self) -> contract.FrozenNetwork:
    """The generator's newest checkpoint and the distribution its labels are drawn from, as a frozen network."""
    return contract.FrozenNetwork(load=self._load, description=f"the generator in {self.workdir}")

  @property
  def description(self) -> str:
    share = self.num_generated / self.config.train.batch_size
    return f"{share:.0%} of each batch generated by the generator in {self.workdir}"

  def _load(self, data: sources.DataSource | None) -> dict:
    """`{"state", "class_probabilities"}`, the generator checked against `data`'s stored examples (without data,
    as in the benchmark's synthetic batches, labels are drawn uniformly)."""
    num_classes = self.generator_spec.num_classes
    probabilities = np.full(num_classes, 1.0 / num_classes)
    if data is not None:
      stored_shape = tuple(np.shape(data.train[0][self.data_key]))
      if tuple(self.generator_spec.data_shape) != stored_shape:
        raise errors.UserError(
            f"The generator in {self.workdir!r} makes examples of shape {tuple(self.generator_spec.data_shape)}; "
            f"{data.name!r} stores them as {stored_shape}."
        )
      if self.config.data.synthetic.labels == "real":
        labels = np.array([int(data.train[index][sources.LABEL]) for index in range(len(data.train))])
        probabilities = np.bincount(labels, minlength=num_classes) / len(labels)
    abstract_state = jax.eval_shape(self.init_generator, jax.random.key(0))
    checkpointer = checkpoint.Checkpointer(str(epath.Path(self.workdir) / "checkpoints"), keep=1)
    try:
      step = checkpointer.latest_step()
      if step is None:
        raise errors.UserError(f"The run in {self.workdir!r} has no checkpoint yet; train it first.")
      host = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      shardings = jax.tree.map(lambda _: host, abstract_state)
      state = checkpointer.restore(step, checkpoint.abstract_with_shardings(abstract_state, shardings))
    except checkpoint.DamagedCheckpoint as damaged:
      raise errors.UserError(f"The generator's checkpoint in {self.workdir!r} is damaged ({damaged.reason}).") from None
    finally:
      checkpointer.close()
    return {"state": state, "class_probabilities": probabilities.astype(np.float32)}

  def mix(self, raw: dict[str, jax.Array], generator: dict, step: jax.Array) -> dict[str, jax.Array]:
    """The raw batch `[k, B, ...]` of `step` with its last `num_generated` examples of each of the k batches
    generated by the loaded `generator` (see `network`); the draws follow the step."""
    if not self.num_generated:
      return raw
    raw = dict(raw)
    num_batches, batch_size = raw[sources.LABEL].shape
    shape = (num_batches, self.num_generated)
    key = jax.random.fold_in(jax.random.key(self.config.seed), _SYNTHETIC_STREAM)
    label_key, latent_key = jax.random.split(jax.random.fold_in(key, step))
    log_probabilities = jnp.log(generator["class_probabilities"])
    labels = jax.random.categorical(label_key, log_probabilities, shape=shape).astype(jnp.int32)
    latents = jax.random.normal(latent_key, (*shape, self.latent_size))
    examples = self.decode(generator["state"], latents.reshape(-1, self.latent_size), labels.reshape(-1))
    if self.generator_spec.is_image:
      examples = _as_stored_pixels(examples, tuple(self.generator_config.data.pixel_range))
    examples = examples.reshape(*shape, *examples.shape[1:]).astype(raw[self.data_key].dtype)
    kept = batch_size - self.num_generated
    raw[self.data_key] = jnp.concatenate([raw[self.data_key][:, :kept], examples], axis=1)
    raw[sources.LABEL] = jnp.concatenate([raw[sources.LABEL][:, :kept], labels], axis=1)
    return raw


def _as_stored_pixels(images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """Images in `pixel_range` -> uint8 values as images are stored (rounded, clipped)."""
  low, high = pixel_range
  return jnp.round(jnp.clip((images - low) / (high - low), 0.0, 1.0) * 255).astype(jnp.uint8)
