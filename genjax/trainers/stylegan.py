"""StyleGAN2 family (`config.family = "stylegan2"`): Karras et al. 2020's training, composed of the adversarial kit.

A family of its own rather than an architecture of the GAN family: its generator is two networks with a space W
between them that training and sampling act on (style mixing, the tracked mean w, truncation), its generator has
its own lazy regulariser (path length, with a running mean in the state), and its critic sees augmented images
whose probability (ADA) is state too. Forcing those into `trainers.gan` would put branches on the architecture
through its step; instead this module composes the same pieces that `trainers.gan` does: `adversarial.critic_update`
(the non-saturating logistic loss and lazy R1 through `adversarial.Penalty(every=k)`), `adversarial.generator_loss`,
`common.apply_gradients` and `common.EMA`. What is StyleGAN2's own lives here:

- one critic update and one generator update per step (config.stylegan's r1_every and pl_every say when their
  lazy regularisers run, each with its weight times its interval);
- path-length regularisation (section 3.2): on a batch of batch_size / pl_batch_shrink latents, the image is
  projected on pixel noise y ~ N(0, I) / sqrt(H W), the length of its gradient with respect to w is pushed towards
  its running mean a (`pl_mean` in the state, a <- a + pl_decay * (mean length - a), updated before the penalty
  uses it, as in the official code), weight pl_weight;
- style mixing: with probability style_mixing, the ws from a crossover layer on come from a second latent;
- the generator's weight average by half-life in images with ramp-up (ema_half_life_images; ema_rampup r: the
  half-life is at most r times the images seen so far), and the running mean of w (decay w_avg_decay) that
  truncation pulls towards;
- Adam with the lazy-regularisation correction (section B of the paper): for a network whose regulariser runs every k
  steps, lr x c and betas^c with c = k / (k + 1). (The official code then takes the regulariser's gradient in a
  separate optimiser step; here it is added to the same step's gradient, as the kit's lazy penalties are);
- lazy regularisation through lax.cond, so that the steps between pay nothing for the regulariser; but XLA's CPU
  backend runs convolutions inside a conditional branch far slower than outside one (measured on this 2-core CPU
  under contention: a 3x3 convolution's double backward, batch 32, 16x16x64, 103 ms outside lax.cond against 20 s
  inside it with the tests' XLA flags, 4.5 s with the default ones), so on a CPU an interval of 1 (no conditional,
  the regulariser at every step) is the faster choice, which configs/stylegan2.py:runlocal makes;
- augmentation of the critic's inputs (`genjax.augment`): none, DiffAugment, or ADA, whose probability p is in the
  state and the metrics, adjusted every ada_every steps from the mean sign of the critic on augmented reals (the kit's
  d_real_sign) towards ada_target. R1 is taken with respect to the augmented reals (the official code differentiates
  through the augmentation to the unaugmented ones; for the pixel permutations of flips, rotations and translations
  the gradients' norms are the same).

Images whose side is below config.model.resolution (a power of two) are trained at it: generated at the resolution
and cut to the data's size in the centre, while the critic sees reals and fakes padded back to it with the low end
of the pixel range (MNIST's 28x28 digits on a 32x32 black canvas). Samples are clipped to the pixel range.
"""

import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import augment
from genjax import errors
from genjax.data import sources
from genjax.models import stylegan
from genjax.trainers import adversarial
from genjax.trainers import common
from genjax.trainers import contract


@flax.struct.dataclass
class StyleGANState:
  """Both networks' parameters and optimiser states, the generator's weight average, the tracked mean w, the
  path-length running mean, ADA's probability and the signs of the critic on reals since p was last adjusted."""

  step: jax.Array
  g_params: dict
  g_opt_state: optax.OptState
  g_ema_params: dict
  w_avg: jax.Array
  pl_mean: jax.Array
  d_params: dict
  d_opt_state: optax.OptState
  ada_p: jax.Array
  ada_sign_sum: jax.Array


def check_config(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> None:
  """Refuses settings that cannot work, before anything compiles."""
  model_config, options = config.model, config.stylegan
  resolution = model_config.resolution
  if resolution < 4 or resolution & (resolution - 1):
    raise errors.UserError(f"config.model.resolution={resolution} must be a power of two, at least 4.")
  if not spec.is_image:
    raise errors.UserError(f"StyleGAN2 makes images; {config.data.name!r} has {', '.join(spec.shapes)}.")
  height, width, _ = spec.data_shape
  if height != width or height > resolution or height <= resolution // 2:
    raise errors.UserError(
        f"The data's images are {height}x{width}; config.model.resolution={resolution} trains square images of "
        f"more than {resolution // 2} and at most {resolution} pixels a side (set it to the next power of two)."
    )
  if options.augment not in augment.AUGMENTATIONS:
    raise errors.UserError(
        f"config.stylegan.augment={options.augment!r} is not one of {', '.join(augment.AUGMENTATIONS)}."
    )
  if not 0.0 < options.ada_target < 1.0:
    raise errors.UserError(f"config.stylegan.ada_target={options.ada_target} must be in (0, 1).")
  if not 0.0 <= options.truncation <= 1.0:
    raise errors.UserError(f"config.stylegan.truncation={options.truncation} must be in [0, 1].")
  if not 0.0 <= options.style_mixing <= 1.0:
    raise errors.UserError(f"config.stylegan.style_mixing={options.style_mixing} must be in [0, 1].")
  for key in ("r1_every", "pl_every", "ada_every", "pl_batch_shrink"):
    if options[key] < 1:
      raise errors.UserError(f"config.stylegan.{key}={options[key]} must be at least 1.")
  if config.train.batch_size % options.pl_batch_shrink:
    raise errors.UserError("config.train.batch_size must be a multiple of config.stylegan.pl_batch_shrink.")
  if model_config.num_classes < 0:
    raise errors.UserError("config.model.num_classes must be >= 0 (0: unconditional).")
  if not 0.0 <= options.ada_p_start <= 1.0:
    raise errors.UserError(f"config.stylegan.ada_p_start={options.ada_p_start} must be in [0, 1].")
  if tuple(config.data.pixel_range) != (-1.0, 1.0):
    raise errors.UserError(
        "StyleGAN2's augmentations and canvas assume pixels in [-1, 1]: set config.data.pixel_range=(-1.0, 1.0)."
    )


def lazy_optimizer(optim_config: ml_collections.ConfigDict, total_steps: int, every: int, regularised: bool):
  """The configured optimiser with StyleGAN2's lazy-regularisation correction for a regulariser every `every` steps:
  lr x c, b1 ** c, b2 ** c with c = every / (every + 1) (no correction without a regulariser, or for one at every
  step, which is StyleGAN2's eager regularisation: reg_interval None)."""
  corrected = ml_collections.ConfigDict(optim_config.to_dict())
  if regularised and every > 1:
    ratio = every / (every + 1)
    corrected.lr, corrected.b1, corrected.b2 = optim_config.lr * ratio, optim_config.b1**ratio, optim_config.b2**ratio
  return common.make_optimizer(corrected, total_steps)


def ema_decay(step: jax.Array, batch_size: int, half_life_images: float, rampup: float) -> jax.Array:
  """The weight average's decay at `step`: 0.5 ** (batch_size / half-life), the half-life in images at most
  `rampup` times the images seen before this step (rampup 0: no ramp-up)."""
  half_life = jnp.asarray(half_life_images, jnp.float32)
  if rampup:
    half_life = jnp.minimum(half_life, step.astype(jnp.float32) * batch_size * rampup)
  return 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))


def path_length_penalty(synthesize, ws: jax.Array, key: jax.Array, pl_mean: jax.Array, decay: float):
  """`(penalty, new_pl_mean)`: the path-length penalty of the images `synthesize(ws)` (`ws [N, num_ws, w_size]`),
  mean over the batch of (|J_w^T y| - a)^2 with y ~ N(0, I) / sqrt(H W) and a the running mean after its update
  a + decay * (mean length - a) (section 3.2)."""
  images = synthesize(ws)
  noise = jax.random.normal(key, images.shape, images.dtype) / math.sqrt(images.shape[1] * images.shape[2])
  grads = jax.grad(lambda ws: jnp.sum(synthesize(ws) * noise))(ws)
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
  new_pl_mean = pl_mean + decay * (jnp.mean(jax.lax.stop_gradient(lengths)) - pl_mean)
  return jnp.mean(jnp.square(lengths - new_pl_mean)), new_pl_mean


def mix_styles(w: jax.Array, other_w: jax.Array, num_layers: int, probability: float, key: jax.Array) -> jax.Array:
  """`[N, num_layers, w_size]`: w for every layer, with probability `probability` replaced by `other_w` from a
  crossover layer drawn uniformly in [1, num_layers) on (one crossover for the batch, as in the official code)."""
  ws = jnp.repeat(w[:, None], num_layers, axis=1)
  if not probability:
    return ws
  crossover_key, coin_key = jax.random.split(key)
  crossover = jax.random.randint(crossover_key, (), 1, num_layers)
  crossover = jnp.where(jax.random.uniform(coin_key) < probability, crossover, num_layers)
  return jnp.where((jnp.arange(num_layers) >= crossover)[None, :, None], other_w[:, None], ws)


def critic_training(config: ml_collections.ConfigDict, critic: stylegan.ResidualCritic) -> adversarial.CriticTraining:
  """How the critic is trained: the non-saturating logistic loss, lazy R1 (gamma r1_gamma every r1_every updates,
  none for gamma 0), Adam with the lazy correction."""
  options = config.stylegan
  return adversarial.CriticTraining(
      common.mixed_precision(critic.apply, config.model.dtype),
      "non_saturating",
      lazy_optimizer(config.optim, config.train.total_steps, options.r1_every, options.r1_gamma > 0),
      adversarial.Penalty("r1" if options.r1_gamma > 0 else "none", options.r1_gamma, options.r1_every),
  )


def generator_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The generator's Adam, with the lazy correction for the path-length regulariser when it has one."""
  options = config.stylegan
  return lazy_optimizer(config.optim, config.train.total_steps, options.pl_every, options.pl_weight > 0)


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds StyleGAN2's pure functions for the images of `spec`; it samples, decodes, and offers its style space."""
  check_config(config, spec)
  model_config, options = config.model, config.stylegan
  num_classes, latent_size, resolution = model_config.num_classes, model_config.latent_size, model_config.resolution
  data_key, data_shape = spec.data_key, spec.data_shape
  low, high = tuple(config.data.pixel_range)
  border = (resolution - data_shape[0]) // 2
  batch_size = config.train.batch_size
  generator = stylegan.Generator(
      resolution,
      data_shape[2],
      model_config.w_size,
      model_config.mapping_depth,
      model_config.mapping_lr_multiplier,
      model_config.channel_base,
      model_config.channel_max,
      num_classes,
      model_config.fused_modconv,
  )
  critic = stylegan.ResidualCritic(
      resolution, model_config.channel_base, model_config.channel_max, num_classes, model_config.mbstd_group_size
  )
  num_layers = stylegan.num_ws(resolution)
  apply_generator = common.mixed_precision(generator.apply, model_config.dtype)
  g_optimizer = generator_optimizer(config)
  d_training = critic_training(config, critic)

  def to_data(images):
    """Synthesis output `[N, R, R, C]` -> the data's size, cut in the centre."""
    return images[:, border : border + data_shape[0], border : border + data_shape[1]]

  def to_critic(images):
    """Data-sized images -> the critic's resolution, padded with the pixel range's low end."""
    padding = ((0, 0), (border, resolution - data_shape[0] - border), (border, resolution - data_shape[1] - border))
    return jnp.pad(images, (*padding, (0, 0)), constant_values=low)

  def augmented(images, key, p):
    if options.augment == "ada":
      return augment.ada(images, key, p)
    if options.augment == "diffaugment":
      return augment.diff_augment(images, key)
    return images

  def map_latents(g_params, latents, labels):
    return apply_generator({"params": g_params}, latents, labels, method=generator.map)

  def synthesize(g_params, ws, noise_key):
    return apply_generator({"params": g_params}, ws, noise_key, method=generator.synthesize)

  def mixed_ws(g_params, latents, labels, key):
    """The ws of `latents` with style mixing, and their unmixed w (for the running mean)."""
    other_key, mix_key = jax.random.split(key)
    w = map_latents(g_params, latents, labels)
    other_w = map_latents(g_params, jax.random.normal(other_key, latents.shape), labels) if options.style_mixing else w
    return mix_styles(w, other_w, num_layers, options.style_mixing, mix_key), w

  def init(key):
    g_key, d_key = jax.random.split(key)
    labels = jnp.zeros((1,), jnp.int32) if num_classes else None
    g_params = generator.init(g_key, jnp.zeros((1, latent_size)), labels)["params"]
    d_params = critic.init(d_key, jnp.zeros((1, resolution, resolution, data_shape[2])), labels, train=False)["params"]
    return StyleGANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        g_opt_state=g_optimizer.init(g_params),
        g_ema_params=g_params,
        w_avg=jnp.zeros((model_config.w_size,), jnp.float32),
        pl_mean=jnp.zeros((), jnp.float32),
        d_params=d_params,
        d_opt_state=d_training.optimizer.init(d_params),
        ada_p=jnp.asarray(options.ada_p_start if options.augment == "ada" else 0.0, jnp.float32),
        ada_sign_sum=jnp.zeros((), jnp.float32),
    )

  def path_length_gradients(g_params, latents, labels, key, pl_mean):
    """`(grads, penalty, new_pl_mean)` of the path-length regulariser, or zeros on steps it skips."""
    mix_key, noise_key, pl_key = jax.random.split(key, 3)

    def loss(g_params):
      ws, _ = mixed_ws(g_params, latents, labels, mix_key)
      return path_length_penalty(lambda ws: synthesize(g_params, ws, noise_key), ws, pl_key, pl_mean, options.pl_decay)

    (penalty, new_pl_mean), grads = jax.value_and_grad(loss, has_aux=True)(g_params)
    return grads, penalty, new_pl_mean

  def train_step(state, batch, key):
    real = batch[data_key][0]
    labels = batch["label"][0] if num_classes else None
    keys = dict(zip(("latents", "mix", "noise", "real_aug", "fake_aug", "g_aug", "r1", "pl"), jax.random.split(key, 8)))
    latents = jax.random.normal(keys["latents"], (real.shape[0], latent_size))

    def fakes_of(g_params):
      ws, w = mixed_ws(g_params, latents, labels, keys["mix"])
      return to_data(synthesize(g_params, ws, keys["noise"])), w

    # One generator forward pass makes the critic's fakes and, through its VJP, the generator's update.
    fakes, generator_vjp, w = jax.vjp(fakes_of, state.g_params, has_aux=True)
    d_params, _, d_opt_state, critic_metrics = adversarial.critic_update(
        d_training,
        state.d_params,
        {},
        state.d_opt_state,
        real=augmented(to_critic(real), keys["real_aug"], state.ada_p),
        fakes=augmented(to_critic(fakes), keys["fake_aug"], state.ada_p),
        conditioning=labels,
        key=keys["r1"],
        update_index=state.step,
    )
    g_loss, fakes_grad = jax.value_and_grad(
        lambda fakes: adversarial.generator_loss(
            d_training, d_params, {}, augmented(to_critic(fakes), keys["g_aug"], state.ada_p), labels
        )
    )(fakes)
    (grads,) = generator_vjp(fakes_grad)

    pl_penalty, pl_mean = jnp.zeros((), jnp.float32), state.pl_mean
    if options.pl_weight > 0:
      pl_size = real.shape[0] // options.pl_batch_shrink
      pl_arguments = (state.g_params, latents[:pl_size], None if labels is None else labels[:pl_size])
      compute = lambda: path_length_gradients(*pl_arguments, keys["pl"], state.pl_mean)
      if options.pl_every == 1:
        pl_grads, pl_penalty, pl_mean = compute()
      else:
        # lax.cond, so that steps between the regulariser's pay nothing for its double back-propagation.
        pl_grads, pl_penalty, pl_mean = jax.lax.cond(
            state.step % options.pl_every == 0,
            compute,
            lambda: (jax.tree.map(jnp.zeros_like, state.g_params), jnp.zeros((), jnp.float32), state.pl_mean),
        )
      weight = options.pl_weight * options.pl_every
      grads = jax.tree.map(lambda g, pl_g: g + weight * pl_g, grads, pl_grads)
    g_params, g_opt_state = common.apply_gradients(state.g_params, state.g_opt_state, grads, g_optimizer)
    decay = ema_decay(state.step, batch_size, options.ema_half_life_images, options.ema_rampup)

    ada_p, ada_sign_sum = state.ada_p, state.ada_sign_sum + critic_metrics["d_real_sign"]
    if options.augment == "ada":
      adjust = (state.step + 1) % options.ada_every == 0
      images_seen = batch_size * options.ada_every
      adjusted = augment.ada_probability(
          ada_p, ada_sign_sum / options.ada_every, options.ada_target, images_seen, options.ada_speed_images
      )
      ada_p = jnp.where(adjust, adjusted, ada_p)
      ada_sign_sum = jnp.where(adjust, 0.0, ada_sign_sum)

    metrics = dict(critic_metrics)
    metrics.update(
        loss=critic_metrics["d_loss"],
        g_loss=g_loss,
        g_grad_norm=optax.tree.norm(grads),
        pl_penalty=pl_penalty,
        pl_mean=pl_mean,
        ada_p=ada_p,
    )
    new_state = StyleGANState(
        step=state.step + 1,
        g_params=g_params,
        g_opt_state=g_opt_state,
        g_ema_params=common.EMA(decay).update(state.g_ema_params, g_params, state.step),
        w_avg=jnp.mean(w, axis=0) + options.w_avg_decay * (state.w_avg - jnp.mean(w, axis=0)),
        pl_mean=pl_mean,
        d_params=d_params,
        d_opt_state=d_opt_state,
        ada_p=ada_p,
        ada_sign_sum=ada_sign_sum,
    )
    return new_state, metrics

  def synthesize_averaged(state, ws):
    """Images of the weight-averaged generator from `ws`, with its constant noise, in the data's size and range."""
    return jnp.clip(to_data(synthesize(state.g_ema_params, ws, None)), low, high)

  def map_averaged(state, latents, labels):
    return map_latents(state.g_ema_params, latents, labels)

  def decode(state, latents, labels):
    """Images of `latents`, truncated towards the tracked mean w by config.stylegan.truncation."""
    w = map_averaged(state, latents, labels)
    w = state.w_avg + options.truncation * (w - state.w_avg)
    return synthesize_averaged(state, jnp.repeat(w[:, None], num_layers, axis=1))

  def generate(state, key, num_images):
    latents = jax.random.normal(key, (num_images, latent_size))
    return decode(state, latents, contract.class_by_class(num_images, num_classes))

  def critic_score(state, examples):
    return d_training.apply({"params": state.d_params}, to_critic(examples), None, train=False).reshape(-1)

  def eval_step(state, batch, key):
    """The critic on held-out real images and on as many samples (of the same classes), unaugmented."""
    labels = batch["label"] if num_classes else None
    fakes = decode(state, jax.random.normal(key, (batch[data_key].shape[0], latent_size)), labels)
    variables = {"params": state.d_params}
    real_logits = d_training.apply(variables, to_critic(batch[data_key]), labels, train=False)
    fake_logits = d_training.apply(variables, to_critic(fakes), labels, train=False)
    per_example = {
        "loss": jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits),
        "d_real": real_logits,
        "d_fake": fake_logits,
    }
    return common.masked_sums(per_example, batch["mask"])

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      param_fields=("g_params", "d_params"),
      progress_metrics=("d_loss", "g_loss", "ada_p"),
      needs_labels=bool(num_classes),
      decoder=contract.Decoder(decode, latent_size, num_classes),
      sampler=contract.Sampler(generate),
      critic=None if num_classes else contract.Critic(critic_score),
      style_space=contract.StyleSpace(map_averaged, synthesize_averaged, lambda state: state.w_avg, num_layers),
  )
