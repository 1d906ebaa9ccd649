"""pix2pix (Isola et al. 2017): a U-Net translates an input image into its paired target, trained against a
conditional 70x70 PatchGAN that sees the input beside the output, with L1 weight 100.

The published settings (junyanz/pytorch-CycleGAN-and-pix2pix): unet_256 (config.model.num_downs=8; unet_128 is 7)
with 64 base features, batch normalisation and decoder dropout 0.5; the PatchGAN with 3 layers of 64 base features;
the non-saturating loss; Adam 2e-4 with beta1 0.5, constant for the first half of training and then decayed
linearly to 0; N(0, 0.02) initialisation; images resized to 286 and randomly cropped to 256 and flipped (one draw
for both images of a pair); batch 1 (config.train.batch_size; larger works).

The pix2pix datasets as they ship, side-by-side pairs in /data/<dataset>/train: edges2shoes (the default; edges
left, photo right), maps (aerial photo -> map, 200 epochs of its 1,096 pairs) and facades (stored photo | labels
and trained labels -> photo, the reference's --direction BtoA: config.data.reverse_pairs; 200 epochs of its 400
pairs); or two folders of files matched by name (pairs:DIR_A,DIR_B):
  python experiments/train.py --config=configs/pix2pix.py: --workdir=/tmp/genjax/pix2pix_edges2shoes
  python experiments/train.py --config=configs/pix2pix.py:dataset=facades --workdir=/tmp/genjax/pix2pix_facades
  python experiments/train.py --config=configs/pix2pix.py:dataset=maps --workdir=/tmp/genjax/pix2pix_maps
  python experiments/train.py --config=configs/pix2pix.py: --workdir=/tmp/genjax/pix2pix_mine \
    --config.data.name=pairs:/data/inputs,/data/targets

Offline, on a CPU (grey -> colour on 64x64 patches of the photographs bundled with scikit-image; a smaller U-Net of
6 levels; edges -> photo with task=edges2photo):
  python experiments/train.py --config=configs/pix2pix.py:runlocal --workdir=/tmp/genjax/pix2pix_local
  python experiments/train.py --config=configs/pix2pix.py:runlocal,task=edges2photo --workdir=/tmp/genjax/edges_local

The L1-only U-Net of the same size (no adversary), the baseline that pix2pix trades PSNR against for realism:
  python experiments/train.py --config=configs/pix2pix.py:runlocal --workdir=/tmp/genjax/pix2pix_l1_only \
    --config.translation.adversarial_weight=0
"""

import ml_collections

from genjax import config_lib


# The published schedules: 200 epochs at batch 1 for facades (400 train pairs) and maps (1,096).
_TOTAL_STEPS = {"edges2shoes": 400_000, "facades": 200 * 400, "maps": 200 * 1_096}


def translation(method: str, loss: str, **weights) -> ml_collections.ConfigDict:
  """The `translation` section (see genjax/trainers/translation.py). method: pix2pix | cyclegan; loss: the critics'
  GAN loss; adversarial_weight: of the generators' adversarial terms; l1_weight: pix2pix's L1 to the target;
  cycle_weight and identity_weight (a fraction of cycle_weight): CycleGAN's; pool_size: past fakes the critics see
  (0: none)."""
  defaults = dict(adversarial_weight=1.0, l1_weight=0.0, cycle_weight=0.0, identity_weight=0.0, pool_size=0)
  return ml_collections.ConfigDict(dict(method=method, loss=loss, **{**defaults, **weights}))


def model(generator: str, norm: str, dropout: float) -> ml_collections.ConfigDict:
  """The `model` section of a translator: the generator (unet: num_downs levels; resnet: num_blocks residual
  blocks), its base features, the PatchGAN's layers and base features, normalisation and decoder dropout."""
  return ml_collections.ConfigDict(
      dict(
          generator=generator,  # unet | resnet
          num_downs=8,  # unet: 8 = unet_256, 7 = unet_128 (the bottleneck is 1x1 at that size).
          num_blocks=9,  # resnet: 9 at 256 px, 6 at 128 px.
          g_features=64,
          d_features=64,
          d_layers=3,  # 3: the 70x70 PatchGAN.
          norm=norm,  # batch | instance
          dropout=dropout,
          dtype="float32",  # Compute dtype: float32 | bfloat16 (parameters stay float32).
      )
  )


def evaluation() -> ml_collections.ConfigDict:
  """The options of the "translation" evaluation (see genjax/evaluators/translation.py): eval images are cut to
  their central square of at most crop_size pixels a side; classifier_workdir: a configs/classifier.py run whose
  reading of inputs and translations is compared (None: not scored)."""
  return ml_collections.ConfigDict(
      dict(crop_size=256, classifier_workdir=ml_collections.config_dict.placeholder(str))
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = config_lib.parse_arg(
      arg, {"dataset": tuple(_TOTAL_STEPS)}, runlocal=False, task="grey2colour", dataset="edges2shoes"
  )
  name = f"known_map:{options.task}" if options.runlocal else f"sidebyside:/data/{options.dataset}/train"
  config = config_lib.new_experiment("translation", config_lib.image_data(name, "none", (-1.0, 1.0)))
  config.data.reverse_pairs = options.dataset == "facades" and not options.runlocal
  config.data.random_flip = True
  config.data.channels = 3
  config.data.image_size = 0 if options.runlocal else 286  # Folders: resized to 286, then cropped to 256.
  config.data.patch_size = 64 if options.runlocal else 256
  config.model = model("unet", "batch", 0.5)
  if options.runlocal:
    config.model.num_downs = 6  # 64 -> 1 at the bottleneck, as unet_256 at 256.
    config.model.g_features = config.model.d_features = 32
  config.translation = translation("pix2pix", "non_saturating", l1_weight=100.0)
  config.optim = config_lib.optimizer("adam", 2e-4, 0.5, 0.999, "linear_decay")
  total_steps = 1_000 if options.runlocal else _TOTAL_STEPS[options.dataset]
  config.train = config_lib.training(4 if options.runlocal else 1, total_steps, 100)
  config_lib.evaluation_and_checkpoints(config, ("translation",), every_steps=500 if options.runlocal else 20_000)
  config.eval.translation = evaluation()
  config_lib.mesh_and_distributed(config)
  config.lock()
  return config
