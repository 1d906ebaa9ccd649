r"""PyTorch reference for configs/ddpm.py:cifar10: diffusers' `UNet2DModel` in the configuration of Ho et al.'s
CIFAR-10 model (google/ddpm-cifar10-32's: 128 channels, multipliers (1, 2, 2, 2), 2 residual blocks per level,
attention at 16x16, dropout 0.1, 32 groups), its train step and its sampling, on synthetic 32x32 colour images.

Optional: needs torch and diffusers, which requirements.txt leaves out (`pip install torch diffusers`). Prints one
JSON object whose fields match experiments/benchmark.py's, so the two compare side by side on the same machine:

  python experiments/benchmark.py --config=configs/ddpm.py:cifar10 --steps=5 --config.train.batch_size=32
  python experiments/benchmark.py --config=configs/ddpm.py:cifar10 --mode=sample --steps=2 \
    --config.train.batch_size=32 --config.diffusion.sampling.sampler=ddim --config.diffusion.sampling.steps=10
  python experiments/benchmark_torch_unet.py --batch_size=32 --steps=5 --sampling_steps=10

One train step: noise and a timestep per image, the network's noise prediction, the mean squared error, Adam 2e-4
with gradients clipped at norm 1 (the paper's). One draw: `--sampling_steps` network evaluations on the batch
under torch.no_grad (DDIM's deterministic update; the update's arithmetic is nothing beside the network).
"""

import argparse
import json
import sys
import time

try:
  import torch
  from diffusers import UNet2DModel
except ModuleNotFoundError as error:
  if error.name not in ("torch", "diffusers"):
    raise
  sys.exit(
      "genjax: error: benchmark_torch_unet.py compares genjax with diffusers, which requirements.txt leaves out: "
      "install both first (pip install torch diffusers)."
  )

WARMUP = 2
NUM_TIMESTEPS = 1000


def cifar10_unet() -> "UNet2DModel":
  return UNet2DModel(
      sample_size=32,
      in_channels=3,
      out_channels=3,
      block_out_channels=(128, 256, 256, 256),
      layers_per_block=2,
      down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
      up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
      dropout=0.1,
      norm_num_groups=32,
      attention_head_dim=None,
      resnet_time_scale_shift="default",
      flip_sin_to_cos=False,
      freq_shift=1,
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5, help="Timed train steps (after two warm-up steps).")
  parser.add_argument("--sampling_steps", type=int, default=10, help="Network evaluations per draw.")
  parser.add_argument("--draws", type=int, default=2, help="Timed draws (after one warm-up draw).")
  args = parser.parse_args()
  torch.manual_seed(0)
  model = cifar10_unet()
  optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
  images = torch.rand(args.batch_size, 3, 32, 32) * 2 - 1

  def train_step():
    timesteps = torch.randint(0, NUM_TIMESTEPS, (args.batch_size,))
    noise = torch.randn_like(images)
    noisy = images + noise  # The mixing's arithmetic is nothing beside the network.
    loss = torch.nn.functional.mse_loss(model(noisy, timesteps).sample, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()

  model.train()
  for _ in range(WARMUP):
    train_step()
  start = time.perf_counter()
  for _ in range(args.steps):
    train_step()
  step_s = (time.perf_counter() - start) / args.steps

  model.eval()

  @torch.no_grad()
  def draw():
    x = torch.randn(args.batch_size, 3, 32, 32)
    for timestep in torch.linspace(NUM_TIMESTEPS - 1, 0, args.sampling_steps).long():
      x = x - 0.01 * model(x, timestep.expand(args.batch_size)).sample
    return x

  draw()
  start = time.perf_counter()
  for _ in range(args.draws):
    draw()
  draw_s = (time.perf_counter() - start) / args.draws
  print(
      json.dumps(
          {
              "framework": "pytorch (diffusers UNet2DModel)",
              "batch_size": args.batch_size,
              "parameters": sum(p.numel() for p in model.parameters()),
              "steps": args.steps,
              "step_ms": round(1000 * step_s, 1),
              "sampling_steps": args.sampling_steps,
              "sample_ms": round(1000 * draw_s, 1),
              "torch": torch.__version__,
              "threads": torch.get_num_threads(),
          },
          indent=2,
      )
  )


if __name__ == "__main__":
  main()
