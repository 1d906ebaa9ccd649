r"""PyTorch reference for the 256 px train steps of configs/pix2pix.py and configs/cyclegan.py: the networks of
junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py), its losses, optimisers and batch.

Optional: needs torch, which is deliberately not in requirements.txt (`pip install torch`). Prints one JSON object
in the format of experiments/benchmark.py, so the two compare side by side on the same machine:

  python experiments/benchmark.py --config=configs/pix2pix.py: --steps=20 \
    --config.data.name=known_map:edges2photo --config.data.image_size=0
  python experiments/benchmark_torch_translation.py --method=pix2pix --steps=30
  python experiments/benchmark.py --config=configs/cyclegan.py: --steps=2 \
    --config.data.name=known_map:edges2photo --config.data.image_size=0 --config.data.patch_size=256
  python experiments/benchmark_torch_translation.py --method=cyclegan --steps=2

The networks, written out from the reference: pix2pix's unet_256 (UnetGenerator, num_downs 8, 64 base features,
batch normalisation, dropout 0.5 in the decoder) and a conditional PatchGAN (NLayerDiscriminator, 3 layers, batch
normalisation, 6 channels in: input beside output); CycleGAN's two resnet_9blocks generators (ResnetGenerator,
reflection padding, instance normalisation without affine parameters, no dropout) and two PatchGANs with instance
normalisation. Their parameter counts are checked against the reference's and reported as `parameters`.

One step is one train step as the reference's models do it, Adam(2e-4, betas (0.5, 0.999)), batch 1, on synthetic
256x256 colour images in [-1, 1]:
- pix2pix: G(A); the critic's update on (A, B) as real and (A, G(A)) as fake, the vanilla GAN loss from logits,
  halved; then the generator's update with the GAN loss plus 100 x L1(G(A), B).
- CycleGAN: both generators' update in one optimiser: least squares against both critics, cycle L1 x 10 per
  direction, identity L1 x 5 per direction; then both critics' update in one optimiser, least squares, halved.
  The reference shows its critics fakes through a pool of 50 past ones; drawing from a pool is a copy, nothing
  for timing, so the critics see this step's fakes.
"""

import argparse
import json
import sys
import time

try:
  import torch
  from torch import nn
except ModuleNotFoundError as error:
  if error.name != "torch":
    raise
  sys.exit(
      "genjax: error: benchmark_torch_translation.py compares genjax with PyTorch, which requirements.txt leaves "
      "out: install it first (pip install torch, or the build for your accelerator from https://pytorch.org)."
  )

# The reference networks' sizes, as tests/test_translation.py checks genjax's; an instance-normalised PatchGAN has
# biases where the batch-normalised one has scales and offsets, and 3 channels in where the conditional one has 6.
REFERENCE_PARAMETERS = {
    "unet_256": 54_413_955,
    "patchgan_conditional_batchnorm": 2_768_705,
    "resnet_9blocks": 11_378_179,
    "patchgan_instancenorm": 2_764_737,
}


def instance_norm(channels: int) -> nn.Module:
  return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class UnetSkipConnectionBlock(nn.Module):
  """One level of the U-Net: down, the inner levels, up, and the input concatenated to the output (except at the
  outermost level)."""

  def __init__(self, outer, inner, in_channels=None, submodule=None, outermost=False, innermost=False, dropout=False):
    super().__init__()
    self.outermost = outermost
    in_channels = in_channels or outer
    down_conv = nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False)
    if outermost:
      layers = [down_conv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
    elif innermost:
      up_conv = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
      layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, nn.BatchNorm2d(outer)]
    else:
      down = [nn.LeakyReLU(0.2, True), down_conv, nn.BatchNorm2d(inner)]
      up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
      layers = down + [submodule] + up + ([nn.Dropout(0.5)] if dropout else [])
    self.model = nn.Sequential(*layers)

  def forward(self, x):
    return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet_generator(channels: int = 3, num_downs: int = 8, features: int = 64) -> nn.Module:
  block = UnetSkipConnectionBlock(features * 8, features * 8, innermost=True)
  for _ in range(num_downs - 5):
    block = UnetSkipConnectionBlock(features * 8, features * 8, submodule=block, dropout=True)
  block = UnetSkipConnectionBlock(features * 4, features * 8, submodule=block)
  block = UnetSkipConnectionBlock(features * 2, features * 4, submodule=block)
  block = UnetSkipConnectionBlock(features, features * 2, submodule=block)
  return UnetSkipConnectionBlock(channels, features, in_channels=channels, submodule=block, outermost=True)


class ResnetBlock(nn.Module):

  def __init__(self, channels: int):
    super().__init__()
    self.conv_block = nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels, channels, 3),
        instance_norm(channels),
        nn.ReLU(True),
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels, channels, 3),
        instance_norm(channels),
    )

  def forward(self, x):
    return x + self.conv_block(x)


def resnet_generator(channels: int = 3, num_blocks: int = 9, features: int = 64) -> nn.Module:
  layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, features, 7), instance_norm(features), nn.ReLU(True)]
  for multiple in (1, 2):
    layers += [nn.Conv2d(features * multiple, features * multiple * 2, 3, 2, 1)]
    layers += [instance_norm(features * multiple * 2), nn.ReLU(True)]
  layers += [ResnetBlock(features * 4) for _ in range(num_blocks)]
  for multiple in (4, 2):
    layers += [nn.ConvTranspose2d(features * multiple, features * multiple // 2, 3, 2, 1, output_padding=1)]
    layers += [instance_norm(features * multiple // 2), nn.ReLU(True)]
  layers += [nn.ReflectionPad2d(3), nn.Conv2d(features, channels, 7), nn.Tanh()]
  return nn.Sequential(*layers)


def patch_discriminator(in_channels: int, norm: str, features: int = 64, num_layers: int = 3) -> nn.Module:
  """NLayerDiscriminator: the 70x70 PatchGAN at 3 layers; convolutions before an instance norm keep their bias."""
  make_norm, biased = (nn.BatchNorm2d, False) if norm == "batch" else (instance_norm, True)
  layers = [nn.Conv2d(in_channels, features, 4, 2, 1), nn.LeakyReLU(0.2, True)]
  multiple = 1
  for index in range(1, num_layers + 1):
    previous, multiple = multiple, min(2**index, 8)
    stride = 2 if index < num_layers else 1
    layers += [nn.Conv2d(features * previous, features * multiple, 4, stride, 1, bias=biased)]
    layers += [make_norm(features * multiple), nn.LeakyReLU(0.2, True)]
  layers += [nn.Conv2d(features * multiple, 1, 4, 1, 1)]
  return nn.Sequential(*layers)


def initialise(network: nn.Module) -> nn.Module:
  """The reference's init_weights('normal', 0.02): N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
  for module in network.modules():
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
      nn.init.normal_(module.weight, 0.0, 0.02)
      if module.bias is not None:
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
      nn.init.normal_(module.weight, 1.0, 0.02)
      nn.init.zeros_(module.bias)
  return network


def count_parameters(network: nn.Module) -> int:
  return sum(parameter.numel() for parameter in network.parameters())


def adam(*networks: nn.Module) -> torch.optim.Optimizer:
  return torch.optim.Adam([p for network in networks for p in network.parameters()], lr=2e-4, betas=(0.5, 0.999))


def pix2pix_step(batch_size: int, image_size: int, device: torch.device):
  """Builds pix2pix's networks; returns their parameter counts and one train step."""
  generator = initialise(unet_generator()).to(device)
  critic = initialise(patch_discriminator(6, "batch")).to(device)
  parameters = {"unet_256": count_parameters(generator), "patchgan_conditional_batchnorm": count_parameters(critic)}
  g_optimizer, d_optimizer = adam(generator), adam(critic)
  gan_loss, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
  inputs, targets = (torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1 for _ in range(2))

  def gan(logits, is_real):
    return gan_loss(logits, torch.full_like(logits, float(is_real)))

  def step():
    outputs = generator(inputs)
    fake_pairs = torch.cat([inputs, outputs], 1)
    d_optimizer.zero_grad()
    d_loss = 0.5 * (gan(critic(fake_pairs.detach()), False) + gan(critic(torch.cat([inputs, targets], 1)), True))
    d_loss.backward()
    d_optimizer.step()
    critic.requires_grad_(False)
    g_optimizer.zero_grad()
    g_loss = gan(critic(fake_pairs), True) + 100.0 * l1(outputs, targets)
    g_loss.backward()
    g_optimizer.step()
    critic.requires_grad_(True)

  return parameters, step


def cyclegan_step(batch_size: int, image_size: int, device: torch.device):
  """Builds CycleGAN's networks; returns their parameter counts and one train step."""
  g_a, g_b = (initialise(resnet_generator()).to(device) for _ in range(2))
  d_a, d_b = (initialise(patch_discriminator(3, "instance")).to(device) for _ in range(2))
  parameters = {"resnet_9blocks": count_parameters(g_a), "patchgan_instancenorm": count_parameters(d_a)}
  g_optimizer, d_optimizer = adam(g_a, g_b), adam(d_a, d_b)
  mse, l1 = nn.MSELoss(), nn.L1Loss()
  real_a, real_b = (torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1 for _ in range(2))

  def gan(predictions, is_real):
    return mse(predictions, torch.full_like(predictions, float(is_real)))

  def step():
    fake_b, fake_a = g_a(real_a), g_b(real_b)
    d_a.requires_grad_(False)
    d_b.requires_grad_(False)
    g_optimizer.zero_grad()
    identity = 5.0 * (l1(g_a(real_b), real_b) + l1(g_b(real_a), real_a))
    cycle = 10.0 * (l1(g_b(fake_b), real_a) + l1(g_a(fake_a), real_b))
    g_loss = gan(d_a(fake_b), True) + gan(d_b(fake_a), True) + cycle + identity
    g_loss.backward()
    g_optimizer.step()
    d_a.requires_grad_(True)
    d_b.requires_grad_(True)
    d_optimizer.zero_grad()
    for critic, real, fake in ((d_a, real_b, fake_b), (d_b, real_a, fake_a)):
      (0.5 * (gan(critic(real), True) + gan(critic(fake.detach()), False))).backward()
    d_optimizer.step()

  return parameters, step


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--method", choices=["pix2pix", "cyclegan"], required=True)
  parser.add_argument("--steps", type=int, default=5, help="Timed steps, after two warm-up steps.")
  parser.add_argument("--batch_size", type=int, default=1)
  parser.add_argument("--image_size", type=int, default=256)
  parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
  args = parser.parse_args()
  if args.device == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # As XLA does on NVIDIA GPUs.

  torch.manual_seed(0)
  device = torch.device(args.device)
  build = pix2pix_step if args.method == "pix2pix" else cyclegan_step
  parameters, step = build(args.batch_size, args.image_size, device)
  mismatched = {name: count for name, count in parameters.items() if count != REFERENCE_PARAMETERS[name]}
  if mismatched:
    sys.exit(f"genjax: error: these networks are not the reference's: {mismatched}, expected {REFERENCE_PARAMETERS}.")

  def synchronize():
    if device.type == "cuda":
      torch.cuda.synchronize()

  for _ in range(2):
    step()
  synchronize()
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  synchronize()
  elapsed = time.perf_counter() - start
  result = {"framework": "pytorch", "method": args.method, "device": args.device, "batch_size": args.batch_size}
  result.update(image_size=args.image_size, parameters=parameters, steps=args.steps, warmup_steps=2)
  result.update(step_ms=round(1000 * elapsed / args.steps, 2))
  result.update(images_per_sec=round(args.batch_size * args.steps / elapsed, 2))
  result.update(threads=torch.get_num_threads(), torch=torch.__version__)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
