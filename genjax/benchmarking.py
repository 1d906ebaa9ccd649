"""Timing a config's jitted, sharded train step on synthetic batches: the numbers behind experiments/benchmark.py.

Speed targets live here and in the benchmark scripts, never in timed unit tests. The step is built exactly as
the training loop builds it (same trainer, shardings and donation); only the data is synthetic, so the figures
measure the model and the step, not the input pipeline.
"""

import time

import jax
import ml_collections
import numpy as np

from genjax import sharding
from genjax import train_loop
from genjax import trainers
from genjax.trainers import common


def time_train_step(
    config: ml_collections.ConfigDict, example_shapes: dict[str, tuple[int, ...]], num_steps: int, devices=None
) -> dict:
  """Compiles the train step once, runs two warm-up steps, then times `num_steps` steps.

  Returns a dict with `compile_s` (lowering and compilation), `step_ms` (mean over the timed steps),
  `images_per_sec` (config.train.batch_size per step; a GAN critic also reads n_critic - 1 more real batches, see
  `real_images_per_sec`), the batch size and the devices.
  """
  mesh = sharding.make_mesh(config.mesh, devices)
  trainer = trainers.make_trainer(config, example_shapes)
  abstract_state = jax.eval_shape(trainer.init, jax.random.key(0))
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  stacked = trainer.real_batches_per_step
  batch_sharding = sharding.batch_sharding(mesh, config.mesh, stacked=stacked is not None)
  replicated = sharding.replicated(mesh)

  batch_size = config.train.batch_size
  leading = (stacked, batch_size) if stacked else (batch_size,)
  rng = np.random.default_rng(0)
  data_key = common.data_key(example_shapes)
  data_shape = (*leading, *example_shapes[data_key])
  if data_key == "image":
    data = rng.uniform(*config.data.pixel_range, data_shape)
  else:
    data = rng.standard_normal(data_shape)
  batch = {data_key: data.astype(np.float32), "label": np.zeros(leading, np.int32)}
  batch = sharding.to_global_batch(batch, batch_sharding)
  state = jax.jit(trainer.init, out_shardings=state_sharding)(jax.random.key(0))

  start = time.perf_counter()
  step = train_loop.jit_train_step(trainer, state_sharding, batch_sharding, replicated)
  step = step.lower(state, batch, jax.random.key(0)).compile()
  compile_s = time.perf_counter() - start

  for index in range(2):
    state, metrics = step(state, batch, jax.random.key(index))
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for index in range(num_steps):
    state, metrics = step(state, batch, jax.random.key(index))
  jax.block_until_ready((state, metrics))
  elapsed = time.perf_counter() - start

  return {
      "family": config.family,
      "batch_size": batch_size,
      "steps": num_steps,
      "compile_s": round(compile_s, 3),
      "step_ms": round(1000 * elapsed / num_steps, 2),
      "images_per_sec": round(batch_size * num_steps / elapsed, 1),
      "real_images_per_sec": round(batch_size * (stacked or 1) * num_steps / elapsed, 1),
      "devices": len(mesh.devices.flat),
      "platform": jax.devices()[0].platform,
      "jax": jax.__version__,
  }
