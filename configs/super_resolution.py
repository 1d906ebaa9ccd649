"""Super-resolution x2: a sub-pixel network (the ESPCN/SRResNet family) learns the detail that bicubic
downscaling removed, on top of the bicubic upscale.

Offline, on a laptop CPU in about six minutes (grey photographs bundled with scikit-image):
  python experiments/train.py --config=configs/super_resolution.py:runlocal --workdir=/tmp/genjax/sr_local
  python experiments/evaluate.py --workdir=/tmp/genjax/sr_local   # PSNR/SSIM beside bicubic upscaling
  python experiments/restore.py --workdir=/tmp/genjax/sr_local --input=small.png --out_dir=/tmp/upscaled

On DIV2K's 800 high-resolution colour photographs through TFDS, x2 or x4 (PSNR on Y, as papers report), for a GPU:
  python experiments/train.py --config=configs/super_resolution.py --workdir=/tmp/genjax/sr_div2k_x2
  python experiments/train.py --config=configs/super_resolution.py:scale=4 --workdir=/tmp/genjax/sr_div2k_x4
"""

import ml_collections

from configs import denoise
from genjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, {"scale": (2, 3, 4)}, runlocal=False, scale=2)
  config = denoise.base_config("super_resolution", options.runlocal, f"div2k/bicubic_x{options.scale}")
  config.data.patch_size = 48 if options.runlocal else 96  # High-resolution patches; the network sees 1/scale.
  config.model = ml_collections.ConfigDict()
  config.model.architecture = "subpixel"
  config.model.features = 32 if options.runlocal else 64
  config.model.num_blocks = 4 if options.runlocal else 16
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  config.restoration = config_lib.restoration(scale=options.scale, loss="l1")
  config.optim = config_lib.optimizer("adam", 1e-3 if options.runlocal else 2e-4, 0.9, 0.999, "cosine", 100)
  config.train = config_lib.training(16, 4_000 if options.runlocal else 300_000, 100)
  config.lock()
  return config
