"""Generated training data: a trained class-conditional generator, frozen, as a second source of labelled examples
that replace a share of every train batch (`config.data.synthetic`).

This is how a generator is used for data augmentation and for the Classification Accuracy Score (Ravuri & Vinyals
2019: a classifier trained on generated images only, tested on real ones). Examples are drawn on the device inside
the jitted train step, from the step's own key (so a resumed run draws exactly what an unbroken one draws), and
enter as raw examples: images quantised to uint8 as stored images are, so that the same preprocessing and
augmentation apply to generated and real examples alike. Each of the k batches of a step keeps its first
`B - n` real examples and takes n generated ones after them, n = round(fraction * B); the real examples a step
skips are visited in later epochs, since the real stream advances by whole batches.

It owns loading and checking the generator (a run's workdir) and the feed that mixes; what a generator is belongs
to its trainer (`contract.Decoder`), the order of the real examples to `genjax.data.pipeline`.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import errors
from genjax import experiment
from genjax import runs
from genjax.data import sources

LABEL_DRAWS = ("uniform", "real")
# Keeps the generated examples' draws apart from the other uses of the config's seed.
_SYNTHETIC_STREAM = 0x5E17


@dataclasses.dataclass(frozen=True)
class Generator:
  """A frozen class-conditional generator on the training mesh.

  decode:      (state, latents `[N, latent_size]` from N(0, I), labels `[N]`) -> examples in `pixel_range`.
  state:       its train state, replicated on the training mesh.
  pixel_range: the range of the images it makes (None for points, which are stored as they are made).
  description: where it came from, for the log.
  """

  decode: Callable[[Any, jax.Array, jax.Array], jax.Array]
  state: Any
  latent_size: int
  pixel_range: tuple[float, float] | None
  description: str


def load_generator(config: ml_collections.ConfigDict, data: sources.DataSource, built: experiment.Experiment):
  """The generator of `config.data.synthetic.workdir` checked against the real data, or None when unset.

  Raises `UserError` when the workdir is not a genjax run, its model is not a class-conditional generator, or its
  examples' shape or classes differ from the real data's.
  """
  synthetic = config.data.synthetic
  if not synthetic.workdir:
    return None
  if not 0.0 <= synthetic.fraction <= 1.0:
    raise errors.UserError(f"config.data.synthetic.fraction={synthetic.fraction} must be in [0, 1].")
  if synthetic.labels not in LABEL_DRAWS:
    raise errors.UserError(f"config.data.synthetic.labels={synthetic.labels!r} is not one of {', '.join(LABEL_DRAWS)}.")
  if not data.spec.has_labels:
    raise errors.UserError(
        f"config.data.synthetic draws labelled examples from a class-conditional generator; {data.name!r} has no "
        "labels to train them beside."
    )
  run = runs.load(synthetic.workdir, devices=built.mesh.devices.flatten().tolist())
  trainer = run.experiment.trainer
  decoder = trainer.decoder
  if trainer.sampler is None or decoder is None or not decoder.num_classes:
    raise errors.UserError(
        f"config.data.synthetic.workdir={synthetic.workdir!r} holds a {run.config.family!r} run, not a "
        "class-conditional generator; train one, e.g. configs/gan.py:runlocal,conditional."
    )
  if decoder.num_classes != data.spec.num_classes:
    raise errors.UserError(
        f"The generator in {synthetic.workdir!r} makes {decoder.num_classes} classes; {data.name!r} has "
        f"{data.spec.num_classes}."
    )
  stored_shape = tuple(np.shape(data.train[0][data.spec.data_key]))
  if tuple(run.data.spec.data_shape) != stored_shape:
    raise errors.UserError(
        f"The generator in {synthetic.workdir!r} makes examples of shape {tuple(run.data.spec.data_shape)}; "
        f"{data.name!r} stores them as {stored_shape}."
    )
  return Generator(
      decode=decoder.decode,
      state=jax.device_put(run.state, built.replicated),
      latent_size=decoder.latent_size,
      pixel_range=tuple(run.config.data.pixel_range) if data.spec.is_image else None,
      description=f"{synthetic.workdir} at step {run.step}",
  )


@flax.struct.dataclass
class MixedFeed:
  """A real feed (`pipeline.HostFeed` or `pipeline.DeviceFeed`) whose raw batches end in generated examples.

  class_probabilities: `[num_classes]`, the distribution the generated labels are drawn from.
  """

  real: Any
  generator_state: Any
  key: jax.Array
  class_probabilities: jax.Array
  decode: Callable = flax.struct.field(pytree_node=False)
  num_generated: int = flax.struct.field(pytree_node=False)
  latent_size: int = flax.struct.field(pytree_node=False)
  data_key: str = flax.struct.field(pytree_node=False)
  pixel_range: tuple[float, float] | None = flax.struct.field(pytree_node=False)

  def raw_batch(self, step: jax.Array) -> dict[str, jax.Array]:
    """The real feed's raw batch `[k, B, ...]` of `step` with its last `num_generated` examples of each of the k
    batches generated (the keys follow the step)."""
    raw = dict(self.real.raw_batch(step))
    if not self.num_generated:
      return raw
    num_batches, batch_size = raw[sources.LABEL].shape
    shape = (num_batches, self.num_generated)
    label_key, latent_key = jax.random.split(jax.random.fold_in(self.key, step))
    labels = jax.random.categorical(label_key, jnp.log(self.class_probabilities), shape=shape).astype(jnp.int32)
    latents = jax.random.normal(latent_key, (*shape, self.latent_size))
    examples = self.decode(self.generator_state, latents.reshape(-1, self.latent_size), labels.reshape(-1))
    if self.pixel_range is not None:
      examples = _as_stored_pixels(examples, self.pixel_range)
    examples = examples.reshape(*shape, *examples.shape[1:]).astype(raw[self.data_key].dtype)
    kept = batch_size - self.num_generated
    raw[self.data_key] = jnp.concatenate([raw[self.data_key][:, :kept], examples], axis=1)
    raw[sources.LABEL] = jnp.concatenate([raw[sources.LABEL][:, :kept], labels], axis=1)
    return raw


def _as_stored_pixels(images: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """Images in `pixel_range` -> uint8 values as images are stored (rounded, clipped)."""
  low, high = pixel_range
  return jnp.round(jnp.clip((images - low) / (high - low), 0.0, 1.0) * 255).astype(jnp.uint8)


class MixedInput:
  """A train input (see `pipeline.open_train_input`) whose feeds mix in `generator`'s examples."""

  def __init__(
      self,
      real_input,
      generator: Generator,
      config: ml_collections.ConfigDict,
      data: sources.DataSource,
      built: experiment.Experiment,
  ):
    synthetic = config.data.synthetic
    self._real_input = real_input
    num_generated = round(synthetic.fraction * config.train.batch_size)
    if synthetic.labels == "real":
      labels = np.array([int(data.train[index][sources.LABEL]) for index in range(len(data.train))])
      probabilities = np.bincount(labels, minlength=data.spec.num_classes) / len(labels)
    else:
      probabilities = np.full(data.spec.num_classes, 1.0 / data.spec.num_classes)
    key = jax.random.fold_in(jax.random.key(config.seed), _SYNTHETIC_STREAM)
    key, probabilities = jax.device_put((key, probabilities.astype(np.float32)), built.replicated)
    self._mix = functools.partial(
        MixedFeed,
        generator_state=generator.state,
        key=key,
        class_probabilities=probabilities,
        decode=generator.decode,
        num_generated=num_generated,
        latent_size=generator.latent_size,
        data_key=data.spec.data_key,
        pixel_range=generator.pixel_range,
    )
    share = num_generated / config.train.batch_size
    self.description = f"{real_input.description}, {share:.0%} of each batch generated by {generator.description}"
    logging.info("Training data: %s.", self.description)

  def feed(self, step: int) -> MixedFeed:
    return self._mix(self._real_input.feed(step))
