r"""PyTorch reference for the MNIST DCGAN of configs/gan.py: same layers, batch, loss and optimiser.

Optional: needs torch, which is deliberately not in requirements.txt (`pip install torch`). Prints one JSON object
in the format of experiments/benchmark.py, so the two compare side by side on the same machine:

  python experiments/benchmark.py --config=configs/gan.py --steps=20
  python experiments/benchmark_torch_dcgan.py --steps=20

One step is one discriminator update (real and generated batch, non-saturating loss from logits) and one generator
update, both Adam(2e-4, betas (0.5, 0.999)), batch 128, latent size 100, on synthetic images in [-1, 1].
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
      "genjax: error: benchmark_torch_dcgan.py compares genjax with PyTorch, which requirements.txt leaves out: "
      "install it first (pip install torch, or the build for your accelerator from https://pytorch.org)."
  )


def dcgan_generator(latent_size: int) -> nn.Module:
  return nn.Sequential(
      nn.Linear(latent_size, 7 * 7 * 128, bias=False),
      nn.Unflatten(1, (128, 7, 7)),
      nn.BatchNorm2d(128),
      nn.ReLU(),
      nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
      nn.BatchNorm2d(64),
      nn.ReLU(),
      nn.ConvTranspose2d(64, 1, 4, 2, 1),
      nn.Tanh(),
  )


def dcgan_discriminator() -> nn.Module:
  return nn.Sequential(
      nn.Conv2d(1, 64, 4, 2, 1),
      nn.LeakyReLU(0.2),
      nn.Conv2d(64, 128, 4, 2, 1, bias=False),
      nn.BatchNorm2d(128),
      nn.LeakyReLU(0.2),
      nn.Flatten(),
      nn.Linear(7 * 7 * 128, 1),
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=20, help="Timed steps, after two warm-up steps.")
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--latent_size", type=int, default=100)
  args = parser.parse_args()

  torch.manual_seed(0)
  generator, discriminator = dcgan_generator(args.latent_size), dcgan_discriminator()
  g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(args.batch_size, 1, 28, 28) * 2 - 1
  ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)

  def step():
    fakes = generator(torch.randn(args.batch_size, args.latent_size))
    d_optimizer.zero_grad()
    d_loss = bce(discriminator(real)[:, 0], ones) + bce(discriminator(fakes.detach())[:, 0], zeros)
    d_loss.backward()
    d_optimizer.step()
    g_optimizer.zero_grad()
    g_loss = bce(discriminator(fakes)[:, 0], ones)
    g_loss.backward()
    g_optimizer.step()

  for _ in range(2):
    step()
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  elapsed = time.perf_counter() - start
  print(
      json.dumps(
          {
              "framework": "pytorch",
              "batch_size": args.batch_size,
              "steps": args.steps,
              "warmup_steps": 2,
              "step_ms": round(1000 * elapsed / args.steps, 2),
              "images_per_sec": round(args.batch_size * args.steps / elapsed, 1),
              "threads": torch.get_num_threads(),
              "torch": torch.__version__,
          },
          indent=2,
      )
  )


if __name__ == "__main__":
  main()
