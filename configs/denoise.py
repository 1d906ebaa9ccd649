"""Denoising: a DnCNN (Zhang et al. 2017) learns to remove Gaussian noise of sigma 25 from grey photographs.

Offline, on a laptop CPU in about ten minutes (the photographs bundled with scikit-image, a 10-layer DnCNN):
  python experiments/train.py --config=configs/denoise.py:runlocal --workdir=/tmp/genjax/denoise_local
  python experiments/evaluate.py --workdir=/tmp/genjax/denoise_local   # PSNR/SSIM beside TV, NLM (and BM3D)
  python experiments/restore.py --workdir=/tmp/genjax/denoise_local --input=noisy.png --out_dir=/tmp/restored

The paper's settings (17 layers of 64 features, 40x40 patches, batch 128, Adam 1e-3 decayed) on DIV2K's 800
high-resolution photographs through TFDS, meant for a GPU:
  python experiments/train.py --config=configs/denoise.py --workdir=/tmp/genjax/denoise_div2k

Blind denoising (each image's sigma drawn from [5, 50]) is an override:
  python experiments/train.py --config=configs/denoise.py:runlocal --workdir=/tmp/genjax/denoise_blind \
    --config.restoration.sigma=5 --config.restoration.sigma_max=50
"""

import ml_collections

from genjax import config_lib


def base_config(task: str, runlocal: bool, data_name: str = "div2k/bicubic_x2") -> ml_collections.ConfigDict:
  """What the three restoration configs share (unlocked): grey photographs bundled with scikit-image for runlocal,
  colour DIV2K through TFDS otherwise, flipped at random; evaluation on whole held-out images."""
  config = ml_collections.ConfigDict()
  config.family = "restoration"
  config.task = task
  config.seed = 0
  config.data = config_lib.image_data("photos" if runlocal else data_name, "none", (0.0, 1.0))
  config.data.image_key = "image" if runlocal else "hr"
  config.data.channels = 1 if runlocal else 3
  config.data.random_flip = True
  config_lib.evaluation_and_checkpoints(config, ("restoration",), every_steps=1_000 if runlocal else 10_000)
  config_lib.mesh_and_distributed(config)
  return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False)
  config = base_config("denoise", options.runlocal)
  config.data.channels = 1  # DnCNN's grey-level model, in both variants.
  config.data.patch_size = 40
  config.model = ml_collections.ConfigDict()
  config.model.architecture = "dncnn"
  config.model.depth = 10 if options.runlocal else 17
  config.model.features = 32 if options.runlocal else 64
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  config.restoration = config_lib.restoration(sigma=25.0)
  config.optim = config_lib.optimizer("adam", 1e-3, 0.9, 0.999, "cosine", 100)
  config.train = config_lib.training(32 if options.runlocal else 128, 1_800 if options.runlocal else 50_000, 100)
  config.lock()
  return config
