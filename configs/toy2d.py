"""GANs on 2-D mixtures of Gaussians: the mode-coverage benchmark (see genjax/data/toy2d.py for the mixtures).

The dataset ("grid": 25 modes, "ring": 8 modes) and the loss are arguments:
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


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, {"dataset": DATASETS, "loss": LOSSES}, dataset="grid", loss="wgan_gp")
  config = ml_collections.ConfigDict()
  config.family = "gan"
  config.seed = 0
  config.data = config_lib.point_data(options.dataset)

  config.model = ml_collections.ConfigDict()
  config.model.architecture = "mlp"
  config.model.latent_size = 2
  config.model.g_channels = (256, 256, 256)  # Hidden layer widths of the MLPs.
  config.model.d_channels = (256, 256, 256)
  config.model.num_classes = 0
  config.model.d_normalization = "none"  # batch | layer | none
  config.model.d_spectral_norm = False

  is_wasserstein = options.loss in ("wgan", "wgan_gp")
  config.gan = ml_collections.ConfigDict()
  config.gan.loss = "wasserstein" if is_wasserstein else options.loss
  config.gan.penalty = "wgan_gp" if options.loss == "wgan_gp" else "none"  # none | wgan_gp | r1
  config.gan.penalty_weight = 0.1
  config.gan.n_critic = 5 if is_wasserstein else 1
  config.gan.weight_clip = 0.01 if options.loss == "wgan" else 0.0
  config.gan.ema_decay = 0.0  # Samples come from the generator itself: mode coverage is about its training.
  config.gan.ema_start_step = 0

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "rmsprop" if options.loss == "wgan" else "adam"  # adam | adamw | rmsprop
  config.optim.lr = 5e-5 if options.loss == "wgan" else 2e-3
  config.optim.b1 = 0.5
  config.optim.b2 = 0.99 if options.loss == "wgan" else 0.9  # RMSProp's decay for wgan.
  config.optim.weight_decay = 0.0
  config.optim.schedule = "cosine"  # constant | cosine
  config.optim.warmup_steps = 0
  config.optim.grad_clip_norm = 0.0

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 256
  config.train.total_steps = 4_000
  config.train.log_every_steps = 500

  config.eval = ml_collections.ConfigDict(dict(every_steps=1_000, batch_size=500, num_samples=2_500))
  config.ckpt = ml_collections.ConfigDict(dict(every_steps=4_000, keep=1))
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
