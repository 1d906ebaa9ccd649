"""DDPM (Ho et al. 2020): a U-Net trained to predict the noise of a 1,000-step linear Gaussian diffusion.

The default is the paper's CIFAR-10 setting (TFDS, downloads on first use): the 35.7M-parameter U-Net (128
channels, multipliers (1, 2, 2, 2), 2 residual blocks per level, attention at 16x16, dropout 0.1), Adam lr 2e-4
with 5,000 warm-up steps, gradient clipping at norm 1, batch 128, random horizontal flips, weight average 0.9999,
800k steps; samples by ancestral sampling over all 1,000 steps, as in the paper:
  python experiments/train.py --config=configs/ddpm.py:cifar10 --workdir=/tmp/genjax/ddpm_cifar10

Full MNIST through TFDS (a smaller U-Net at 28x28):
  python experiments/train.py --config=configs/ddpm.py:mnist --workdir=/tmp/genjax/ddpm_mnist

Offline, on a CPU (bundled mnist5k, a U-Net of 16 channels, DDIM samples in 50 steps), unconditional or
class-conditional with classifier-free guidance (label dropout 0.1, guidance scale 1):
  python experiments/train.py --config=configs/ddpm.py:runlocal --workdir=/tmp/genjax/ddpm_local
  python experiments/train.py --config=configs/ddpm.py:runlocal,conditional --workdir=/tmp/genjax/ddpm_cond_local

Learned reverse variances, trained by Nichol & Dhariwal's hybrid loss (a tighter likelihood bound):
  python experiments/train.py --config=configs/ddpm.py:runlocal --workdir=/tmp/genjax/ddpm_hybrid \
    --config.diffusion.variance=learned_range

Sampling is a config section, so any use of a trained run can change it, e.g. FID of 1,000 DDIM samples in 20
steps, or a guidance scale of 3:
  python experiments/evaluate.py --workdir=/tmp/genjax/ddpm_local --classifier_workdir=/tmp/genjax/classifier_local \
    --num_images=1000 --config.diffusion.sampling.steps=20
  python experiments/sample.py --workdir=/tmp/genjax/ddpm_cond_local --config.diffusion.sampling.guidance_scale=3.0
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False, mnist=False, cifar10=False, conditional=False)
  digits = options.runlocal or options.mnist
  dataset = "mnist5k" if options.runlocal else "mnist" if options.mnist else "cifar10"
  config = config_lib.new_experiment("diffusion", config_lib.image_data(dataset, "none", (-1.0, 1.0)))
  config.data.random_flip = not digits  # Flipped digits are not digits.

  model = config.model
  model.channels = 16 if options.runlocal else 64 if options.mnist else 128
  model.channel_multipliers = (1, 2, 2) if digits else (1, 2, 2, 2)  # 28 -> 14 -> 7, or 32 -> 16 -> 8 -> 4.
  model.num_res_blocks = 1 if options.runlocal else 2
  model.attention_resolutions = (7,) if digits else (16,)  # Feature-map sides (pixels) at which blocks attend.
  model.dropout = 0.1
  model.num_classes = 10 if options.conditional else 0  # > 0: class-conditional, with a null class for guidance.
  model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).

  config.diffusion = ml_collections.ConfigDict(
      dict(
          schedule="linear",  # linear (1e-4 to 0.02 over 1,000 steps) | cosine
          num_timesteps=1000,
          prediction="epsilon",  # epsilon | x0 | v
          # The reverse process's: fixed_large (beta_t) | fixed_small (posterior's) | learned_range (between the two,
          # trained by the hybrid loss L_simple + vlb_weight * L_vlb of Nichol & Dhariwal 2021).
          variance="fixed_large",
          vlb_weight=0.001,  # The hybrid loss's lambda (theirs); only with learned_range.
          # runlocal: 0.995 (a half-life of 138 steps). At 0.999 the average of a 3,000-step run still holds 5% of the
          # random initial weights (0.999^3000), and at step 1,000 it drew noise where the weights drew digits.
          ema_decay=0.995 if options.runlocal else 0.9999,
          ema_start_step=0,
          use_ema=True,  # Sample, encode and bound the likelihood with the weight average (else the weights).
          label_dropout=0.1 if options.conditional else 0.0,  # Labels replaced by the null class in training.
          sampling=dict(
              sampler="ddim" if digits else "ddpm",  # ddpm (ancestral, all T steps) | ddim
              steps=50,  # DDIM's steps, at most num_timesteps; the decoder and encoder use DDIM with these too.
              eta=0.0,  # DDIM's noise: 0 deterministic, 1 ancestral-like.
              guidance_scale=1.0 if options.conditional else 0.0,  # w: (1 + w) eps(x, y) - w eps(x); 0: none.
              clip=True,  # Clip each predicted clean image to [-1, 1].
          ),
      )
  )
  # Ho et al.: Adam 2e-4 (CIFAR-10), 5,000 warm-up steps, gradients clipped at norm 1. The short runs take a
  # larger rate and a shorter warm-up.
  config.optim = config_lib.optimizer(
      "adam", 1e-3 if options.runlocal else 2e-4, 0.9, 0.999, "constant", 100 if options.runlocal else 5_000
  )
  config.optim.grad_clip_norm = 1.0
  total_steps = 3_000 if options.runlocal else 50_000 if options.mnist else 800_000
  config.train = config_lib.training(64 if options.runlocal else 128, total_steps, 100 if options.runlocal else 500)
  eval_every = 1_000 if options.runlocal else 5_000 if options.mnist else 20_000
  config_lib.evaluation_and_checkpoints(config, ("split", "grids"), every_steps=eval_every)
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
