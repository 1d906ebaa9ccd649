"""Super-resolution x4 with perceptual and adversarial losses: ESRGAN (Wang et al. 2018) and SRGAN (Ledig et al.
2017), which trade some PSNR for realistic texture where a network trained on pixels alone gives blur.

Both start from a network of the same architecture trained on pixels (`config.init_from`, the "PSNR-oriented"
model); train it first with this config's `_psnr` variant, then the adversarial model from it:
  python experiments/train.py --config=configs/srgan.py:esrgan_x4,psnr --workdir=/tmp/genjax/rrdb_psnr
  python experiments/train.py --config=configs/srgan.py:esrgan_x4 --workdir=/tmp/genjax/esrgan \
    --config.init_from=/tmp/genjax/rrdb_psnr

Published settings (`:psnr` for the start of each), on DIV2K's 800 photographs through TFDS (colour, PSNR on Y):
- esrgan_x4: RRDBNet (23 blocks, 64 features, growth 32), 128x128 high-resolution patches, batch 16, Adam 1e-4
  (0.9, 0.99) halved at 50k, 100k, 200k and 300k of 400k steps; L1 on VGG19 conv5_4 before its ReLU (weight 1),
  pixel L1 (1e-2), relativistic average adversarial loss (5e-3) under a VGG-style critic; an average of the
  generator's weights (decay 0.999). Its PSNR-oriented start: pixel L1 alone, Adam 2e-4 halved every 200k of 1M.
- srgan_x4: SRResNet (16 blocks, 64 features), 96x96 patches, batch 16, Adam 1e-4 (0.9, 0.999) for 100k steps
  then 1e-5 for 100k; the VGG54 loss (squared error of VGG19 relu5_4 features scaled by 1/12.75, so weight
  1/12.75^2) with no pixel loss, and the non-saturating adversarial loss (1e-3). Its start: SRResNet trained on the
  pixel MSE (1M steps at 1e-4).
The VGG weights are torchvision's (vgg19-dcbb9e9d.pth, downloaded on first use and checked by SHA-256; offline,
put the file where the message says or set config.restoration.perceptual_weights).

Offline, on a CPU (the grey photographs bundled with scikit-image), the ESRGAN recipe at a small size, without its
perceptual term (no VGG weights can be fetched here; add them with --config.restoration.perceptual_weight=1 where
they can):
  python experiments/train.py --config=configs/srgan.py:runlocal,psnr --workdir=/tmp/genjax/sr4_psnr
  python experiments/train.py --config=configs/srgan.py:runlocal --workdir=/tmp/genjax/sr4_gan \
    --config.init_from=/tmp/genjax/sr4_psnr
  python experiments/evaluate.py --workdir=/tmp/genjax/sr4_gan   # PSNR/SSIM and SWD beside bicubic
"""

import ml_collections

from configs import denoise
from genjax import config_lib
from genjax import errors



def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, esrgan_x4=False, srgan_x4=False, runlocal=False, psnr=False)
  if options.esrgan_x4 and options.srgan_x4:
    raise errors.UserError("Choose one of the config arguments esrgan_x4 (the default) and srgan_x4.")
  runlocal, psnr, srgan = options.runlocal, options.psnr, options.srgan_x4
  config = denoise.base_config("super_resolution", runlocal, "div2k/bicubic_x4")
  config.init_from = ""  # A run trained on pixels, whose generator this one starts from.
  config.data.patch_size = 48 if runlocal else (96 if srgan else 128)
  config.model = ml_collections.ConfigDict()
  # runlocal: the sub-pixel network on top of the bicubic upscale (configs/super_resolution.py's), which learns on a
  # CPU budget what SRResNet, starting from nothing, does not (3,000 steps: 0.2 dB below bicubic).
  config.model.architecture = "subpixel" if runlocal else ("srresnet" if srgan else "rrdb")
  config.model.features = 32 if runlocal else 64
  config.model.num_blocks = 4 if runlocal else (16 if srgan else 23)
  config.model.growth = 32
  config.model.d_features = 16 if runlocal else 64
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16 (parameters stay float32).
  config.restoration = config_lib.restoration(scale=4, loss="l2" if srgan else "l1")
  if not psnr:
    config_lib.perceptual_and_adversarial(
        config.restoration,
        # runlocal: without the perceptual term, which ties ESRGAN's output to its input's content, a pixel weight
        # of 1e-2 let the adversarial term take the images away (PSNR 33 -> 19 dB in 100 steps).
        pixel_weight=0.0 if srgan else (1.0 if runlocal else 1e-2),
        perceptual_weight=0.0 if runlocal else (1.0 / 12.75**2 if srgan else 1.0),
        perceptual_network=19,
        perceptual_layer="relu5_4" if srgan else "conv5_4",
        perceptual_criterion="l2" if srgan else "l1",
        adversarial_weight=1e-3 if srgan else 5e-3,
        adversarial_loss="non_saturating" if srgan else "relativistic_average",
        ema_decay=0.0 if srgan else 0.999,
    )
  b2 = 0.999 if srgan or runlocal else 0.99
  if runlocal:
    config.optim = config_lib.optimizer("adam", 1e-3 if psnr else 1e-4, 0.9, b2, "cosine" if psnr else "constant")
    config.train = config_lib.training(16, 3_000 if psnr else 1_500, 100)
  else:
    lr = 2e-4 if psnr and not srgan else 1e-4
    config.optim = config_lib.optimizer("adam", lr, 0.9, b2, "steps")
    if srgan:
      config.optim.decay_at, config.optim.decay_factor = ((1_000_000,) if psnr else (100_000,)), 0.1
      total_steps = 1_000_000 if psnr else 200_000
    else:
      config.optim.decay_at = (200_000, 400_000, 600_000, 800_000) if psnr else (50_000, 100_000, 200_000, 300_000)
      config.optim.decay_factor = 0.5
      total_steps = 1_000_000 if psnr else 400_000
    config.train = config_lib.training(16, total_steps, 100)
  config.lock()
  return config
