"""Timing a config's jitted, sharded train step on synthetic batches: the numbers behind experiments/benchmark.py.

Speed targets live here and in the benchmark scripts, never in timed unit tests. The step is the one training runs
(`experiment.build`: same trainer, shardings and donation); only the data is synthetic, so the figures measure the
model and the step, not the input pipeline.
"""

import time

import jax
import ml_collections
import numpy as np

from genjax import experiment
from genjax.data import pipeline
from genjax.data import sources


def synthetic_raw_batch(built: experiment.Experiment, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A raw train batch `[k, B, ...]` of the experiment's spec, as the input path delivers it: uniform uint8 pixels
  (or standard normal points), labels drawn from the spec's classes, and stream positions."""
  config, spec = built.config, built.spec
  leading = (built.trainer.batches_per_step, config.train.batch_size)
  shape = (*leading, *spec.data_shape)
  if spec.is_image:
    raw = {spec.data_key: rng.integers(0, 256, shape, dtype=np.uint8)}
  else:
    raw = {spec.data_key: rng.standard_normal(shape).astype(np.float32)}
  if spec.has_labels:
    raw[sources.LABEL] = rng.integers(spec.num_classes, size=leading).astype(np.int32)
  raw[pipeline.EPOCH] = np.zeros(leading, np.int32)
  raw[pipeline.POSITION] = np.arange(np.prod(leading), dtype=np.int32).reshape(leading)
  return raw


def time_train_step(config: ml_collections.ConfigDict, spec: sources.ExampleSpec, num_steps: int, devices=None) -> dict:
  """Compiles the train step once, runs two warm-up steps, then times `num_steps` steps.

  Returns a dict with `compile_s` (lowering and compilation), `step_ms` (mean over the timed steps),
  `images_per_sec` (config.train.batch_size per step; a trainer that takes k batches per step, a GAN critic's
  n_critic, reads k times as many real examples: see `real_images_per_sec`), the batch size and the devices.
  """
  built = experiment.build(config, spec, devices)
  feed = built.host_feed(synthetic_raw_batch(built, np.random.default_rng(0)))
  state = built.init()

  keys = built.keys
  start = time.perf_counter()
  train_step = built.jitted_train_step.lower(state, feed, keys).compile()
  compile_s = time.perf_counter() - start

  for _ in range(2):
    state, metrics = train_step(state, feed, keys)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(num_steps):
    state, metrics = train_step(state, feed, keys)
  jax.block_until_ready((state, metrics))
  elapsed = time.perf_counter() - start

  batch_size = config.train.batch_size
  return {
      "family": config.family,
      "batch_size": batch_size,
      "steps": num_steps,
      "compile_s": round(compile_s, 3),
      "step_ms": round(1000 * elapsed / num_steps, 2),
      "images_per_sec": round(batch_size * num_steps / elapsed, 1),
      "real_images_per_sec": round(batch_size * built.trainer.batches_per_step * num_steps / elapsed, 1),
      "devices": len(built.mesh.devices.flat),
      "platform": jax.devices()[0].platform,
      "jax": jax.__version__,
  }
