"""What every evaluator shares: the context it is built from, its interface, and batched, sharded maps over the
eval split or over arrays of images.

An evaluator class says whether it can serve a run (`applies(context) -> Applies`, cheap: nothing compiled, the
data opened only if the answer depends on it), reads its own options (`config.eval.<name>`, see `Context.options_of`),
is built from a `Context` when first used (compiling what it needs then) and is called at every evaluation:
`run(state, step) -> (metrics, images)`, with metrics as floats and images as uint8 HWC arrays by name. Its
`protocol` says how its numbers were made (what evaluate.py records beside them).
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import console
from genjax import experiment
from genjax import sharding
from genjax.data import pipeline
from genjax.data import sources


@dataclasses.dataclass(frozen=True)
class Context:
  """The run an evaluator serves: its experiment (mesh, shardings, trainer, jitted steps and capabilities), its data
  (opened by `open_data` when an evaluator first needs it) and the options of `config.eval`. `seed` fixes the draws
  of sample-based metrics (the config's seed in training, evaluate.py's --seed offline)."""

  experiment: experiment.Experiment
  open_data: Callable[[], sources.DataSource]
  options: ml_collections.ConfigDict
  seed: int

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.experiment.config

  @property
  def spec(self) -> sources.ExampleSpec:
    return self.experiment.spec

  @functools.cached_property
  def data(self) -> sources.DataSource:
    return self.open_data()

  def options_of(self, name: str) -> ml_collections.ConfigDict:
    """The options of the evaluation `name` (`config.eval.<name>`)."""
    return self.options[name]

  def eval_batches(self, split: str = "eval", binarized: bool = True):
    """Preprocessed global batches `[options.batch_size, ...]` (with "mask") over a whole split, in its fixed
    order (see `Experiment.eval_batch` for `binarized`), with progress reported (`console.track`)."""
    source = self.data.eval if split == "eval" else self.data.train
    local_batches = pipeline.eval_batches(source, self.data.spec, self.options.batch_size, jax.process_index(), jax.process_count())
    batches = (self.experiment.eval_batch(raw, binarized) for raw in local_batches)
    return console.track(batches, -(-len(source) // self.options.batch_size), f"Evaluating on the {split} split")


class Evaluator(Protocol):
  protocol: dict[str, Any]

  def run(self, state, step: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    ...


@dataclasses.dataclass(frozen=True)
class Applies:
  """Whether an evaluation can serve a run: true, or false with the reason (`why_not`, completing "The 'x'
  evaluation ...")."""

  why_not: str = ""

  def __bool__(self) -> bool:
    return not self.why_not


def requirements(*conditions: tuple[bool, str]) -> Applies:
  """`Applies` from (condition, why not) pairs: the first unmet condition's reason, or yes."""
  return next((Applies(why_not) for condition, why_not in conditions if not condition), Applies())


def per_example_over_eval_split(
    context: Context, fn: Callable, key: jax.Array | None = None, num_examples: int = 0
) -> Callable:
  """`evaluate(state) -> [N, M]` NumPy values of `fn(state, batch, key_i) -> [B, M]` for every real example of the
  eval split (with `num_examples` > 0, its first that many), in order (batch i gets `fold_in(key, i)`; without a
  key, `fn(state, batch)`). Jitted once."""
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
      if num_examples and sum(map(len, rows)) >= num_examples:
        break
    return np.concatenate(rows)[: num_examples or None]

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
    starts = range(0, len(images), batch_size)
    for start in console.track(starts, len(starts), f"Processing {len(images)} images"):
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
