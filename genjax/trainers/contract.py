"""The trainer contract: the pure functions every family provides, and the optional capabilities some offer.

A trainer is a bundle of pure functions over a state pytree; `genjax.experiment` jits and shards them, the loop
drives them, and evaluators and tools use the capabilities. Consumers ask whether a trainer has a capability
(`trainer.sampler is not None`), never which family it is.

Batches are dicts of arrays keyed as in `sources.ExampleSpec` ("image" or "point", "label" for labelled data):
- `train_step` receives `batches_per_step` batches stacked: `[k, B, ...]` (k = 1 for most families; a GAN's
  critic takes k = n_critic real batches, one per critic update);
- `eval_step` receives one batch `[B, ...]` plus `batch["mask"]`, 1.0 for real examples and 0.0 for padding.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from genjax.data import degradations

State = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Decoder:
  """Latent codes -> examples: what interpolation walks through.

  decode:      (state, latents `[N, latent_size]`, labels `[N]` or None) -> examples in the data's range.
  latent_size: the size of the codes.
  num_classes: > 0 for a class-conditional decoder, which needs labels.
  """

  decode: Callable[[State, jax.Array, jax.Array | None], jax.Array]
  latent_size: int
  num_classes: int = 0


@dataclasses.dataclass(frozen=True)
class Sampler:
  """Draws examples: a GAN's generator (its weight average), a VAE's prior through its decoder, a diffusion model's
  reverse process.

  generate: (state, key, num_examples) -> examples in the data's range; num_examples is static under jit.
            A class-conditional model draws class by class (`class_by_class`); its decoder's
            `num_classes` says how many classes there are (a sample grid has one row per class).
  protocol: how samples are drawn, where the config leaves a choice (a diffusion model's sampler, steps, guidance
            and weights), for the record of evaluations that score samples.
  """

  generate: Callable[[State, jax.Array, int], jax.Array]
  protocol: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def class_by_class(num_examples: int, num_classes: int) -> jax.Array | None:
  """The labels a class-conditional sampler draws `num_examples` of: class by class, num_examples // num_classes of
  each (at least one), then the remainder from the first classes, so that a grid of num_examples // num_classes
  columns has a row per class; None for an unconditional model (`num_classes` 0)."""
  if not num_classes:
    return None
  return (jnp.arange(num_examples) // max(1, num_examples // num_classes)) % num_classes


@dataclasses.dataclass(frozen=True)
class StyleSpace:
  """A generator with an intermediate latent space W between a mapping and a synthesis network (StyleGAN's), which
  truncation and style mixing act on.

  map:        (state, latents `[N, latent_size]`, labels `[N]` or None) -> w `[N, w_size]`.
  synthesize: (state, ws `[N, num_layers, w_size]`, one w per layer, coarse to fine) -> examples in the data's range,
              deterministic (fixed noise inputs).
  w_mean:     state -> `[w_size]`, the mean w that truncation pulls towards.
  num_layers: the ws that `synthesize` reads.
  """

  map: Callable[[State, jax.Array, jax.Array | None], jax.Array]
  synthesize: Callable[[State, jax.Array], jax.Array]
  w_mean: Callable[[State], jax.Array]
  num_layers: int


@dataclasses.dataclass(frozen=True)
class Encoder:
  """Examples -> codes, and back.

  encode:      (state, images) -> codes `[N, latent_size]` (a VAE's posterior mean).
  reconstruct: (state, images) -> images in the data's pixel range.
  corrupt:     (images, key) -> the inputs the model learnt to reconstruct `images` from (a denoising
               autoencoder's noisy images), or None for a model given the images themselves.
  """

  encode: Callable[[State, jax.Array], jax.Array]
  reconstruct: Callable[[State, jax.Array], jax.Array]
  corrupt: Callable[[jax.Array, jax.Array], jax.Array] | None = None


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """Upper bounds on -log p(x), per example, each under a name of its own (a VAE's "neg_elbo" and "iwae", a
  diffusion model's "vlb"), so that the bounds of every family sit in one table.

  bounds:   (state, images, key, num_samples) -> dict of `[N]` arrays: `<name>_nats` (nats per example) and
            `<name>_bits_per_dim` for each of `names`; num_samples is static under jit.
  names:    the bounds' names.
  protocol: num_samples -> how the bounds were computed, for the record (what num_samples means to the model, or
            that it means nothing to it).
  """

  bounds: Callable[[State, jax.Array, jax.Array, int], dict[str, jax.Array]]
  names: tuple[str, ...]
  protocol: Callable[[int], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Features:
  """A feature space for comparing images (a classifier's penultimate activations).

  features:    (params, images in `pixel_range`) -> `[N, D]`, deterministic.
  params:      state -> the parameters that `features` takes (what a weight hash covers).
  pixel_range: the pixel range the images must be in.
  classify:    (params, images in `pixel_range`) -> class logits `[N, K]`, deterministic: what the network reads
               in an image (a classifier's), or None.
  """

  features: Callable[[Any, jax.Array], jax.Array]
  params: Callable[[State], Any]
  pixel_range: tuple[float, float]
  classify: Callable[[Any, jax.Array], jax.Array] | None = None


@dataclasses.dataclass(frozen=True)
class Critic:
  """How real examples look to a GAN's critic, without labels (an unconditional critic).

  score: (state, examples) -> `[N]` critic logits in inference mode, higher for more real-looking examples.
  """

  score: Callable[[State, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Restorer:
  """Undoes a degradation of images in [0, 1].

  degradation: the task's record in `degradations.TASKS`: what else follows from the degradation (whether restoring
               needs a mask, the space scores are computed in, the classical baselines).
  degrade:     (clean `[N, H, W, C]`, key) -> (degraded, mask `[N, H, W, 1]` or None): the degradation trained on.
  restore:     (state, degraded, mask or None) -> restored `[N, scale * H, scale * W, C]`; any H and W that
               `multiple` divides (the networks are fully convolutional).
  scale:       the factor restoring enlarges images by (the super-resolution factor; 1 for the other tasks).
  multiple:    what image sides must be a multiple of.
  """

  degradation: degradations.Degradation
  degrade: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array | None]]
  restore: Callable[[State, jax.Array, jax.Array | None], jax.Array]
  scale: int = 1
  multiple: int = 1


# The directions of a translator: from the "image" field's domain (A) to the "target" field's (B), and back.
A_TO_B, B_TO_A = "a_to_b", "b_to_a"


@dataclasses.dataclass(frozen=True)
class Translator:
  """Translates images of one domain into the other's (pix2pix one way, CycleGAN both).

  translate:  (state, images `[N, H, W, C]` in the data's pixel range, direction) -> images of the other domain,
              same N, H and W; direction (one of `directions`) is static under jit; any H and W that `multiple`
              divides (the networks are fully convolutional).
  directions: the directions offered, among `A_TO_B` and `B_TO_A`.
  multiple:   what image sides must be a multiple of.
  """

  translate: Callable[[State, jax.Array, str], jax.Array]
  directions: tuple[str, ...]
  multiple: int = 1


@dataclasses.dataclass(frozen=True)
class FrozenNetwork:
  """A network that train steps use but never train: a pretrained feature network (VGG, the FID Inception) or
  another run's generator.

  `genjax.experiment` loads it once, places it on the mesh by the config's sharding rules and passes it to the
  jitted step as an argument, so that its weights are never compiled into the program as constants, never
  checkpointed with the train state and never counted as parameters.

  load:        (the run's `DataSource`, or None where there is none, as in the benchmark) -> a pytree of arrays;
               raises `UserError` for weights that are missing or do not fit the data.
  description: where the weights come from, for the log.
  """

  load: Callable[[Any], Any]
  description: str


@dataclasses.dataclass(frozen=True)
class Trainer:
  """One family's pure functions and capabilities.

  init:             key -> state.
  train_step:       (state, batch `[k, B, ...]`, key) -> (state, metrics); metrics are scalar batch means. A
                    trainer with `frozen_networks` takes their loaded weights as a fourth argument, a dict by name.
  eval_step:        (state, batch `[B, ...]` with "mask", key) -> sums over the real examples of per-example
                    metrics, plus their number under "count", so that any split size averages exactly.
  batches_per_step: k, the batches that one train step takes.
  param_fields:     the state fields that hold trainable parameters (what the parameter count counts).
  progress_metrics: the train metrics that the console's progress line shows.
  needs_labels:     whether the steps read `batch["label"]` (class-conditional models, classifiers).
  frozen_networks:  the networks, by name, that `train_step` uses but does not train (see `FrozenNetwork`).
  decoder, sampler, encoder, likelihood, features, critic, restorer, translator, style_space: capabilities, None
                    where the family has none.
  warm_start:       (fresh state, another run's state) -> the fresh state with the weights it takes from the other
                    run (`config.init_from`: ESRGAN's adversarial phase starts from a network trained on pixels),
                    or None where the family cannot start from another run.
  """

  init: Callable[[jax.Array], State]
  train_step: Callable[[State, Batch, jax.Array], tuple[State, Metrics]]
  eval_step: Callable[[State, Batch, jax.Array], Metrics]
  batches_per_step: int = 1
  param_fields: tuple[str, ...] = ("params",)
  progress_metrics: tuple[str, ...] = ("loss",)
  needs_labels: bool = False
  frozen_networks: Mapping[str, FrozenNetwork] = dataclasses.field(default_factory=dict)
  decoder: Decoder | None = None
  sampler: Sampler | None = None
  encoder: Encoder | None = None
  likelihood: Likelihood | None = None
  features: Features | None = None
  critic: Critic | None = None
  restorer: Restorer | None = None
  translator: Translator | None = None
  style_space: StyleSpace | None = None
  warm_start: Callable[[State, State], State] | None = None

  def num_params(self, state: State) -> int:
    """The number of trainable parameters in `state` (abstract or concrete)."""
    return sum(leaf.size for field in self.param_fields for leaf in jax.tree.leaves(getattr(state, field)))
