"""Classifier family: a convolutional image classifier trained on softmax cross-entropy against the data's labels.

genjax trains it to serve as the domain feature network of FID, KID and precision/recall on MNIST-like data (as
TF-GAN does with its MNIST classifier): its `features` capability maps images to the classifier's penultimate
activations. Labels must lie in [0, config.model.num_classes).
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax.data import sources
from genjax.models import classifiers
from genjax.trainers import common
from genjax.trainers import contract

ARCHITECTURES = ("conv",)


def check_config(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> None:
  """Raises `UserError` for an unknown architecture, fewer than 2 classes, a dropout rate outside [0, 1), or images
  too small for the pooling stages."""
  model_config = config.model
  if model_config.architecture not in ARCHITECTURES:
    raise errors.UserError(
        f"config.model.architecture={model_config.architecture!r} is not one of {', '.join(ARCHITECTURES)}."
    )
  if model_config.num_classes < 2:
    raise errors.UserError(f"config.model.num_classes={model_config.num_classes} must be >= 2.")
  if not 0.0 <= model_config.dropout_rate < 1.0:
    raise errors.UserError(f"config.model.dropout_rate={model_config.dropout_rate} must be in [0, 1).")
  height, width, _ = common.image_shape(spec, "classifier")
  smallest = 2 ** len(model_config.channels)
  if min(height, width) < smallest:
    raise errors.UserError(
        f"{height}x{width} images are too small for {len(model_config.channels)} pooling stages "
        f"(config.model.channels={tuple(model_config.channels)}); they need at least {smallest}x{smallest}."
    )


def _model(model_config: ml_collections.ConfigDict) -> classifiers.ConvClassifier:
  return classifiers.ConvClassifier(
      tuple(model_config.channels), model_config.feature_size, model_config.num_classes, model_config.dropout_rate
  )


def make_trainer(config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> contract.Trainer:
  """Builds the classifier's pure functions for the labelled images of `spec`.

  Train and eval metrics: "loss" (cross-entropy, nats per image) and "accuracy" (fraction of top-1 hits); training
  lines also carry "grad_norm". Its `features` capability gives the penultimate activations and the class logits, for
  the `params` of a restored state; both are deterministic (dropout is off outside training).
  """
  check_config(config, spec)
  if not spec.has_labels:
    raise errors.UserError(
        f"The classifier family trains on labelled images; dataset {config.data.name!r} has no labels "
        f"(it has {', '.join(spec.shapes)}). Choose a labelled dataset, e.g. --config.data.name=mnist."
    )
  image_shape = spec.data_shape
  model = _model(config.model)
  apply = common.mixed_precision(model.apply, config.model.dtype)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)

  def init(key):
    params = model.init(key, jnp.zeros((1, *image_shape), jnp.float32), train=False)["params"]
    return common.new_state(params, optimizer)

  def per_example_metrics(params, batch, dropout_key, train):
    """`[N]` loss and accuracy; dropout is on in training only."""
    rngs = {"dropout": dropout_key} if train else None
    logits = apply({"params": params}, batch["image"], train=train, rngs=rngs)
    labels = batch["label"]
    return {
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
        "accuracy": (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32),
    }

  train_step, eval_step = common.steps_from_per_example_metrics(per_example_metrics, optimizer)

  def features(params, images: jax.Array) -> jax.Array:
    return apply({"params": params}, images, method=classifiers.ConvClassifier.features)

  return contract.Trainer(
      init,
      train_step,
      eval_step,
      needs_labels=True,
      features=contract.Features(
          features,
          lambda state: state.params,
          tuple(config.data.pixel_range),
          classify=lambda params, images: apply({"params": params}, images, train=False),
      ),
  )
