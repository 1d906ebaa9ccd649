"""GANs on 2-D mixtures of Gaussians: the mode-coverage benchmark (see genjax/data/toy2d.py for the mixtures).

The dataset ("grid": 25 modes, "ring": 8 modes) and the loss are arguments; the sweep "losses" runs them all with
3 seeds (the README's table):
  python experiments/sweep.py run --config=configs/toy2d.py --sweep=losses --sweep_dir=/tmp/genjax/sweeps/toy2d --workers=2
  python experiments/sweep.py report --sweep_dir=/tmp/genjax/sweeps/toy2d --metric=modes_covered
  python experiments/train.py --config=configs/toy2d.py:dataset=grid,loss=wgan_gp --workdir=/tmp/genjax/toy_grid_wgan_gp
  python experiments/train.py --config=configs/toy2d.py:dataset=ring,loss=non_saturating --workdir=/tmp/genjax/toy_ring_gan

Losses: non_saturating, minimax, hinge, least_squares (one critic update per generator update, no penalty);
wgan (Wasserstein loss with weight clipping c = 0.01, RMSProp 5e-5, 5 critic updates: the WGAN paper's settings);
wgan_gp (Wasserstein loss with the two-sided gradient penalty, 5 critic updates).

The setup follows the WGAN-GP toy experiments (Gulrajani et al. 2017, gan_toy.py): MLPs with three ReLU hidden
layers, a 2-D latent, batch 256, Adam with betas (0.5, 0.9), lambda = 0.1 for the penalty (the toy experiments'
value; 10 is the image value). To finish in a few CPU minutes rather than their 100,000 steps, the layers are 256
wide (not 512) and the learning rate starts at 2e-3 (not 1e-4) and decays to 0 over 4,000 steps on a cosine; on the
grid, WGAN-GP covered 11 modes after 3,000 steps with the paper's settings and all 25 with these (see README.md).
Every evaluation writes `modes_covered` and `high_quality_fraction` of 2,500 samples to metrics.jsonl (see
genjax/metrics/mode_coverage.py) and a scatter plot to samples/.
"""

import ml_collections

from genjax import config_lib

DATASETS = ("grid", "ring")
LOSSES = ("non_saturating", "minimax", "hinge", "least_squares", "wgan", "wgan_gp")


def loss_settings(loss: str) -> dict:
  """The config values that make up each loss of the benchmark, as dotted keys (overrides, sweep points)."""
  is_wasserstein, is_wgan = loss in ("wgan", "wgan_gp"), loss == "wgan"
  return {
      "gan.loss": "wasserstein" if is_wasserstein else loss,
      "gan.penalty": "wgan_gp" if loss == "wgan_gp" else "none",
      "gan.n_critic": 5 if is_wasserstein else 1,
      "gan.weight_clip": 0.01 if is_wgan else 0.0,
      "optim.name": "rmsprop" if is_wgan else "adam",
      "optim.lr": 5e-5 if is_wgan else 2e-3,
      "optim.b2": 0.99 if is_wgan else 0.9,  # RMSProp's decay for wgan.
  }


def get_sweep(name: str) -> list[dict]:
  """Named sweeps over this config: "losses", every loss on both mixtures with 3 seeds (36 runs), the README's
  mode-coverage table."""
  return config_lib.pick(
      name,
      {
          "losses": config_lib.product(
              config_lib.sweep("data.name", DATASETS), [loss_settings(loss) for loss in LOSSES], config_lib.seeds(3)
          ),
      },
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, {"dataset": DATASETS, "loss": LOSSES}, dataset="grid", loss="wgan_gp")
  config = config_lib.new_experiment("gan", config_lib.point_data(options.dataset))
  config.model.architecture = "mlp"
  config.model.latent_size = 2
  config.model.g_channels = (256, 256, 256)  # Hidden layer widths of the MLPs.
  config.model.d_channels = (256, 256, 256)
  config.model.num_classes = 0
  config.model.d_normalization = "none"  # batch | layer | none
  config.model.d_spectral_norm = False
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).

  # Samples come from the generator itself (no weight average): mode coverage is about its training.
  config.gan = config_lib.gan("wasserstein", penalty_weight=0.1, ema_decay=0.0, ema_start_step=0)
  config.optim = config_lib.optimizer("adam", 2e-3, 0.5, 0.9, "cosine")
  config_lib.set_values(config, loss_settings(options.loss))
  config.train = config_lib.training(256, 4_000, 500)
  config_lib.evaluation_and_checkpoints(
      config, ("split", "mode_coverage"), every_steps=1_000, batch_size=500, checkpoint_every_steps=4_000, keep=1
  )
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
