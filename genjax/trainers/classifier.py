"""Classifier family: a convolutional image classifier trained on softmax cross-entropy against the data's labels.

genjax trains it to serve as the domain feature network of FID, KID and precision/recall on MNIST-like data (as
TF-GAN does with its MNIST classifier): `feature_fn` turns a restored state's parameters into the function that maps
images to the classifier's penultimate activations. Labels must lie in [0, config.model.num_classes).
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax import errors
from genjax.models import classifiers
from genjax.trainers import common

ARCHITECTURES = ("conv",)


def check_config(config: ml_collections.ConfigDict, example_shapes: dict[str, tuple[int, ...]]) -> None:
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
  height, width, _ = common.image_shape(example_shapes, "classifier")
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


def make_trainer(config: ml_collections.ConfigDict, example_shapes: dict[str, tuple[int, ...]]) -> common.Trainer:
  """Builds the classifier's pure functions for labelled images of `example_shapes["image"]` (H, W, C).

  Train and eval metrics: "loss" (cross-entropy, nats per image) and "accuracy" (fraction of top-1 hits); training
  lines also carry "grad_norm".
  """
  check_config(config, example_shapes)
  if "label" not in example_shapes:
    raise errors.UserError(
        f"The classifier family trains on labelled images; dataset {config.data.name!r} has no labels "
        f"(it has {', '.join(example_shapes)}). Choose a labelled dataset, e.g. --config.data.name=mnist."
    )
  image_shape = example_shapes["image"]
  model = _model(config.model)
  optimizer = common.make_optimizer(config.optim, config.train.total_steps)

  def init(key):
    params = model.init(key, jnp.zeros((1, *image_shape), jnp.float32), train=False)["params"]
    return common.new_state(params, optimizer)

  def per_example_metrics(params, images, labels, dropout_key):
    """`[N]` loss and accuracy; dropout is on exactly when a `dropout_key` is given."""
    train = dropout_key is not None
    logits = model.apply({"params": params}, images, train=train, rngs={"dropout": dropout_key} if train else None)
    return {
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
        "accuracy": (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32),
    }

  # The structure of `common.steps_from_per_example_metrics`, whose metrics see images only, with labels added.
  def train_step(state: common.TrainState, batch: common.Batch, key: jax.Array):
    def loss_fn(params):
      metrics = jax.tree.map(jnp.mean, per_example_metrics(params, batch["image"], batch["label"], key))
      return metrics["loss"], metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics["grad_norm"] = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_step(state: common.TrainState, batch: common.Batch, key: jax.Array) -> common.Metrics:
    del key  # Evaluation is deterministic: no dropout.
    return common.masked_sums(per_example_metrics(state.params, batch["image"], batch["label"], None), batch["mask"])

  return common.Trainer(init, train_step, eval_step, reconstruct=None, generate=None, needs_labels=True)


def feature_fn(config: ml_collections.ConfigDict, example_shapes: dict[str, tuple[int, ...]]):
  """`features(params, images [N, H, W, C]) -> [N, config.model.feature_size]`: the penultimate activations of the
  classifier that `config` trains on images of `example_shapes`, for the `params` of its restored train state.

  Images are in the classifier's `config.data.pixel_range`; the function is pure and deterministic (no dropout).
  """
  check_config(config, example_shapes)
  model = _model(config.model)

  def features(params, images: jax.Array) -> jax.Array:
    return model.apply({"params": params}, images, method=classifiers.ConvClassifier.features)

  return features
