"""The "split" evaluation: the trainer's own eval metrics (its `eval_step`), averaged over the whole eval split.

The same keys at every evaluation (batch i uses `fold_in(eval_key, i)`), so that successive evaluations differ
only through the model. Padding never counts: the eval step sums over real examples and reports their number.
"""

import jax
import jax.numpy as jnp

from genjax.evaluators import common


class SplitMetrics:
  protocol = {}

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    del context  # Every trainer has an eval step.
    return common.Applies()

  def __init__(self, context: common.Context):
    self._context = context

  def run(self, state, step: int):
    del step
    experiment = self._context.experiment
    sums = None
    for batch_index, batch in enumerate(self._context.eval_batches()):
      batch_sums = experiment.eval_step(state, batch, jax.random.fold_in(experiment.keys.eval, batch_index))
      sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
    sums = jax.device_get(sums)
    count = sums.pop("count")
    return {name: float(value / count) for name, value in sums.items()}, {}
