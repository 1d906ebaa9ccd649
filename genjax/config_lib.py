"""Small helpers shared by configs/ and the entry points: parsing a config's string argument, the config sections
that every experiment declares the same way (data, optim, train, evals/eval, ckpt, mesh, distributed), and reading
a saved config back with command-line overrides.

A config file's `get_config(arg)` receives whatever follows the colon in `--config=configs/vae.py:ARG`.
`parse_arg` turns `"runlocal,dataset=grid"` into a typed `ml_collections.ConfigDict` of the options that config
declares, refusing names it does not declare. Which dataset, model and hyperparameters an experiment uses stays
written out in its config file.
"""

import copy
import re
from collections.abc import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from genjax import errors


def parse_arg(arg: str | None, choices: dict[str, tuple] | None = None, **defaults) -> ml_collections.ConfigDict:
  """Parses `"flag,key=value"` against declared defaults.

  A bare word sets a boolean default to True (`runlocal`); `key=value` is converted to the default's type and, for
  keys in `choices`, must be one of the listed values. Unknown names raise `UserError` listing the declared ones.
  """
  parsed = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, has_value, value = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise errors.UserError(
          f"Unknown config argument {key!r} in {arg!r}. This config accepts: {', '.join(sorted(defaults))}."
      )
    parsed[key] = _convert(key, value.strip() if has_value else None, defaults[key])
  for key, valid in (choices or {}).items():
    if parsed[key] not in valid:
      raise errors.UserError(f"Config argument {key}={parsed[key]!r} is not one of {', '.join(valid)}.")
  return parsed


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _convert(key: str, value: str | None, default):
  if isinstance(default, bool):
    if value is None:
      return True
    if value.lower() not in _BOOLEANS:
      raise errors.UserError(f"Config argument {key}={value!r} is not a boolean (use true or false).")
    return _BOOLEANS[value.lower()]
  if value is None:
    raise errors.UserError(f"Config argument {key!r} needs a value, as in {key}=VALUE.")
  try:
    return type(default)(value)
  except ValueError:
    raise errors.UserError(f"Config argument {key}={value!r} is not a valid {type(default).__name__}.") from None


# Sweeps: a config file's `get_sweep(name)` returns a list of points, each a dict of config overrides
# ({"gan.loss": "hinge", "seed": 1}), built with these helpers in the style of big_vision's hyper functions.


def sweep(key: str, values) -> list[dict]:
  """One point per value of `key`: `sweep("seed", [0, 1])` -> `[{"seed": 0}, {"seed": 1}]`."""
  return [{key: value} for value in values]


def product(*sweeps: list[dict]) -> list[dict]:
  """Every combination of one point from each sweep, merged (the first sweep varies slowest)."""
  points = [{}]
  for points_of_one in sweeps:
    points = [{**point, **other} for point in points for other in points_of_one]
  return points


def zipped(*sweeps: list[dict]) -> list[dict]:
  """The i-th points of every sweep, merged; the sweeps must have as many points each."""
  if len({len(points) for points in sweeps}) > 1:
    raise errors.UserError(f"zipped sweeps differ in length: {[len(points) for points in sweeps]}.")
  return [{key: value for point in points for key, value in point.items()} for points in zip(*sweeps)]


def seeds(count: int) -> list[dict]:
  """`count` seeds, 0 to count - 1."""
  return sweep("seed", range(count))


def pick(name: str, sweeps: dict[str, list[dict]]) -> list[dict]:
  """The sweep `name` of a config's named sweeps; KeyError, which sweep.py reports as an unknown sweep."""
  if name not in sweeps:
    raise KeyError(name)
  return sweeps[name]


def one_class(num_classes: int) -> list[dict]:
  """The one-class anomaly-detection protocol: one point per class, that class left out of training and scored as
  the anomaly of the eval split by the "anomaly" evaluation."""
  return [{"data.exclude_classes": (label,), "evals": ("split", "anomaly")} for label in range(num_classes)]


def one_normal_class(num_classes: int) -> list[dict]:
  """The other one-class protocol (Deep SVDD's): one point per class, trained on that class alone, every other
  class an anomaly of the eval split."""
  return [
      {
          "data.exclude_classes": tuple(other for other in range(num_classes) if other != label),
          "evals": ("split", "anomaly"),
      }
      for label in range(num_classes)
  ]


def set_values(config: ml_collections.ConfigDict, values: dict) -> None:
  """Sets `{"section.key": value}` in `config` (the keys must exist)."""
  for dotted_key, value in values.items():
    *sections, key = dotted_key.split(".")
    node = config
    for section in sections:
      node = node[section]
    node[key] = value


def from_json(saved: dict) -> ml_collections.ConfigDict:
  """A config read back from a run's config.json, typed as the config file made it: JSON's lists become tuples, and
  unset values (null) become unset string fields (every optional field of a genjax config is a path or a name), so
  that command-line overrides apply to them."""

  def typed(value):
    if isinstance(value, dict):
      return ml_collections.ConfigDict({key: typed(item) for key, item in value.items()})
    if isinstance(value, list):
      return tuple(typed(item) for item in value)
    if value is None:
      return ml_collections.config_dict.placeholder(str)
    return value

  return typed(saved)


def with_added_keys(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A saved config with the keys that genjax added since it was written, set to the values that keep what the
  run did (no classes left out, every example, no generated data, pairs as stored; the flat evaluation options
  moved into their evaluations' sections, and options they gained since at their defaults; a penalty at every
  critic update, the weight average by its decay, the hybrid loss's weight), so that older runs still load."""
  for key, value in _train_subset().items():
    if key not in saved.data:
      saved.data[key] = value
  if "image_key" in saved.data and "reverse_pairs" not in saved.data:  # Image data.
    saved.data.reverse_pairs = False
  if "grids" not in saved.eval:
    flat = {key: saved.eval[key] for key in _FLAT_EVAL_OPTIONS if key in saved.eval}
    saved.eval = ml_collections.ConfigDict(
        dict(every_steps=saved.eval.every_steps, batch_size=saved.eval.batch_size, **_evaluator_options())
    )
    set_values(saved.eval, {new: flat[old] for old, news in _FLAT_EVAL_OPTIONS.items() if old in flat for new in news})
  for name, options in _evaluator_options().items():  # Evaluations, and options of theirs, added since.
    if name not in saved.eval:
      saved.eval[name] = ml_collections.ConfigDict(options)
    for key, value in options.items():
      if key not in saved.eval[name]:
        saved.eval[name][key] = value
  if "gan" in saved:
    for key, value in dict(penalty_every=1, ema_half_life_images=0.0).items():
      if key not in saved.gan:
        saved.gan[key] = value
  if "diffusion" in saved and "vlb_weight" not in saved.diffusion:  # Unused by the fixed variances of those runs.
    saved.diffusion.vlb_weight = 0.001
  return saved


def override(config: ml_collections.ConfigDict, arguments: Sequence[str]) -> ml_collections.ConfigDict:
  """`config` with command-line overrides applied (`["--config.train.total_steps=9", ...]`), parsed by
  ml_collections exactly as experiments/train.py parses them. Unknown keys and values of the wrong type raise
  `UserError`."""
  if not arguments:
    return config
  flag_values = flags.FlagValues()
  argv = ["genjax", *arguments]
  try:
    config_flags.DEFINE_config_dict("config", copy.deepcopy(config), flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    raise errors.UserError(f"Cannot apply {' '.join(arguments)}: {describe_config_error(e)}") from None
  return flag_values.config


def describe_config_error(error: Exception) -> str:
  """One readable line from ml_collections' errors, which nest a KeyError's repr inside an AttributeError: its
  "'\\'total_stepz\\'\\nDid you mean ...?'" reads "'total_stepz' is not a config key. Did you mean ...?"."""
  text = str(error).replace("\\n", "\n").replace("\\'", "'").strip()
  # Peel the reprs around the message, down to a quoted key.
  while len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" and not re.fullmatch(r"'[^'\s]*'", text):
    text = text[1:-1].strip()
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if lines and re.fullmatch(r"'[^']*'", lines[0]):  # A KeyError's message is the missing key alone.
    lines[0] += " is not a config key."
  return " ".join(lines)


def new_experiment(family: str, data: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """What every experiment's config starts from (unlocked): its family, seed 0, its `data` section and an empty
  `model` section to fill."""
  config = ml_collections.ConfigDict()
  config.family = family
  config.seed = 0
  config.data = data
  config.model = ml_collections.ConfigDict()
  return config


def image_data(name: str, binarize: str, pixel_range: tuple[float, float]) -> ml_collections.ConfigDict:
  """The `data` section for a TFDS image dataset, read whole splits "train" and "test"."""
  return ml_collections.ConfigDict(
      dict(
          name=name,
          train_split="train",
          eval_split="test",
          data_dir=ml_collections.config_dict.placeholder(str),  # None: TFDS's default (~/tensorflow_datasets).
          download=True,
          binarize=binarize,  # none | dynamic | threshold
          pixel_range=pixel_range,
          random_flip=False,
          random_crop_padding=0,
          image_key="image",  # The feature that holds the images (div2k's high-resolution ones: "hr").
          channels=0,  # 1 (grey, the luma of colour images) | 3 | 0: as stored.
          patch_size=0,  # > 0: random square patches cut from images of any size (restoration).
          image_size=0,  # "folder:..." data: > 0 resizes and centre-crops each image to this side (generation).
          folder_labels=False,  # "folder:..." data: each image's label is its top-level subfolder.
          reverse_pairs=False,  # Paired folders: translate each pair's target into its input (facades: B -> A).
          **_train_subset(),
          **_input_path(),
      )
  )


def point_data(name: str) -> ml_collections.ConfigDict:
  """The `data` section for a 2-D toy mixture ("ring" or "grid"): generated in memory, no image options."""
  return ml_collections.ConfigDict(
      dict(
          name=name,
          train_split="train",
          eval_split="test",
          data_dir=ml_collections.config_dict.placeholder(str),  # Unused: the mixtures are generated, not stored.
          download=False,
          **_train_subset(),
          **_input_path(),
      )
  )


def _train_subset() -> dict:
  """What of a labelled train split is trained on (see genjax/data/sources.py; the eval split is always whole), and
  the generated examples mixed in (see genjax/synthetic.py).

  exclude_classes: labels left out of training, e.g. (3,): the one-class protocol of anomaly detection.
  real_per_class:  > 0 trains on that many examples per class, drawn by config.seed (a small labelled set).
  synthetic:       workdir: a trained class-conditional generator (a run's directory) whose samples replace
                   `fraction` of every train batch (1.0: generated examples only, the Classification Accuracy
                   Score protocol), drawn on the device with labels `uniform` over the classes or matching the
                   `real` train split's class balance.
  """
  return dict(
      exclude_classes=(),
      real_per_class=0,
      synthetic=ml_collections.ConfigDict(
          dict(workdir=ml_collections.config_dict.placeholder(str), fraction=0.5, labels="uniform")
      ),
  )


def _input_path() -> dict:
  """How training examples reach the device (see genjax/data/pipeline.py). on_device: auto (the train split on the
  device when it takes at most on_device_max_bytes and a quarter of a device's memory) | true | false (read on the
  host); num_workers: the host path's grain worker processes (-1: one per core beyond two, at most 8; 0: threads
  in the training process). Neither changes the data order."""
  return dict(on_device="auto", on_device_max_bytes=2**30, num_workers=-1)


def optimizer(
    name: str, lr: float, b1: float, b2: float, schedule: str, warmup_steps: int = 0
) -> ml_collections.ConfigDict:
  """The `optim` section. name: adam | adamw | rmsprop (RMSProp ignores b1 and uses b2 as its decay); schedule:
  constant | cosine (to 0 at total_steps), after a linear warm-up of `warmup_steps`; weight_decay applies to adamw;
  grad_clip_norm = 0 disables clipping."""
  return ml_collections.ConfigDict(
      dict(
          name=name,
          lr=lr,
          b1=b1,
          b2=b2,
          weight_decay=0.0,
          schedule=schedule,
          warmup_steps=warmup_steps,
          grad_clip_norm=0.0,
      )
  )


def gan(
    loss: str,
    penalty: str = "none",
    penalty_weight: float = 10.0,
    n_critic: int = 1,
    weight_clip: float = 0.0,
    ema_decay: float = 0.999,
    ema_start_step: int = 500,
    penalty_every: int = 1,
    ema_half_life_images: float = 0.0,
) -> ml_collections.ConfigDict:
  """The `gan` section. loss: non_saturating | minimax | hinge | least_squares | wasserstein; penalty on the critic:
  none | wgan_gp | r1, weighted by penalty_weight (WGAN-GP's lambda, R1's gamma) and computed every penalty_every
  critic updates with its weight times penalty_every (StyleGAN2's lazy regularisation; 1: every update); n_critic
  critic updates per generator update; weight_clip: WGAN's critic weight clipping c (0 disables); ema_decay: the
  generator weight average that samples use (0 disables), following the weights until ema_start_step;
  ema_half_life_images > 0 sets that decay from a half-life in training images instead (StyleGAN's ema_kimg * 1000),
  0.5 ** (train.batch_size / ema_half_life_images)."""
  return ml_collections.ConfigDict(
      dict(
          loss=loss,
          penalty=penalty,
          penalty_weight=penalty_weight,
          n_critic=n_critic,
          weight_clip=weight_clip,
          ema_decay=ema_decay,
          ema_start_step=ema_start_step,
          penalty_every=penalty_every,
          ema_half_life_images=ema_half_life_images,
      )
  )


def restoration(
    sigma: float = 25.0, scale: int = 2, mask: str = "center", loss: str = "l2"
) -> ml_collections.ConfigDict:
  """The `restoration` section: the degradation and the loss (see genjax/trainers/restoration.py). sigma: Gaussian
  noise on the 8-bit scale, and sigma_max > sigma draws each image's sigma from [sigma, sigma_max] (blind
  denoising); scale: 2 | 3 | 4, bicubic downscaling; mask: center | boxes | strokes; loss: l2 | l1 per pixel.

  The perceptual and adversarial terms start off (weights 0); `perceptual_and_adversarial` sets them."""
  return ml_collections.ConfigDict(
      dict(
          sigma=sigma,
          sigma_max=sigma,
          scale=scale,
          mask=mask,
          loss=loss,
          pixel_weight=1.0,
          perceptual_weight=0.0,
          perceptual_network=19,
          perceptual_layer="conv5_4",
          perceptual_criterion="l1",
          perceptual_weights="",
          adversarial_weight=0.0,
          adversarial_loss="relativistic_average",
          ema_decay=0.0,
      )
  )


def perceptual_and_adversarial(
    options: ml_collections.ConfigDict,
    *,
    pixel_weight: float,
    perceptual_weight: float,
    perceptual_network: int,
    perceptual_layer: str,
    perceptual_criterion: str,
    adversarial_weight: float,
    adversarial_loss: str,
    ema_decay: float,
) -> None:
  """Sets the SRGAN/ESRGAN terms of a `restoration` section: the weight of each loss, the VGG layer the perceptual
  loss compares (`perceptual_criterion`: l1 | l2) and the adversarial loss (a GAN loss or relativistic_average)."""
  options.update(
      dict(
          pixel_weight=pixel_weight,
          perceptual_weight=perceptual_weight,
          perceptual_network=perceptual_network,
          perceptual_layer=perceptual_layer,
          perceptual_criterion=perceptual_criterion,
          adversarial_weight=adversarial_weight,
          adversarial_loss=adversarial_loss,
          ema_decay=ema_decay,
      )
  )


def training(batch_size: int, total_steps: int, log_every_steps: int) -> ml_collections.ConfigDict:
  """The `train` section; `batch_size` is the global batch, over all devices and processes."""
  return ml_collections.ConfigDict(
      dict(batch_size=batch_size, total_steps=total_steps, log_every_steps=log_every_steps)
  )


def evaluation_and_checkpoints(
    config: ml_collections.ConfigDict,
    evals: tuple[str, ...],
    every_steps: int,
    batch_size: int = 200,
    checkpoint_every_steps: int | None = None,
    keep: int = 3,
) -> None:
  """Adds `evals` (the evaluations to run, see `genjax.evaluators`), their options in `eval`, and `ckpt`: evaluate
  every `every_steps`, checkpoint every `checkpoint_every_steps` (the same by default), keep the latest `keep`.

  `eval` holds what every evaluation shares (`every_steps`; `batch_size`, the global batch of evaluation) and one
  section per evaluation, which that evaluation alone reads (`config.eval.<name>.*`):
    grids            num_images: images in each grid;
    mode_coverage    num_samples: samples scored;
    sample_quality   feature_network: classifier (a configs/classifier.py run named by classifier_workdir) or
                     inception (the FID Inception-v3, weights from inception_weights or the cache); num_images: N
                     (0: the whole eval split); real_floor: also score N training images against the same real ones;
    likelihood       iwae_samples: importance samples of the bound; num_images: the first N of the eval split
                     (0: all; a diffusion bound takes T network passes an image);
    anomaly          iwae_samples of the likelihood scores; num_images: the most anomalous images shown;
    restoration      baselines: also score the classical methods (once, at the start).
  """
  config.evals = evals
  config.eval = ml_collections.ConfigDict(dict(every_steps=every_steps, batch_size=batch_size, **_evaluator_options()))
  config.ckpt = ml_collections.ConfigDict(dict(every_steps=checkpoint_every_steps or every_steps, keep=keep))


def _evaluator_options() -> dict:
  """Each evaluation's options and their defaults (see `evaluation_and_checkpoints`)."""
  return dict(
      grids=dict(num_images=64),
      mode_coverage=dict(num_samples=2_500),
      sample_quality=dict(
          feature_network="classifier",
          classifier_workdir=ml_collections.config_dict.placeholder(str),
          inception_weights=ml_collections.config_dict.placeholder(str),
          num_images=1000,
          real_floor=False,
      ),
      likelihood=dict(iwae_samples=100, num_images=0),
      anomaly=dict(iwae_samples=100, num_images=64),
      restoration=dict(baselines=True),
  )


# Where each option of the flat `eval` section of runs saved before the evaluations had sections of their own went.
_FLAT_EVAL_OPTIONS = {
    "num_grid_images": ("grids.num_images", "anomaly.num_images"),
    "num_samples": ("mode_coverage.num_samples",),
    "feature_network": ("sample_quality.feature_network",),
    "classifier_workdir": ("sample_quality.classifier_workdir",),
    "inception_weights": ("sample_quality.inception_weights",),
    "num_quality_images": ("sample_quality.num_images",),
    "real_floor": ("sample_quality.real_floor",),
    "iwae_samples": ("likelihood.iwae_samples", "anomaly.iwae_samples"),
    "baselines": ("restoration.baselines",),
}


def mesh_and_distributed(config: ml_collections.ConfigDict) -> None:
  """Adds the `mesh`, `sharding` and `distributed` sections that every experiment shares.

  mesh: named axes over all devices (`shape=(-1,)` fills in the device count); the batch is split over
  `batch_axes`.
  sharding: how the train state is laid out (see genjax/sharding.py): `rules`, (regex, replicate | fsdp) pairs,
  first match wins; `fsdp` shards over `fsdp_axis` arrays of at least `min_fsdp_size` elements.
  distributed: `initialize=True` (or GENJAX_DISTRIBUTED=1, which the launch scripts set) calls
  jax.distributed.initialize; on TPU pods and SLURM the other fields are detected, elsewhere set them (coordinator
  "host:port", process count and this process's id).
  """
  config.mesh = ml_collections.ConfigDict(dict(shape=(-1,), axes=("data",), batch_axes=("data",)))
  config.sharding = ml_collections.ConfigDict(dict(rules=((".*", "replicate"),), fsdp_axis="data", min_fsdp_size=2**12))
  config.distributed = ml_collections.ConfigDict(
      dict(initialize=False, coordinator_address="", num_processes=-1, process_id=-1)
  )
