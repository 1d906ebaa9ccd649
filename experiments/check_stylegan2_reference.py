r"""Checks genjax's StyleGAN2 networks against the official PyTorch ones (NVlabs/stylegan2-ada-pytorch,
training/networks.py) on the same weights and inputs, and trains the official networks as a config trains genjax's.
Benchmark-side: it needs torch, requests (which the official code imports) and a checkout of stylegan2-ada-pytorch,
none of them genjax requirements.

  git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/stylegan2-ada-pytorch
  pip install torch==2.14.1 requests   # for this check only: not in requirements.txt
  python experiments/check_stylegan2_reference.py --reference=/tmp/stylegan2-ada-pytorch \
    --config=configs/stylegan2.py:runlocal --train_steps=1000

The official generator (mapping network and "skip" synthesis network) and residual discriminator are built at the
config's sizes, and their initial weights are copied into genjax's parameter trees (torch's layouts transposed to
genjax's; the kernels of the upsampling convolutions flipped, because the official code runs them as transposed
convolutions). On one batch the script then compares the ws, the images, the critic's logits, the non-saturating
losses, R1 and the gradient of every parameter, and prints the largest difference of each relative to the largest
reference value. The noise strengths' gradients are left out: the two code bases draw different noise images (the
strengths start at 0, so nothing else depends on the draws).

With --train_steps=N it then trains the official networks for N steps as the config trains genjax's, on the
config's training split, without augmentation (ADA's pipeline is genjax's own): per step a generator update
(non-saturating loss, style mixing with the config's probability) and a critic update (non-saturating loss plus R1
with the config's gamma at every step), Adam with the config's rate, warm-up and betas (a constant rate after the
warm-up: the check refuses other schedules), the weight average with genjax's decay (half-life with ramp-up). It
logs the step time, and every --report_every steps the standard deviation of each pixel over 64 samples of the
weight average (pixels clipped to [-1, 1], averaged over pixels), the measure of diversity that README.md's StyleGAN2
section reports for genjax's runs; --samples=PATH saves those samples as .npy files. Unconditional configs only.
"""

import copy
import os
import sys
import time

from absl import app
from absl import flags
import flax
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from genjax import losses
from genjax.data import sources
from genjax.models import stylegan
from genjax.trainers import stylegan as stylegan_trainer

_CONFIG = config_flags.DEFINE_config_file("config", "configs/stylegan2.py:runlocal", "A stylegan2 config.")
_REFERENCE = flags.DEFINE_string("reference", None, "A checkout of NVlabs/stylegan2-ada-pytorch.", required=True)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Examples in the comparison's batch.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 0, "Steps to train the official networks (0: compare only).")
_REPORT_EVERY = flags.DEFINE_integer("report_every", 250, "Steps between reports of the samples' diversity.")
_SAMPLES = flags.DEFINE_string("samples", None, "Save the reported samples as PATH_<step>.npy.")
_THREADS = flags.DEFINE_integer("threads", 1, "torch's CPU threads.")


def official_networks(config, image_channels: int):
  from training import networks  # The reference checkout, put on sys.path by main.

  model = config.model
  generator = networks.Generator(
      z_dim=model.latent_size,
      c_dim=0,
      w_dim=model.w_size,
      img_resolution=model.resolution,
      img_channels=image_channels,
      mapping_kwargs=dict(num_layers=model.mapping_depth, lr_multiplier=model.mapping_lr_multiplier),
      synthesis_kwargs=dict(channel_base=model.channel_base, channel_max=model.channel_max),
  )
  discriminator = networks.Discriminator(
      c_dim=0,
      img_resolution=model.resolution,
      img_channels=image_channels,
      channel_base=model.channel_base,
      channel_max=model.channel_max,
      epilogue_kwargs=dict(mbstd_group_size=model.mbstd_group_size),
  )
  return generator, discriminator


def _conv(weight):
  return np.transpose(weight, (2, 3, 1, 0))  # [Cout, Cin, K, K] -> [K, K, Cin, Cout]


def official_name(path: tuple[str, ...], resolution: int, channels_at_4: int):
  """(the official parameter's name, the function taking its value to genjax's layout) for a genjax parameter."""
  kind = "weight" if path[-1] == "kernel" else "bias"
  same = lambda value: value
  if path[0] == "mapping":
    return f"G.mapping.fc{path[1].split('_')[1]}.{kind}", np.transpose
  if path[0] == "synthesis":
    if path[1] == "const":
      return "G.synthesis.b4.const", lambda value: np.transpose(value, (1, 2, 0))
    block, layer = path[1].split("_")
    name = f"G.synthesis.{block}.{layer}"
    if path[2:4] == ("conv", "affine"):
      return f"{name}.affine.{kind}", np.transpose if kind == "weight" else same
    if path[2] == "conv" and layer == "conv0":  # A transposed convolution there: the kernel is flipped.
      return f"{name}.weight", lambda value: _conv(value)[::-1, ::-1]
    if path[2] == "conv":
      return f"{name}.weight", _conv
    return f"{name}.{path[2]}", same
  if path[0] == "fromrgb":
    return f"D.b{resolution}.fromrgb.{kind}", _conv if kind == "weight" else same
  if path[0] == "b4_conv":
    return f"D.b4.conv.{kind}", _conv if kind == "weight" else same
  if path[0] == "b4_dense":  # torch flattens [C, 4, 4], genjax [4, 4, C].
    flatten = lambda value: np.transpose(value.reshape(-1, channels_at_4, 4, 4), (2, 3, 1, 0)).reshape(-1, len(value))
    return f"D.b4.fc.{kind}", flatten if kind == "weight" else same
  if path[0] == "out":
    return f"D.b4.out.{kind}", np.transpose if kind == "weight" else same
  return f"D.{path[0]}.{path[1]}.{kind}", _conv if kind == "weight" else same


def compare(config, generator, discriminator, image_channels: int) -> None:
  """Copies the official networks' weights into genjax's and prints how closely the two agree (module docstring)."""
  import torch  # Benchmark-side only.

  model = config.model
  resolution, batch = model.resolution, _BATCH.value
  genjax_generator = stylegan.Generator(
      resolution,
      image_channels,
      model.w_size,
      model.mapping_depth,
      model.mapping_lr_multiplier,
      model.channel_base,
      model.channel_max,
  )
  genjax_critic = stylegan.ResidualCritic(resolution, model.channel_base, model.channel_max, 0, model.mbstd_group_size)
  official = {f"G.{name}": value for name, value in generator.named_parameters()}
  official.update({f"D.{name}": value for name, value in discriminator.named_parameters()})
  channels_at_4 = stylegan.channels_at(4, model.channel_base, model.channel_max)

  def copied(params):
    flat = flax.traverse_util.flatten_dict(params)
    names = {path: official_name(path, resolution, channels_at_4) for path in flat}
    for path, (name, to_genjax) in names.items():
      value = to_genjax(official[name].detach().numpy())
      if value.shape != flat[path].shape:
        raise ValueError(f"{'/'.join(path)}: {value.shape} from {name}, genjax has {flat[path].shape}")
      flat[path] = jnp.asarray(value)
    return flax.traverse_util.unflatten_dict(flat), names

  g_params, g_names = copied(
      genjax_generator.init(jax.random.key(0), jnp.zeros((1, model.latent_size)), None)["params"]
  )
  d_params, d_names = copied(
      genjax_critic.init(jax.random.key(0), jnp.zeros((1, resolution, resolution, image_channels)), None, False)[
          "params"
      ]
  )

  z = torch.randn(batch, model.latent_size)
  real = (torch.rand(batch, image_channels, resolution, resolution) * 2 - 1).requires_grad_(True)
  ws = generator.mapping(z, None)
  images = generator.synthesis(ws, noise_mode="const", fused_modconv=False)
  fake_logits = discriminator(images, None)[:, 0]
  g_loss = torch.nn.functional.softplus(-fake_logits).mean()
  g_grads = torch.autograd.grad(g_loss, list(generator.parameters()))
  real_logits = discriminator(real, None)[:, 0]
  (real_grads,) = torch.autograd.grad(real_logits.sum(), [real], create_graph=True)
  r1 = 0.5 * real_grads.square().sum([1, 2, 3]).mean()
  d_loss = (
      torch.nn.functional.softplus(-real_logits)
      + torch.nn.functional.softplus(discriminator(images.detach(), None)[:, 0])
  ).mean()
  d_grads = torch.autograd.grad(d_loss + r1, list(discriminator.parameters()))
  reference_grads = {f"G.{name}": g for (name, _), g in zip(generator.named_parameters(), g_grads)}
  reference_grads.update({f"D.{name}": g for (name, _), g in zip(discriminator.named_parameters(), d_grads)})

  nhwc = lambda x: jnp.asarray(x.detach().numpy().transpose(0, 2, 3, 1))
  genjax_z, genjax_real = jnp.asarray(z.numpy()), nhwc(real)
  critic = lambda d_params, x: genjax_critic.apply({"params": d_params}, x, None, False)
  num_ws = stylegan.num_ws(resolution)

  def generate(g_params):
    w = genjax_generator.apply({"params": g_params}, genjax_z, None, method=genjax_generator.map)
    ws = jnp.repeat(w[:, None], num_ws, axis=1)
    return ws, genjax_generator.apply({"params": g_params}, ws, None, method=genjax_generator.synthesize)

  genjax_ws, genjax_images = generate(g_params)

  def generator_loss(g_params):
    return jnp.mean(jax.nn.softplus(-critic(d_params, generate(g_params)[1])))

  def critic_loss(d_params):
    loss = jnp.mean(jax.nn.softplus(-critic(d_params, genjax_real)) + jax.nn.softplus(critic(d_params, genjax_images)))
    penalty = 0.5 * losses.r1_penalty(lambda x: critic(d_params, x), genjax_real)
    return loss + penalty, (loss, penalty)

  genjax_g_loss, genjax_g_grads = jax.value_and_grad(generator_loss)(g_params)
  (_, (genjax_d_loss, genjax_r1)), genjax_d_grads = jax.value_and_grad(critic_loss, has_aux=True)(d_params)

  def relative(ours, reference) -> float:
    reference = np.asarray(reference)
    return float(np.max(np.abs(np.asarray(ours) - reference)) / max(np.max(np.abs(reference)), 1e-12))

  print(f"max |genjax - official| / max |official| on a batch of {batch}:")
  print(
      f"  ws {relative(genjax_ws, ws.detach().numpy()):.1e}, images {relative(genjax_images, nhwc(images)):.1e}, "
      f"critic logits {relative(critic(d_params, genjax_images), fake_logits.detach().numpy()):.1e}"
  )
  for name, ours, reference in [
      ("generator loss", genjax_g_loss, g_loss),
      ("critic loss", genjax_d_loss, d_loss),
      ("R1", genjax_r1, r1),
  ]:
    print(f"  {name} {relative(ours, reference.item()):.1e} ({float(ours):.6f} against {reference.item():.6f})")
  worst = {}
  for grads, names in [(genjax_g_grads, g_names), (genjax_d_grads, d_names)]:
    for path, grad in flax.traverse_util.flatten_dict(grads).items():
      if path[-1] == "noise_strength":
        continue
      name, to_genjax = names[path]
      worst[name] = relative(grad, to_genjax(reference_grads[name].numpy()))
  name, median = max(worst, key=worst.get), np.median(list(worst.values()))
  print(f"  gradients of {len(worst)} parameters: largest {worst[name]:.1e} ({name}), median {median:.1e}")


def train_official(config, generator, discriminator, images: np.ndarray) -> None:
  """The official networks trained as `config` trains genjax's (module docstring) on `images` `[N, C, H, W]` in
  [-1, 1], the data's size; the networks see them on their canvas, as genjax's trainer pads them."""
  import torch  # Benchmark-side only.

  options, batch_size = config.stylegan, config.train.batch_size
  rng = np.random.default_rng(config.seed)
  average = copy.deepcopy(generator).eval()
  betas = (float(config.optim.b1), float(config.optim.b2))
  g_optimizer = torch.optim.Adam(generator.parameters(), lr=config.optim.lr, betas=betas, eps=1e-8)
  d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.optim.lr, betas=betas, eps=1e-8)
  warmup = config.optim.warmup_steps  # Linear from 0, as genjax's optimiser warms up.
  schedules = [
      torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / warmup) if warmup else 1.0)
      for optimizer in (g_optimizer, d_optimizer)
  ]
  report_latents = torch.randn(64, config.model.latent_size, generator=torch.Generator().manual_seed(1))
  height, width = images.shape[2:]
  border = (config.model.resolution - height) // 2
  canvas = (
      (0, 0),
      (0, 0),
      (border, config.model.resolution - height - border),
      (border, config.model.resolution - width - border),
  )
  images = np.pad(images, canvas, constant_values=-1.0)

  def generate(latents):
    ws = generator.mapping(latents, None)
    if torch.rand(()) < options.style_mixing:
      crossover = int(torch.randint(1, ws.shape[1], ()))
      ws[:, crossover:] = generator.mapping(torch.randn_like(latents), None, skip_w_avg_update=True)[:, crossover:]
    return generator.synthesis(ws)

  start, step_time = time.perf_counter(), 0.0
  for step in range(_TRAIN_STEPS.value + 1):
    if step % _REPORT_EVERY.value == 0 or step == _TRAIN_STEPS.value:
      with torch.no_grad():
        samples = average(report_latents, None, noise_mode="const").numpy()
      samples = samples[:, :, border : border + height, border : border + width].clip(-1, 1)
      print(
          f"step {step}: pixel std over 64 samples {samples.std(axis=0).mean():.3f}, "
          f"{step_time / max(step, 1) * 1000:.0f} ms a step",
          flush=True,
      )
      if _SAMPLES.value:
        np.save(f"{_SAMPLES.value}_{step}.npy", samples)
    if step == _TRAIN_STEPS.value:
      break
    decay = float(
        stylegan_trainer.ema_decay(jnp.asarray(step), batch_size, options.ema_half_life_images, options.ema_rampup)
    )
    tick = time.perf_counter()
    g_optimizer.zero_grad(set_to_none=True)
    fakes = generate(torch.randn(batch_size, config.model.latent_size))
    torch.nn.functional.softplus(-discriminator(fakes, None)).mean().backward()
    g_optimizer.step()

    d_optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
      fakes = generate(torch.randn(batch_size, config.model.latent_size))
    real = torch.from_numpy(images[rng.integers(0, len(images), batch_size)]).requires_grad_(True)
    real_logits = discriminator(real, None)
    (real_grads,) = torch.autograd.grad(real_logits.sum(), [real], create_graph=True)
    r1 = real_grads.square().sum([1, 2, 3]).mean() * options.r1_gamma / 2
    loss = (
        torch.nn.functional.softplus(discriminator(fakes, None)) + torch.nn.functional.softplus(-real_logits)
    ).mean()
    (loss + r1).backward()
    d_optimizer.step()
    for schedule in schedules:
      schedule.step()

    with torch.no_grad():
      for averaged, current in zip(average.parameters(), generator.parameters()):
        averaged.copy_(current.lerp(averaged, decay))
      for averaged, current in zip(average.buffers(), generator.buffers()):
        averaged.copy_(current)
    step_time += time.perf_counter() - tick
  print(f"{_TRAIN_STEPS.value} steps in {time.perf_counter() - start:.0f} s")


def main(argv):
  del argv
  try:
    import torch  # Benchmark-side only.
  except ImportError:
    raise app.UsageError("This check needs torch: pip install torch==2.14.1 requests") from None
  if not os.path.isfile(os.path.join(_REFERENCE.value, "training", "networks.py")):
    raise app.UsageError(f"--reference={_REFERENCE.value} is not a checkout of NVlabs/stylegan2-ada-pytorch.")
  torch.set_num_threads(_THREADS.value)
  sys.path.insert(0, _REFERENCE.value)
  config = _CONFIG.value
  if config.family != "stylegan2" or config.model.num_classes:
    raise app.UsageError("--config must be an unconditional stylegan2 config.")
  if _TRAIN_STEPS.value and (config.optim.name != "adam" or config.optim.schedule != "constant"):
    raise app.UsageError("--train_steps follows Adam with a constant rate (after any warm-up) only.")
  torch.manual_seed(config.seed)  # The official networks' initial weights.
  source = sources.open_source(config.data, config.seed)
  image_channels = source.spec.data_shape[2]
  generator, discriminator = official_networks(config, image_channels)
  compare(config, generator, discriminator, image_channels)
  if _TRAIN_STEPS.value:
    images = np.stack([example[source.spec.data_key] for example in source.train]).astype(np.float32)
    train_official(config, generator, discriminator, images.transpose(0, 3, 1, 2) / 127.5 - 1.0)


if __name__ == "__main__":
  app.run(main)
