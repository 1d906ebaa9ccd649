"""CycleGAN (Zhu et al. 2017): two ResNet generators translate between two unpaired domains, each trained against
a PatchGAN of its output domain and held to the cycle A -> B -> A (and B -> A -> B).

The published settings (junyanz/pytorch-CycleGAN-and-pix2pix): ResNet generators with 9 residual blocks at 256 px
(6 at 128: config.model.num_blocks), 64 base features, reflection padding and instance normalisation, no dropout;
70x70 PatchGANs (3 layers, 64 base features); the least-squares loss; cycle weight 10 per direction and identity
weight 0.5 x 10; critics shown fakes through a pool of 50 past ones; Adam 2e-4 with beta1 0.5, constant for the
first half of training and then decayed linearly to 0; N(0, 0.02) initialisation; images resized, randomly
cropped and flipped; batch 1 (config.train.batch_size; larger works).

TFDS's CycleGAN datasets (downloaded on first use; any other of them through
--config.data.name=cycle_gan/apple2orange, ...):
  python experiments/train.py --config=configs/cyclegan.py:horse2zebra --workdir=/tmp/genjax/cyclegan_horse2zebra
  python experiments/train.py --config=configs/cyclegan.py:monet2photo --workdir=/tmp/genjax/cyclegan_monet2photo

Any two folders of images, e.g. horse2zebra's trainA and trainB:
  python experiments/train.py --config=configs/cyclegan.py: --workdir=/tmp/genjax/cyclegan_folders \
    --config.data.name=unpaired:/data/horse2zebra/trainA,/data/horse2zebra/trainB

Offline, on a CPU, a task whose answer is known: two disjoint halves of the bundled MNIST digits, side B's digits
thickened (a 3x3 grey dilation) and never shown beside their originals; scored against the true thickening:
  python experiments/train.py --config=configs/cyclegan.py:runlocal --workdir=/tmp/genjax/cyclegan_local
"""

import ml_collections

from configs import pix2pix
from genjax import config_lib
from genjax import errors


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(arg, runlocal=False, horse2zebra=False, monet2photo=False)
  datasets = {
      "runlocal": "known_map:thicker_digits",
      "horse2zebra": "cycle_gan/horse2zebra",
      "monet2photo": "cycle_gan/monet2photo",
  }
  chosen = [argument for argument in datasets if options[argument]]
  if len(chosen) > 1:
    raise errors.UserError(f"Config arguments {', '.join(datasets)} choose the data: one.")
  name = datasets[chosen[0]] if chosen else "unpaired:/data/horse2zebra/trainA,/data/horse2zebra/trainB"
  config = config_lib.new_experiment("translation", config_lib.image_data(name, "none", (-1.0, 1.0)))
  config.data.random_flip = not options.runlocal  # Digits are not mirror-symmetric.
  config.data.channels = 1 if options.runlocal else 3
  # Unpaired images are read whole: resized to 256 and shifted by up to 15 pixels (reflected at the borders), in
  # place of the reference's resize to 286 and random 256 crop.
  config.data.image_size = 0 if options.runlocal else 256
  config.data.random_crop_padding = 0 if options.runlocal else 15
  config.model = pix2pix.model("resnet", "instance", 0.0)
  if options.runlocal:  # 28x28 digits: a smaller generator, and a PatchGAN of 2 layers (each logit sees 34x34).
    config.model.num_blocks = 3
    config.model.g_features = config.model.d_features = 16
    config.model.d_layers = 2
  config.translation = pix2pix.translation(
      # 2: losses' least squares is (D - 1)^2 / 2 where the reference's MSE is (D - 1)^2.
      "cyclegan", "least_squares", adversarial_weight=2.0, cycle_weight=10.0, identity_weight=0.5, pool_size=50
  )
  config.optim = config_lib.optimizer("adam", 2e-4, 0.5, 0.999, "linear_decay")
  config.train = config_lib.training(8 if options.runlocal else 1, 1_000 if options.runlocal else 400_000, 100)
  config_lib.evaluation_and_checkpoints(config, ("translation",), every_steps=500 if options.runlocal else 20_000)
  config.eval.translation = pix2pix.evaluation()
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
