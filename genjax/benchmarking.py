"""Timing training as users meet it: the numbers behind experiments/benchmark.py.

- `time_train_step`: the jitted, sharded train step alone (`experiment.build`: the trainer, shardings and donation
  that training uses) on a synthetic raw batch, so the figures measure the model and the step;
- `time_sampling`: the trainer's sampler (`contract.Sampler`) drawing one batch of `config.train.batch_size`
  examples, jitted and sharded as sample.py and the sample-quality evaluation draw them: for a diffusion model,
  its whole sampling chain;
- `end_to_end`: the real training loop (`train_loop.train_and_evaluate`, with its input path, logging and transfer
  guard; no evaluation or checkpoints inside the timed steps) against the step alone and the input path alone.

Warm-up is never timed, and every result says how many steps warmed up (`warmup_steps`) beside how many were
timed (`steps`). The console says what is being done: compilation (timed), the warm-up, and how long the timed
steps should take at the warm-up's pace; the timed steps themselves run undisturbed (no per-step host sync).

Speed targets live here and in the benchmark scripts, never in timed unit tests.
"""

import resource
import tempfile
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from genjax import console
from genjax import errors
from genjax import experiment
from genjax import in_flight
from genjax import train_loop
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources

WARMUP_STEPS = 2  # Of the step alone: the first runs any lazy initialisation, the second is a step like the rest.


def synthetic_raw_batch(built: experiment.Experiment, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A raw train batch `[k, B, ...]` of the experiment's spec, as the input path delivers it: uniform uint8 pixels in
  every image field (or standard normal points), labels drawn from the spec's classes, and stream positions."""
  config, spec = built.config, built.spec
  leading = (built.trainer.batches_per_step, config.train.batch_size)
  if spec.is_image:
    raw = {
        name: rng.integers(0, 256, (*leading, *spec.fields[name].shape), dtype=np.uint8) for name in spec.image_fields
    }
  else:
    raw = {spec.data_key: rng.standard_normal((*leading, *spec.data_shape)).astype(np.float32)}
  if spec.has_labels:
    raw[sources.LABEL] = rng.integers(spec.num_classes, size=leading).astype(np.int32)
  raw[pipeline.EPOCH] = np.zeros(leading, np.int32)
  raw[pipeline.POSITION] = np.arange(np.prod(leading), dtype=np.int32).reshape(leading)
  return raw


def time_train_step(config: ml_collections.ConfigDict, spec: sources.ExampleSpec, num_steps: int, devices=None) -> dict:
  """Compiles the train step once, runs `WARMUP_STEPS` warm-up steps, then times `num_steps` steps.

  Returns a dict with `steps` (timed) and `warmup_steps`, `images_per_sec` (config.train.batch_size per step; a
  trainer that takes k batches per step, a GAN critic's n_critic, reads k times as many real examples: see
  `real_images_per_sec`), `step_ms` (mean over the timed steps), `compile_s` (lowering and compilation), the batch
  size and the devices.
  """
  built = experiment.build(config, spec, devices)
  feed = built.host_feed(synthetic_raw_batch(built, np.random.default_rng(0)))
  state = built.init()

  keys, frozen = built.keys, built.load_frozen(data=None)
  logging.info("Compiling the train step (or loading it from the compilation cache).")
  start = time.perf_counter()
  train_step = built.jitted_train_step.lower(state, feed, keys, frozen).compile()
  compile_s = time.perf_counter() - start
  logging.info("Compiled the train step in %.1f s; %d warm-up steps.", compile_s, WARMUP_STEPS)

  start = time.perf_counter()
  steps_in_flight = in_flight.StepsInFlight()
  for _ in range(WARMUP_STEPS):
    state, metrics = train_step(state, feed, keys, frozen)
    steps_in_flight.dispatched(metrics)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / WARMUP_STEPS
  logging.info("Timing %d steps (about %s at the warm-up's pace).", num_steps, console.duration(num_steps * step_s))
  start = time.perf_counter()
  for _ in range(num_steps):
    state, metrics = train_step(state, feed, keys, frozen)
    steps_in_flight.dispatched(metrics)
  jax.block_until_ready((state, metrics))
  elapsed = time.perf_counter() - start

  batch_size = config.train.batch_size
  return {
      "family": config.family,
      "batch_size": batch_size,
      "steps": num_steps,
      "warmup_steps": WARMUP_STEPS,
      "images_per_sec": round(batch_size * num_steps / elapsed, 1),
      "real_images_per_sec": round(batch_size * built.trainer.batches_per_step * num_steps / elapsed, 1),
      "step_ms": round(1000 * elapsed / num_steps, 2),
      "compile_s": round(compile_s, 3),
      "devices": len(built.mesh.devices.flat),
      "platform": jax.devices()[0].platform,
      "jax": jax.__version__,
  }


def time_sampling(config: ml_collections.ConfigDict, spec: sources.ExampleSpec, num_calls: int, devices=None) -> dict:
  """Times `num_calls` draws of `config.train.batch_size` examples by the trainer's sampler from a fresh state,
  after `WARMUP_STEPS` draws. Returns `calls`, `warmup_calls`, `sample_ms` (per draw), `images_per_sec`,
  `compile_s`, the sampler's protocol (a diffusion model's sampler and steps), the batch size and the devices."""
  built = experiment.build(config, spec, devices)
  if built.trainer.sampler is None:
    raise errors.UserError(f"--mode=sample times a sampler; a {config.family} model does not sample.")
  batch_size, state = config.train.batch_size, built.init()
  keys = [jax.random.key(index) for index in range(WARMUP_STEPS + num_calls)]
  generate = jax.jit(built.trainer.sampler.generate, static_argnums=2, out_shardings=built.replicated)
  logging.info("Compiling the sampler (or loading it from the compilation cache).")
  start = time.perf_counter()
  generate = generate.lower(state, keys[0], batch_size).compile()
  compile_s = time.perf_counter() - start
  logging.info("Compiled the sampler in %.1f s; %d warm-up draws.", compile_s, WARMUP_STEPS)
  for key in keys[:WARMUP_STEPS]:
    jax.block_until_ready(generate(state, key))
  start = time.perf_counter()
  for key in keys[WARMUP_STEPS:]:
    images = generate(state, key)
  jax.block_until_ready(images)
  elapsed = time.perf_counter() - start
  return {
      "family": config.family,
      "batch_size": batch_size,
      "calls": num_calls,
      "warmup_calls": WARMUP_STEPS,
      "sample_ms": round(1000 * elapsed / num_calls, 2),
      "images_per_sec": round(batch_size * num_calls / elapsed, 1),
      "compile_s": round(compile_s, 3),
      **{key: value for key, value in built.trainer.sampler.protocol.items() if key != "weights"},
      "devices": len(built.mesh.devices.flat),
      "platform": jax.devices()[0].platform,
      "jax": jax.__version__,
  }


def end_to_end(config: ml_collections.ConfigDict, data: sources.DataSource, num_steps: int, devices=None) -> dict:
  """Times `num_steps` steps of the real loop on `data`, after as many warm-up steps (compilation, the first
  epoch's reads), beside the step alone (synthetic batches) and the input path alone (each step's batch read,
  moved and preprocessed, without the model).

  Rates count the real examples a step consumes (batch size times the trainer's batches per step). Returns, the
  end-to-end rate first: `steps` (timed) and `warmup_steps` (the loop's and the input path's), then
  `end_to_end_images_per_sec`, `step_images_per_sec`, `input_images_per_sec`, `end_to_end_over_step`,
  `input_path`, the step's `step_ms` and `compile_s`, `peak_host_rss_mib`, the devices, `device` and `dtype`.
  """
  logging.info("1/3: the train step alone, on a synthetic batch.")
  step_only = time_train_step(config, data.spec, num_steps, devices)
  logging.info("2/3: the input path alone: %d batches to warm up, then %d timed.", num_steps, num_steps)
  built = experiment.build(config, data.spec, devices)
  examples_per_step = built.stream.examples_per_step

  train_input = pipeline.open_train_input(data, config.data, built.stream, built.train_batch_sharding, 0)
  frozen = built.load_frozen(data)

  def read_batches(steps: range):
    steps_in_flight = in_flight.StepsInFlight()
    for step in steps:
      batch = built.train_batch(train_input.feed(step), step, frozen)
      steps_in_flight.dispatched(batch)
    jax.block_until_ready(batch)  # The device runs its work in order: the last batch ready, all are.

  read_batches(range(num_steps))  # Warm-up: compilation, the first reads.
  start = time.perf_counter()
  read_batches(range(num_steps, 2 * num_steps))
  input_s = time.perf_counter() - start

  timed = config.copy_and_resolve_references()
  timed.train.total_steps = 2 * num_steps
  timed.train.log_every_steps = num_steps  # A log step after the warm-up and one at the end: the timed interval.
  timed.evals = ()
  timed.eval.every_steps = timed.ckpt.every_steps = 2 * num_steps
  logging.info(
      "3/3: the training loop: steps 1-%d warm up (compilation, first reads), steps %d-%d are timed.",
      num_steps,
      num_steps + 1,
      2 * num_steps,
  )
  writer = _TimingWriter(num_steps)
  with tempfile.TemporaryDirectory() as checkpoint_dir:
    train_loop.train_and_evaluate(timed, checkpoint_dir, data, writer, devices, log_progress=False)
  loop_s = writer.train_times[-1] - writer.train_times[0]

  rate = lambda seconds: round(examples_per_step * num_steps / seconds, 1)
  step_rate = examples_per_step * 1000 / step_only["step_ms"]
  return {
      "family": config.family,
      "batch_size": config.train.batch_size,
      "steps": num_steps,
      "warmup_steps": num_steps,
      "end_to_end_images_per_sec": rate(loop_s),
      "step_images_per_sec": round(step_rate, 1),
      "input_images_per_sec": rate(input_s),
      "end_to_end_over_step": round(examples_per_step * num_steps / loop_s / step_rate, 3),
      "input_path": train_input.description,
      "step_ms": step_only["step_ms"],
      "compile_s": step_only["compile_s"],
      "peak_host_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "devices": step_only["devices"],
      "device": jax.devices()[0].device_kind,
      "platform": step_only["platform"],
      "dtype": config.model.dtype,
      "jax": jax.__version__,
  }


class _TimingWriter(writers.MemoryWriter):
  """Notes when each train line arrives (the loop writes one after fetching the metrics of its last step: the
  warm-up's end, then the timed steps' end) and says so on the console."""

  def __init__(self, num_steps: int):
    super().__init__()
    self.train_times = []
    self._num_steps = num_steps
    self._start = time.perf_counter()

  def write_metrics(self, step, split, metrics):
    super().write_metrics(step, split, metrics)
    if split != "train":
      return
    self.train_times.append(time.perf_counter())
    if len(self.train_times) == 1:
      warmup_s = self.train_times[0] - self._start
      logging.info("Warmed up: %d steps in %.1f s; timing %d steps.", step, warmup_s, self._num_steps)
    else:
      logging.info("Timed %d steps in %.1f s.", self._num_steps, self.train_times[-1] - self.train_times[0])
