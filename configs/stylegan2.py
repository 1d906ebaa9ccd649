"""StyleGAN2 (Karras et al. 2020) with ADA or DiffAugment for small data: the family of genjax/trainers/stylegan.py.

CIFAR-10 through TFDS, StudioGAN's StyleGAN2 setting (that of ADA's "cifar" configuration): 32x32, 512 feature maps
at every resolution, a 2-layer mapping network (lr multiplier 0.01), batch 64, Adam 0.0025 with betas (0, 0.99) and
the lazy-regularisation correction, R1 gamma 0.01 every 16 steps, no path-length regulariser, no style mixing,
minibatch stddev over groups of 32, weight average with a half-life of 500k images and ramp-up 0.05, ADA with target
0.6 (100M images in all, ADA's length). ADA's "cifar" critic is the non-residual one; genjax has only the residual
critic. Class-conditional (class embedding into the mapping network, projection critic) with `conditional`:
  python experiments/train.py --config=configs/stylegan2.py:cifar10 --workdir=/tmp/genjax/stylegan2_cifar10
  python experiments/train.py --config=configs/stylegan2.py:cifar10,conditional --workdir=/tmp/genjax/cstylegan2_cifar10
  python experiments/train.py --config=configs/stylegan2.py:cifar10,augment=diffaugment --workdir=/tmp/genjax/sg2_da

Faces from a folder of images (resized and centre-cropped; CelebA's aligned crops at 64x64 with ADA's automatic
settings, FFHQ at 256x256 with the paper's 256 configuration), and your own images at 64-256 pixels:
  python experiments/train.py --config=configs/stylegan2.py:celeba64,folder=~/data/img_align_celeba \
    --workdir=/tmp/genjax/stylegan2_celeba64
  python experiments/train.py --config=configs/stylegan2.py:ffhq256,folder=~/data/ffhq --workdir=/tmp/genjax/sg2_ffhq
  python experiments/train.py --config=configs/stylegan2.py:folder=~/pictures,size=128 --workdir=/tmp/genjax/sg2_mine

Offline, on a CPU (bundled mnist5k, 28x28 digits on a 32x32 canvas, few feature maps, ADA, R1 at every step, no
path-length regulariser; about 4 minutes here). At these widths and this length StyleGAN2 collapses to a few shapes,
as the official networks trained the same way do (README.md, "StyleGAN2's runlocal collapses"): the run exercises
every part of the family, it does not learn the digits:
  python experiments/train.py --config=configs/stylegan2.py:runlocal --workdir=/tmp/genjax/stylegan2_local
Sample with truncation and style-mixing grids:
  python experiments/sample.py --workdir=/tmp/genjax/stylegan2_local --truncation=0.7
"""

import ml_collections

from genjax import config_lib
from genjax import errors


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(
      arg,
      {"augment": ("ada", "diffaugment", "none")},
      runlocal=False,
      cifar10=False,
      celeba64=False,
      ffhq256=False,
      folder="",
      size=64,
      conditional=False,
      augment="ada",
  )
  faces = options.celeba64 or options.ffhq256
  if options.runlocal + options.cifar10 + faces > 1 or (options.folder and (options.runlocal or options.cifar10)):
    raise errors.UserError("Config arguments runlocal, cifar10, celeba64/ffhq256 and folder= choose the data: one.")
  if options.conditional and options.folder:
    raise errors.UserError(
        "conditional trains on CIFAR-10's or the digits' 10 classes; for a folder's classes (its subfolders) set "
        "--config.data.folder_labels=True --config.model.num_classes=K."
    )
  if faces and not options.folder:
    raise errors.UserError("celeba64 and ffhq256 read a folder of images: add folder=PATH.")
  resolution = 256 if options.ffhq256 else 64 if options.celeba64 else options.size if options.folder else 32
  dataset = "mnist5k" if options.runlocal else f"folder:{options.folder}" if options.folder else "cifar10"
  data = config_lib.image_data(dataset, "none", (-1.0, 1.0))
  if options.folder:
    data.image_size = resolution
  config = config_lib.new_experiment("stylegan2", data)

  batch_size = 32 if options.runlocal else 64
  model = config.model
  model.resolution = resolution  # A power of two; smaller data (MNIST's 28) is trained on a canvas of this size.
  model.latent_size = model.w_size = 64 if options.runlocal else 512
  model.mapping_depth = 8 if options.ffhq256 else 2
  model.mapping_lr_multiplier = 0.01
  # Feature maps at resolution r: min(channel_base / r, channel_max).
  model.channel_base, model.channel_max = (256, 32) if options.runlocal else (16384, 512)
  model.num_classes = 10 if options.conditional else 0
  model.mbstd_group_size = 32 if options.cifar10 or not (faces or options.folder or options.runlocal) else 4
  # Modulated convolutions as one grouped convolution per layer (True) or in the batched form (False), which XLA's
  # CPU backend runs far faster (see genjax/models/stylegan.py).
  model.fused_modconv = False
  model.dtype = "float32"

  small = options.runlocal or not (faces or options.folder)  # CIFAR-10 and the digits: ADA's "cifar" regime.
  config.stylegan = ml_collections.ConfigDict(
      dict(
          # R1 gamma: ADA's automatic 0.0002 * resolution^2 / batch for faces and folders, 1 for FFHQ-256.
          r1_gamma=1.0 if options.ffhq256 else 0.01 if small else 0.0002 * resolution**2 / batch_size,
          # Lazy R1 every 16 steps; on a CPU (runlocal) at every step: XLA's CPU backend runs the convolutions of
          # the lazy schedule's conditional branch many times slower (see genjax/trainers/stylegan.py).
          r1_every=1 if options.runlocal else 16,
          # No path-length regulariser for CIFAR-10 (ADA's "cifar") nor on a CPU (a double backward pass per step).
          pl_weight=0.0 if small else 2.0,
          pl_every=4,
          pl_decay=0.01,
          pl_batch_shrink=2,
          style_mixing=0.0 if small and not options.runlocal else 0.9,
          # The generator's weight average: half-life in images (StyleGAN's ema_kimg * 1000), ramp-up (0: none).
          ema_half_life_images=10_000.0 if options.runlocal else 500_000.0 if small else 20_000.0,
          ema_rampup=0.0 if options.ffhq256 else 0.05,
          w_avg_decay=0.995,  # The tracked mean w (truncation's centre), per step.
          augment=options.augment,  # ada | diffaugment | none
          ada_target=0.6,
          ada_every=4,
          ada_speed_images=20_000.0 if options.runlocal else 500_000.0,  # Images for p to go from 0 to 1.
          ada_p_start=0.0,
          truncation=1.0,  # psi of the samples that training and evaluation draw (1: none).
      )
  )
  config.optim = config_lib.optimizer("adam", 0.0025, 0.0, 0.99, "constant")
  total_steps = 1_500 if options.runlocal else 100_000_000 // batch_size  # runlocal: DCGAN runlocal's 1,500 steps.
  config.train = config_lib.training(batch_size, total_steps, 100 if options.runlocal else 1_000)
  config_lib.evaluation_and_checkpoints(config, ("split", "grids"), every_steps=500 if options.runlocal else 10_000)
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
