"""What every evaluator shares: the context it is built from, its interface, and batched, sharded maps over the
eval split or over arrays of images.

An evaluator is built once per run from a `Context` (compiling what it needs then) and called at every evaluation:
`run(state, step) -> (metrics, images)`, with metrics as floats and images as uint8 HWC arrays by name. Its
`protocol` says how its numbers were made (what evaluate.py records beside them).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import errors
from genjax import experiment
from genjax import sharding
from genjax.data import pipeline
from genjax.data import sources


@dataclasses.dataclass(frozen=True)
class Context:
  """The run an evaluator serves: its experiment (mesh, shardings, trainer, jitted steps and capabilities), its data
  and the options of `config.eval`. `seed` fixes the draws of sample-based metrics (the config's seed in
  training, evaluate.py's --seed offline)."""

  experiment: experiment.Experiment
  data: sources.DataSource
  options: ml_collections.ConfigDict
  seed: int

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.experiment.config

  def eval_batches(self, split: str = "eval", binarized: bool = True):
    """Preprocessed global batches `[options.batch_size, ...]` (with "mask") over a whole split, in its fixed
    order (see `Experiment.eval_batch` for `binarized`)."""
    source = self.data.eval if split == "eval" else self.data.train
    local_batches = pipeline.eval_batches(source, self.data.spec, self.options.batch_size, jax.process_index(), jax.process_count())
    return (self.experiment.eval_batch(raw, binarized) for raw in local_batches)


class Evaluator(Protocol):
  protocol: dict[str, Any]

  def run(self, state, step: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    ...


def require(condition: bool, name: str, why: str) -> None:
  """Refuses an evaluator that cannot serve this run, naming it as config.evals does."""
  if not condition:
    raise errors.UserError(f"The {name!r} evaluation (config.evals) {why}.")


def per_example_over_eval_split(context: Context, fn: Callable, key: jax.Array | None = None) -> Callable:
  """`evaluate(state) -> [N, M]` NumPy values of `fn(state, batch, key_i) -> [B, M]` for every real example of the
  eval split, in order (batch i gets `fold_in(key, i)`; without a key, `fn(state, batch)`). Jitted once."""
  experiment_ = context.experiment

  def values_and_mask(state, batch, *key_arguments):
    return fn(state, batch, *key_arguments), batch["mask"]

  jitted = jax.jit(values_and_mask, out_shardings=experiment_.replicated)

  def evaluate(state) -> np.ndarray:
    rows = []
    for index, batch in enumerate(context.eval_batches()):
      key_arguments = (jax.random.fold_in(key, index),) if key is not None else ()
      values, mask = jax.device_get(jitted(state, batch, *key_arguments))
      rows.append(values[mask > 0])
    return np.concatenate(rows)

  return evaluate


def map_over_images(context: Context, fn: Callable) -> Callable:
  """`apply(params, images [N, ...]) -> [N, ...]` NumPy outputs of `fn(params, batch)` over host images of any
  number, in batches of `options.batch_size` sharded over the mesh (the last one padded, its padding dropped).
  Jitted once."""
  experiment_ = context.experiment
  batch_size = context.options.batch_size
  jitted = jax.jit(
      fn, in_shardings=(experiment_.replicated, experiment_.batch_sharding), out_shardings=experiment_.replicated
  )

  def apply(params, images: np.ndarray) -> np.ndarray:
    outputs = []
    for start in range(0, len(images), batch_size):
      batch = images[start : start + batch_size]
      padding = batch_size - len(batch)
      padded = np.concatenate([batch, np.zeros((padding, *batch.shape[1:]), batch.dtype)]) if padding else batch
      outputs.append(np.asarray(jitted(params, sharding.put(padded, experiment_.batch_sharding)))[: len(batch)])
    return np.concatenate(outputs)

  return apply


def mean_of_columns(values: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
  """Column means of per-example values `[N, len(names)]`, by name."""
  return dict(zip(names, map(float, values.mean(axis=0))))


def stack_columns(values: dict[str, jax.Array], names: tuple[str, ...]) -> jax.Array:
  return jnp.stack([values[name] for name in names], axis=-1)
