"""Inpainting: a U-Net that sees which pixels are missing fills a centred box (context encoders' setting) or other
masks, trained with an L1 loss.

Offline, on a laptop CPU in about ten minutes (grey photographs bundled with scikit-image, 64x64 patches):
  python experiments/train.py --config=configs/inpaint.py:runlocal --workdir=/tmp/genjax/inpaint_local
  python experiments/evaluate.py --workdir=/tmp/genjax/inpaint_local   # PSNR in the hole beside biharmonic
  python experiments/restore.py --workdir=/tmp/genjax/inpaint_local --input=photo.png --mask=mask.png --out_dir=/tmp/filled

Free-form strokes instead of boxes, and colour photographs of DIV2K through TFDS, for a GPU:
  python experiments/train.py --config=configs/inpaint.py --workdir=/tmp/genjax/inpaint_div2k \
    --config.restoration.mask=strokes
"""

import ml_collections

from configs import denoise
from genjax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False)
  config = denoise.base_config("inpaint", options.runlocal)
  config.data.patch_size = 64 if options.runlocal else 128
  config.model = ml_collections.ConfigDict()
  config.model.architecture = "unet"
  config.model.channels = (16, 32, 64) if options.runlocal else (64, 128, 256, 512)
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  config.restoration = config_lib.restoration(mask="center", loss="l1")
  config.optim = config_lib.optimizer("adam", 1e-3 if options.runlocal else 2e-4, 0.9, 0.999, "cosine", 100)
  config.train = config_lib.training(16 if options.runlocal else 64, 3_000 if options.runlocal else 100_000, 100)
  config.lock()
  return config
