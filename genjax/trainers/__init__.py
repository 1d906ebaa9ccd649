"""Per-family trainers: each module builds the train state and the pure train/eval steps of one model family, and
the capabilities it offers (see `contract`).

`FAMILIES` maps `config.family` to the family's `make_trainer(config, spec)`, where `spec` is the
`sources.ExampleSpec` of the data it trains on.
"""

from genjax import errors
from genjax.data import sources
from genjax.trainers import autoencoder
from genjax.trainers import classifier
from genjax.trainers import contract
from genjax.trainers import diffusion
from genjax.trainers import gan
from genjax.trainers import restoration
from genjax.trainers import stylegan
from genjax.trainers import translation
from genjax.trainers import vae

FAMILIES = {
    "autoencoder": autoencoder.make_trainer,
    "vae": vae.make_trainer,
    "gan": gan.make_trainer,
    "classifier": classifier.make_trainer,
    "restoration": restoration.make_trainer,
    "translation": translation.make_trainer,
    "diffusion": diffusion.make_trainer,
    "stylegan2": stylegan.make_trainer,
}


def make_trainer(config, spec: sources.ExampleSpec) -> contract.Trainer:
  if config.family not in FAMILIES:
    raise errors.UserError(f"config.family={config.family!r} is not one of {', '.join(FAMILIES)}.")
  trainer = FAMILIES[config.family](config, spec)
  if trainer.needs_labels and not spec.has_labels:
    raise errors.UserError(
        f"This {config.family} model is class-conditional, but dataset {config.data.name!r} has no labels; "
        "train it unconditionally (config.model.num_classes=0) or on a labelled dataset."
    )
  wanted = config.model.get("num_classes", 0)
  if trainer.needs_labels and wanted and spec.num_classes and wanted != spec.num_classes:
    raise errors.UserError(
        f"config.model.num_classes={wanted}, but dataset {config.data.name!r} has {spec.num_classes} classes; set "
        f"--config.model.num_classes={spec.num_classes}."
    )
  return trainer
