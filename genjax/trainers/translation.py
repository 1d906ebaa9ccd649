"""Translation family: networks that turn images of one domain (the "image" field, A) into another's (the "target"
field, B), composed of the adversarial kit (`trainers.adversarial`) and the shared optimiser update
(`trainers.common`). `config.translation.method` chooses the method, each as its reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix) trains it:

- pix2pix (Isola et al. 2017), paired data: one generator G: A -> B and a conditional PatchGAN critic that sees
  the input beside the real or translated output. Per step, the critic's update on (A, B) and (A, G(A)), then the
  generator's on its adversarial loss plus `l1_weight` (100) times the L1 distance of G(A) to B. No pool of fakes.
- cyclegan (Zhu et al. 2017), unpaired data: generators G: A -> B and F: B -> A, and unconditional critics of each
  domain. Per step, first the generators' update on their adversarial losses, `cycle_weight` (10) times the cycle
  errors |F(G(A)) - A| and |G(F(B)) - B|, and `identity_weight * cycle_weight` (0.5 x 10) times the identity errors
  |G(B) - B| and |F(A) - A|; then each critic's update on real images of its domain and the generator's fakes, drawn
  through a pool of `pool_size` (50) past fakes (Shrivastava et al. 2017), which lives on the device in the train
  state (`ImagePool`), so the step stays jitted and a resumed run draws what an unbroken one draws.

Generators are held by direction (`contract.A_TO_B`, `contract.B_TO_A`) and critics by the domain they judge
("a", "b"), each with its own parameters and optimiser state. The critic's loss is `config.translation.loss`
(non_saturating for pix2pix, least_squares for CycleGAN); the reference halves its critics' losses, which Adam's
invariance to the scale of a loss makes moot. `adversarial_weight` scales the generators' adversarial terms against
the reconstruction terms: 2 for least squares, whose `losses.generator_loss` is (D - 1)^2 / 2 where the reference's
MSE is (D - 1)^2. Pixels are in [-1, 1] (the generators end in tanh). The trainer translates (`contract.Translator`).
"""

import dataclasses
from collections.abc import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax import losses
from genjax.data import sources
from genjax.models import translators
from genjax.trainers import adversarial
from genjax.trainers import common
from genjax.trainers import contract

A, B = "a", "b"  # The domains: A is the "image" field's, B the "target" field's.

GENERATORS = {
    "unet": lambda model, channels: translators.UNetGenerator(
        channels, model.num_downs, model.g_features, model.norm, model.dropout
    ),
    "resnet": lambda model, channels: translators.ResNetGenerator(
        channels, model.num_blocks, model.g_features, model.norm, model.dropout
    ),
}


@flax.struct.dataclass
class ImagePool:
  """A history of past fakes on the device: `images` `[pool_size, H, W, C]`, of which the first `count` are
  stored."""

  images: jax.Array
  count: jax.Array

  @classmethod
  def empty(cls, size: int, image_shape: tuple[int, int, int]) -> "ImagePool":
    return cls(jnp.zeros((size, *image_shape), jnp.float32), jnp.zeros((), jnp.int32))


def pool_query(pool: ImagePool, fakes: jax.Array, key: jax.Array) -> tuple[ImagePool, jax.Array]:
  """The pool after taking `fakes` `[N, H, W, C]`, and the fakes a critic sees instead, one by one in order as the
  reference's `ImagePool.query`: while the pool is not full each fake is stored and shown; once it is full, with
  probability 1/2 a stored fake drawn uniformly is shown and the new one takes its place, else the new one is shown.
  """
  size = pool.images.shape[0]

  def one(pool, inputs):
    fake, key = inputs
    swap_key, index_key = jax.random.split(key)
    filling = pool.count < size
    swap = jax.random.bernoulli(swap_key) & ~filling
    index = jnp.where(filling, pool.count, jax.random.randint(index_key, (), 0, size))
    stored = pool.images[index]
    images = pool.images.at[index].set(jnp.where(filling | swap, fake, stored))
    return ImagePool(images, jnp.minimum(pool.count + 1, size)), jnp.where(swap, stored, fake)

  return jax.lax.scan(one, pool, (fakes, jax.random.split(key, fakes.shape[0])))


@flax.struct.dataclass
class TranslationState:
  """Generators by direction and critics by the domain they judge: their parameters, batch statistics and
  optimiser states (dicts of the same keys), and the critics' pools of past fakes by domain (empty without)."""

  step: jax.Array
  g_params: dict
  g_batch_stats: dict
  g_opt_state: dict
  d_params: dict
  d_batch_stats: dict
  d_opt_state: dict
  pools: dict


@dataclasses.dataclass(frozen=True)
class Method:
  """What a method is: the generators' directions, the critics' domains, whether the critic sees the input
  (conditional), and its train step given the pieces that `make_trainer` builds."""

  directions: tuple[str, ...]
  critic_domains: tuple[str, ...]
  conditional: bool
  make_train_step: Callable[..., Callable]
  progress_metrics: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Pieces:
  """What both methods' steps use: the generators' application, the critics' training, the losses' weights, the
  generators' optimiser."""

  generate: Callable  # (g_params, g_batch_stats, images, key, train) -> (images, g_batch_stats) of one direction.
  critic_training: adversarial.CriticTraining
  g_optimizer: optax.GradientTransformation
  options: ml_collections.ConfigDict


def _rbg_key(key: jax.Array) -> jax.Array:
  """An RBG key made from a threefry `key`, deterministically, for the initial weights: XLA on CPU takes seconds to
  compile each threefry draw and little for an RBG one (measured: 17 s to compile a 1-block ResNet generator's
  initialisation with threefry, 3 s with RBG)."""
  return jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl="rbg")


def _l1(x: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.mean(jnp.abs(x - y))


def _update_each(params: dict, opt_state: dict, grads: dict, optimizer) -> tuple[dict, dict]:
  """One optimiser update per network of a dict, each on its own optimiser state."""
  updated = {name: common.apply_gradients(params[name], opt_state[name], grads[name], optimizer) for name in params}
  return {name: pair[0] for name, pair in updated.items()}, {name: pair[1] for name, pair in updated.items()}


def _pix2pix_train_step(pieces: _Pieces):
  options, training = pieces.options, pieces.critic_training

  def train_step(state, batch, key):
    real_a, real_b = batch[sources.IMAGE][0], batch[sources.TARGET][0]
    dropout_key, critic_key = jax.random.split(key)
    # One forward pass of the generator serves the critic's update and, through its VJP, the generator's.
    (fake_b, g_batch_stats), generator_vjp = jax.vjp(
        lambda g_params: pieces.generate(g_params, state.g_batch_stats[contract.A_TO_B], real_a, dropout_key, True),
        state.g_params[contract.A_TO_B],
    )
    d_params, d_batch_stats, d_opt_state, metrics = adversarial.critic_update(
        training,
        state.d_params[B],
        state.d_batch_stats[B],
        state.d_opt_state[B],
        real=real_b,
        fakes=fake_b,
        conditioning=real_a,
        key=critic_key,
        update_index=state.step,
    )

    def g_loss_fn(fakes):
      adversarial_loss = adversarial.generator_loss(training, d_params, d_batch_stats, fakes, real_a)
      l1 = _l1(fakes, real_b)
      return options.adversarial_weight * adversarial_loss + options.l1_weight * l1, (adversarial_loss, l1)

    (g_loss, (g_adversarial, l1)), fakes_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake_b)
    (grads,) = generator_vjp((fakes_grad, jax.tree.map(jnp.zeros_like, g_batch_stats)))
    g_params, g_opt_state = common.apply_gradients(
        state.g_params[contract.A_TO_B], state.g_opt_state[contract.A_TO_B], grads, pieces.g_optimizer
    )
    metrics.update(loss=g_loss, g_loss=g_loss, g_adversarial=g_adversarial, l1=l1, g_grad_norm=optax.tree.norm(grads))
    return (
        state.replace(
            step=state.step + 1,
            g_params={contract.A_TO_B: g_params},
            g_batch_stats={contract.A_TO_B: g_batch_stats},
            g_opt_state={contract.A_TO_B: g_opt_state},
            d_params={B: d_params},
            d_batch_stats={B: d_batch_stats},
            d_opt_state={B: d_opt_state},
        ),
        metrics,
    )

  return train_step


def _cyclegan_train_step(pieces: _Pieces):
  options, training = pieces.options, pieces.critic_training
  cycle_weight, identity_weight = options.cycle_weight, options.identity_weight * options.cycle_weight

  def train_step(state, batch, key):
    real = {A: batch[sources.IMAGE][0], B: batch[sources.TARGET][0]}
    keys = dict(zip(("g", A, B, "pool_a", "pool_b"), jax.random.split(key, 5)))
    generator_keys = iter(jax.random.split(keys["g"], 6))

    def g_loss_fn(g_params):
      batch_stats = dict(state.g_batch_stats)

      def generate(direction, images):
        output, batch_stats[direction] = pieces.generate(
            g_params[direction], batch_stats[direction], images, next(generator_keys), True
        )
        return output

      fake = {B: generate(contract.A_TO_B, real[A]), A: generate(contract.B_TO_A, real[B])}
      cycle = {A: _l1(generate(contract.B_TO_A, fake[B]), real[A]), B: _l1(generate(contract.A_TO_B, fake[A]), real[B])}
      identity = {A: jnp.zeros(()), B: jnp.zeros(())}
      if identity_weight:  # A generator given an image of its own output domain should leave it as it is.
        identity = {
            A: _l1(generate(contract.B_TO_A, real[A]), real[A]),
            B: _l1(generate(contract.A_TO_B, real[B]), real[B]),
        }
      adversarial_losses = {
          domain: adversarial.generator_loss(
              training, state.d_params[domain], state.d_batch_stats[domain], fake[domain], None
          )
          for domain in (A, B)
      }
      total = sum(
          options.adversarial_weight * adversarial_losses[domain]
          + cycle_weight * cycle[domain]
          + identity_weight * identity[domain]
          for domain in (A, B)
      )
      metrics = {
          "g_loss": total,
          "g_adversarial_a": adversarial_losses[A],
          "g_adversarial_b": adversarial_losses[B],
          "cycle_a": cycle[A],
          "cycle_b": cycle[B],
          "identity_a": identity[A],
          "identity_b": identity[B],
      }
      return total, (metrics, fake, batch_stats)

    grads, (metrics, fake, g_batch_stats) = jax.grad(g_loss_fn, has_aux=True)(state.g_params)
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    g_params, g_opt_state = _update_each(state.g_params, state.g_opt_state, grads, pieces.g_optimizer)

    d_params, d_batch_stats, d_opt_state, pools = {}, {}, {}, dict(state.pools)
    for domain in (A, B):
      fakes = fake[domain]
      if domain in pools:
        pools[domain], fakes = pool_query(pools[domain], fakes, keys[f"pool_{domain}"])
      d_params[domain], d_batch_stats[domain], d_opt_state[domain], critic_metrics = adversarial.critic_update(
          training,
          state.d_params[domain],
          state.d_batch_stats[domain],
          state.d_opt_state[domain],
          real=real[domain],
          fakes=fakes,
          conditioning=None,
          key=keys[domain],
          update_index=state.step,
      )
      metrics.update({f"{name}_{domain}": value for name, value in critic_metrics.items()})
    metrics["d_loss"] = 0.5 * (metrics["d_loss_a"] + metrics["d_loss_b"])
    metrics["cycle"] = 0.5 * (metrics["cycle_a"] + metrics["cycle_b"])
    metrics["loss"] = metrics["g_loss"]
    new_state = TranslationState(
        step=state.step + 1,
        g_params=g_params,
        g_batch_stats=g_batch_stats,
        g_opt_state=g_opt_state,
        d_params=d_params,
        d_batch_stats=d_batch_stats,
        d_opt_state=d_opt_state,
        pools=pools,
    )
    return new_state, metrics

  return train_step


METHODS = {
    "pix2pix": Method((contract.A_TO_B,), (B,), True, _pix2pix_train_step, ("d_loss", "g_loss", "l1")),
    "cyclegan": Method(
        (contract.A_TO_B, contract.B_TO_A), (A, B), False, _cyclegan_train_step, ("d_loss", "g_loss", "cycle")
    ),
}


def check_config(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> None:
  """Refuses names that do not exist and settings that cannot work, before anything compiles."""
  options, model = config.translation, config.model
  for value, valid, key in [
      (options.method, tuple(METHODS), "translation.method"),
      (options.loss, losses.GAN_LOSSES, "translation.loss"),
      (model.generator, tuple(GENERATORS), "model.generator"),
      (model.norm, translators.NORMS, "model.norm"),
  ]:
    if value not in valid:
      raise errors.UserError(f"config.{key}={value!r} is not one of {', '.join(valid)}.")
  for key in ("adversarial_weight", "l1_weight", "cycle_weight", "identity_weight", "pool_size"):
    if options[key] < 0:
      raise errors.UserError(f"config.translation.{key}={options[key]} must be 0 or more.")
  if not 0.0 <= model.dropout < 1.0:
    raise errors.UserError(f"config.model.dropout={model.dropout} must be in [0, 1).")
  if tuple(config.data.pixel_range) != (-1.0, 1.0):
    raise errors.UserError("Translators end in tanh: set config.data.pixel_range=(-1.0, 1.0).")
  fields = spec.image_fields
  if sources.IMAGE not in fields or sources.TARGET not in fields:
    raise errors.UserError(
        f"Translation trains on examples of an input and a target (image fields {sources.IMAGE!r} and "
        f"{sources.TARGET!r}: a pairs:, sidebyside:, unpaired: or known_map: source); {config.data.name!r} has "
        f"{', '.join(fields) or 'none'}."
    )
  multiple = _generator(config, spec).multiple
  height, width, _ = spec.data_shape
  if height % multiple or width % multiple:
    raise errors.UserError(
        f"The {model.generator} generator takes images whose sides are multiples of {multiple}; the training "
        f"images are {height}x{width}: set config.data.patch_size (or image_size) to a multiple of {multiple}."
    )


def _generator(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> nn.Module:
  return GENERATORS[config.model.generator](config.model, spec.fields[sources.TARGET].shape[-1])


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the translation family's pure functions for examples of `spec` ("image" and "target"). It translates
  (`contract.Translator`)."""
  check_config(config, spec)
  options, model = config.translation, config.model
  method = METHODS[options.method]
  generator = _generator(config, spec)
  critic = translators.PatchDiscriminator(model.d_features, model.d_layers, model.norm)
  apply_generator = common.mixed_precision(generator.apply, model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)
  apply_critic = common.mixed_precision(critic.apply, model.dtype)
  critic_training = adversarial.CriticTraining(apply_critic, options.loss, optimizer)
  image_shape = spec.fields[sources.IMAGE].shape

  def generate(g_params, g_batch_stats, images, key, train):
    variables = {"params": g_params, "batch_stats": g_batch_stats}
    if not train:
      return apply_generator(variables, images, train=False), g_batch_stats
    outputs, updates = apply_generator(variables, images, train=True, mutable=["batch_stats"], rngs={"dropout": key})
    return outputs, updates.get("batch_stats", g_batch_stats)

  def init_each(init_one, names, key):
    """`init_one(key)` for each of `names`, with keys of their own, vectorised (one network's initialisation to
    compile, not one per network)."""
    stacked = jax.vmap(init_one)(jax.random.split(key, len(names)))
    return {name: jax.tree.map(lambda leaf: leaf[index], stacked) for index, name in enumerate(names)}

  def init(key):
    key = _rbg_key(key)
    g_key, d_key = jax.random.split(key)
    example = jnp.zeros((1, *image_shape))
    conditioning = example if method.conditional else None
    g_variables = init_each(lambda key: generator.init(key, example, train=False), method.directions, g_key)
    d_variables = init_each(
        lambda key: critic.init(key, example, conditioning, train=False), method.critic_domains, d_key
    )
    g_params = {name: variables["params"] for name, variables in g_variables.items()}
    d_params = {name: variables["params"] for name, variables in d_variables.items()}
    pools = {}
    if options.pool_size:
      pools = {domain: ImagePool.empty(options.pool_size, image_shape) for domain in method.critic_domains}
    return TranslationState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        g_batch_stats={name: variables.get("batch_stats", {}) for name, variables in g_variables.items()},
        g_opt_state={name: optimizer.init(params) for name, params in g_params.items()},
        d_params=d_params,
        d_batch_stats={name: variables.get("batch_stats", {}) for name, variables in d_variables.items()},
        d_opt_state={name: optimizer.init(params) for name, params in d_params.items()},
        pools=pools,
    )

  def translate(state, images, direction):
    return generate(state.g_params[direction], state.g_batch_stats[direction], images, None, False)[0]

  def eval_step(state, batch, key):
    """Per example: with pix2pix the L1 error and PSNR (on [0, 1]) of G(A) against its target; with CycleGAN the
    cycle errors of both domains. "loss" is the first of them (L1 or the mean cycle error)."""
    del key
    real_a, real_b = batch[sources.IMAGE], batch[sources.TARGET]
    per_image_l1 = lambda x, y: jnp.mean(jnp.abs(x - y), axis=(1, 2, 3))
    fake_b = translate(state, real_a, contract.A_TO_B)
    if contract.B_TO_A not in method.directions:
      mse = jnp.mean(jnp.square((jnp.clip(fake_b, -1.0, 1.0) - real_b) / 2.0), axis=(1, 2, 3))
      l1 = per_image_l1(fake_b, real_b)
      per_example = {"loss": l1, "l1": l1, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}
    else:
      cycle_a = per_image_l1(translate(state, fake_b, contract.B_TO_A), real_a)
      cycle_b = per_image_l1(translate(state, translate(state, real_b, contract.B_TO_A), contract.A_TO_B), real_b)
      per_example = {"loss": 0.5 * (cycle_a + cycle_b), "cycle_a": cycle_a, "cycle_b": cycle_b}
    return common.masked_sums(per_example, batch["mask"])

  pieces = _Pieces(generate, critic_training, optimizer, options)
  return contract.Trainer(
      init,
      method.make_train_step(pieces),
      eval_step,
      param_fields=("g_params", "d_params"),
      progress_metrics=method.progress_metrics,
      translator=contract.Translator(translate, method.directions, generator.multiple),
  )
