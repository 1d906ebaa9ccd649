r"""PyTorch reference for the WGAN-GP CIFAR-10 step of configs/wgan_gp.py:cifar10: the same ResNet generator and
critic, penalty, optimiser and batch.

Optional: needs torch, which is deliberately not in requirements.txt (`pip install torch`). Prints one JSON object
in the format of experiments/benchmark.py, so the two compare side by side on the same machine:

  python experiments/benchmark.py --config=configs/wgan_gp.py:cifar10 --steps=20
  python experiments/benchmark_torch_wgan_gp.py --steps=20
  python experiments/benchmark_torch_wgan_gp.py --steps=20 --mode=compile --device=cuda

One step is 5 critic updates, each on its own real batch and fresh fakes, with the Wasserstein loss plus 10 x the
two-sided gradient penalty at random interpolates, then one generator update; both Adam(1e-4, betas (0, 0.9)),
batch 64, latent size 128, on synthetic 32x32 colour images in [-1, 1]. As in genjax, the generator's forward pass
for its own update runs once and its fakes also serve the last critic update. --mode=compile wraps both networks
in torch.compile; the penalty differentiates the critic twice, which torch.compile may not support: the error is
then reported in the JSON.
"""

import argparse
import json
import sys
import time

try:
  import torch
  import torch.nn.functional as F
  from torch import nn
except ModuleNotFoundError as error:
  if error.name != "torch":
    raise
  sys.exit(
      "genjax: error: benchmark_torch_wgan_gp.py compares genjax with PyTorch, which requirements.txt leaves out: "
      "install it first (pip install torch, or the build for your accelerator from https://pytorch.org)."
  )


class UpsamplingBlock(nn.Module):
  """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus a 1x1 convolution of the upsampled input."""

  def __init__(self, channels: int):
    super().__init__()
    self.shortcut = nn.Conv2d(channels, channels, 1)
    self.bn1, self.conv1 = nn.BatchNorm2d(channels), nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    self.bn2, self.conv2 = nn.BatchNorm2d(channels), nn.Conv2d(channels, channels, 3, padding=1)

  def forward(self, x):
    shortcut = self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))
    x = self.conv1(F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest"))
    return shortcut + self.conv2(F.relu(self.bn2(x)))


class Generator(nn.Module):

  def __init__(self, latent_size: int, channels: int = 128):
    super().__init__()
    self.channels = channels
    self.dense = nn.Linear(latent_size, 4 * 4 * channels)
    self.blocks = nn.Sequential(*(UpsamplingBlock(channels) for _ in range(3)))
    self.bn, self.out = nn.BatchNorm2d(channels), nn.Conv2d(channels, 3, 3, padding=1)

  def forward(self, latents):
    x = self.dense(latents).view(-1, self.channels, 4, 4)
    return torch.tanh(self.out(F.relu(self.bn(self.blocks(x)))))


class CriticBlock(nn.Module):
  """(ReLU-)conv3x3-ReLU-conv3x3 plus a shortcut (1x1 convolution where the shape changes), then 2x2 mean pooling
  if downsampling; no normalisation."""

  def __init__(self, in_channels: int, channels: int, downsample: bool, acts_on_pixels: bool):
    super().__init__()
    self.downsample, self.acts_on_pixels = downsample, acts_on_pixels
    self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
    self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
    self.shortcut = nn.Conv2d(in_channels, channels, 1) if downsample or in_channels != channels else None

  def forward(self, x):
    residual = self.conv1(x if self.acts_on_pixels else F.relu(x))
    residual = self.conv2(F.relu(residual))
    x = (self.shortcut(x) if self.shortcut is not None else x) + residual
    return F.avg_pool2d(x, 2) if self.downsample else x


class Critic(nn.Module):

  def __init__(self, channels: int = 128):
    super().__init__()
    self.blocks = nn.Sequential(
        CriticBlock(3, channels, True, True),
        CriticBlock(channels, channels, True, False),
        CriticBlock(channels, channels, False, False),
        CriticBlock(channels, channels, False, False),
    )
    self.out = nn.Linear(channels, 1)

  def forward(self, images):
    return self.out(F.relu(self.blocks(images)).mean(dim=(2, 3)))[:, 0]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=20, help="Timed steps, after two warm-up steps.")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--latent_size", type=int, default=128)
  parser.add_argument("--n_critic", type=int, default=5)
  parser.add_argument("--mode", choices=["eager", "compile"], default="eager")
  parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
  args = parser.parse_args()
  if args.device == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # As XLA does on NVIDIA GPUs.

  torch.manual_seed(0)
  device, batch = torch.device(args.device), args.batch_size
  generator, critic = Generator(args.latent_size).to(device), Critic().to(device)
  g_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.0, 0.9))
  d_optimizer = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))
  if args.mode == "compile":
    generator, critic = torch.compile(generator), torch.compile(critic)
  reals = torch.rand(args.n_critic, batch, 3, 32, 32, device=device) * 2 - 1

  def critic_update(real, fakes):
    d_optimizer.zero_grad()
    epsilon = torch.rand(batch, 1, 1, 1, device=device)
    interpolates = (epsilon * real + (1 - epsilon) * fakes).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(interpolates).sum(), interpolates, create_graph=True)
    penalty = ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()
    loss = critic(fakes).mean() - critic(real).mean() + 10.0 * penalty
    loss.backward()
    d_optimizer.step()

  def step():
    g_fakes = generator(torch.randn(batch, args.latent_size, device=device))
    for index in range(args.n_critic):
      if index == args.n_critic - 1:
        fakes = g_fakes.detach()
      else:
        with torch.no_grad():
          fakes = generator(torch.randn(batch, args.latent_size, device=device))
      critic_update(reals[index], fakes)
    g_optimizer.zero_grad()
    (-critic(g_fakes).mean()).backward()
    g_optimizer.step()

  def synchronize():
    if device.type == "cuda":
      torch.cuda.synchronize()

  result = {"framework": "pytorch", "mode": args.mode, "device": args.device, "batch_size": batch}
  result.update(steps=args.steps, warmup_steps=2)
  try:
    for _ in range(2):
      step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
      step()
    synchronize()
    elapsed = time.perf_counter() - start
    result.update(step_ms=round(1000 * elapsed / args.steps, 2), images_per_sec=round(batch * args.steps / elapsed, 1))
  except Exception as error:  # torch.compile's failures come in many types; report which one.
    result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
  result.update(threads=torch.get_num_threads(), torch=torch.__version__)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
