"""Small helpers shared by configs/ and the entry points: parsing a config's string argument, and the config
sections that every experiment declares the same way (data, eval, ckpt, mesh, distributed).

A config file's `get_config(arg)` receives whatever follows the colon in `--config=configs/vae.py:ARG`.
`parse_arg` turns `"runlocal,dataset=grid"` into a typed `ml_collections.ConfigDict` of the options that config
declares, refusing names it does not declare. What differs between experiments (model, optimiser, schedule) stays
written out in each config file.
"""

import ml_collections

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


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
  """Applies `["section.key=value", ...]` to `config`, converting each value to the type of the value it replaces;
  unknown keys raise `UserError`."""
  for override in overrides:
    dotted_key, has_value, value = override.partition("=")
    *sections, key = dotted_key.strip().split(".")
    parent = config
    for section in sections:
      if section not in parent or not isinstance(parent[section], ml_collections.ConfigDict):
        raise errors.UserError(f"Unknown config section {section!r} in override {override!r}.")
      parent = parent[section]
    if not has_value or key not in parent:
      raise errors.UserError(f"Override {override!r} is not KEY=VALUE with an existing config KEY.")
    current = parent[key]
    if isinstance(current, (list, tuple)):
      item_default = current[0] if current else ""
      parent[key] = type(current)(
          _convert(key, item.strip(), item_default) for item in value.split(",") if item.strip()
      )
    elif current is None:
      parent[key] = value
    else:
      parent[key] = _convert(key, value.strip(), current)


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
          num_workers=0,  # grain worker processes (0: read in the training process); fixes the data order.
      )
  )


def image_gan_dataset(options: ml_collections.ConfigDict) -> str:
  """The dataset of an image GAN config: bundled mnist5k with `runlocal`, TFDS cifar10 with `cifar10`, TFDS mnist
  otherwise."""
  if options.runlocal and options.cifar10:
    raise errors.UserError("Config arguments runlocal and cifar10 exclude each other (runlocal trains on mnist5k).")
  return "mnist5k" if options.runlocal else "cifar10" if options.cifar10 else "mnist"


def point_data(name: str) -> ml_collections.ConfigDict:
  """The `data` section for a 2-D toy mixture ("ring" or "grid"): generated in memory, no image options."""
  return ml_collections.ConfigDict(
      dict(
          name=name,
          train_split="train",
          eval_split="test",
          data_dir=ml_collections.config_dict.placeholder(str),  # Unused: the mixtures are generated, not stored.
          download=False,
          num_workers=0,
      )
  )


def evaluation_and_checkpoints(config: ml_collections.ConfigDict, every_steps: int) -> None:
  """Adds the `eval` and `ckpt` sections: evaluate and checkpoint every `every_steps`, keep the latest 3.

  With `eval.classifier_workdir` set to a configs/classifier.py run, every evaluation of a model that samples also
  writes FID, KID and precision/recall of `eval.num_quality_images` samples in that classifier's feature space.
  """
  config.eval = ml_collections.ConfigDict(
      dict(
          every_steps=every_steps,
          batch_size=200,
          num_grid_images=64,
          classifier_workdir=ml_collections.config_dict.placeholder(str),
          num_quality_images=1000,
      )
  )
  config.ckpt = ml_collections.ConfigDict(dict(every_steps=every_steps, keep=3))


def mesh_and_distributed(config: ml_collections.ConfigDict) -> None:
  """Adds the `mesh` and `distributed` sections that every experiment shares.

  mesh: data parallel over all devices (`shape=(-1,)` fills in the device count).
  distributed: `initialize=True` calls jax.distributed.initialize; on TPU pods and SLURM the other fields are
  detected, elsewhere set them (coordinator "host:port", process count and this process's id).
  """
  config.mesh = ml_collections.ConfigDict(dict(shape=(-1,), axes=("data",), batch_axes=("data",)))
  config.distributed = ml_collections.ConfigDict(
      dict(initialize=False, coordinator_address="", num_processes=-1, process_id=-1)
  )
