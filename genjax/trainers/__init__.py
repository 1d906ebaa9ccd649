"""Per-family trainers: each module builds the train state and the pure train/eval steps of one model family.

`FAMILIES` maps `config.family` to the family's `make_trainer(config, example_shapes)`, where `example_shapes` maps the keys of one
example ("image" or "point", and "label" if the data has labels) to their shapes.
"""

from genjax import errors
from genjax.trainers import autoencoder
from genjax.trainers import classifier
from genjax.trainers import common
from genjax.trainers import gan
from genjax.trainers import vae

FAMILIES = {
    "autoencoder": autoencoder.make_trainer,
    "vae": vae.make_trainer,
    "gan": gan.make_trainer,
    "classifier": classifier.make_trainer,
}


def make_trainer(config, example_shapes: dict[str, tuple[int, ...]]) -> common.Trainer:
  if config.family not in FAMILIES:
    raise errors.UserError(f"config.family={config.family!r} is not one of {', '.join(FAMILIES)}.")
  return FAMILIES[config.family](config, example_shapes)
