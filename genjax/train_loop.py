"""The one training loop that drives every model family.

It owns the mesh, state initialisation or restoration, data iteration, the jitted and sharded step, periodic
logging, evaluation with image grids, checkpointing and preemption. What a family trains lives in its trainer
(`genjax.trainers`); where data comes from and where results go are arguments (`train_source`, `eval_source`,
`writer`), so tests drive the loop with in-memory data and writers.

Randomness is derived, never stored: one base key per run (from `config.seed`) is split into named streams, and
the key of step s is `fold_in(train_key, s)`. A resumed run therefore draws exactly what an unbroken run draws,
and with the data iterator restored from the checkpoint it repeats the same steps bit for bit.
"""

import dataclasses
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from genjax import checkpoint
from genjax import errors
from genjax import evaluation
from genjax import runs
from genjax import sharding
from genjax import trainers
from genjax import writers
from genjax.data import catalog
from genjax.data import pipeline
from genjax.metrics import mode_coverage
from genjax.trainers import common


def run(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config` with its TFDS data, writing everything under `workdir` (see `genjax.writers` for the layout).

  Rerunning with the same workdir resumes from its latest checkpoint. Returns the final train state.
  """
  _check_writable(workdir)
  data = config.data
  train_source, eval_source = (
      catalog.open_split(data.name, split, data.data_dir, data.download)
      for split in (data.train_split, data.eval_split)
  )
  writer = writers.RunWriter(workdir, enabled=jax.process_index() == 0)
  try:
    return train_and_evaluate(config, os.path.join(workdir, "checkpoints"), train_source, eval_source, writer)
  finally:
    writer.close()


def _check_writable(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise errors.UserError(
        f"Cannot write to the workdir {workdir!r} ({e.strerror or e}). Choose a --workdir this user can create and "
        "write."
    ) from e


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    checkpoint_dir: str,
    train_source: Sequence,
    eval_source: Sequence,
    writer: writers.Writer,
    devices=None,
):
  """Trains `config` to `config.train.total_steps`, resuming from `checkpoint_dir` if it holds a checkpoint.

  Args:
    config: the resolved experiment config.
    checkpoint_dir: where orbax checkpoints live (the run's `WORKDIR/checkpoints`).
    train_source, eval_source: random-access sequences of `{"image": uint8 HWC, "label": int}` (label optional).
    writer: receives metrics and image grids (see `genjax.writers`).
    devices: the devices of the mesh; all of them by default.

  Returns:
    The final train state.
  """
  pipeline.check_data_config(config.data)
  mesh = sharding.make_mesh(config.mesh, devices)
  sharding.check_batch_size(config.train.batch_size, mesh, config.mesh, "config.train.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, config.mesh, "config.eval.batch_size")
  example_shapes = pipeline.example_shapes(train_source, config.data)
  trainer = trainers.make_trainer(config, example_shapes)
  if trainer.needs_labels and "label" not in example_shapes:
    raise errors.UserError(
        f"This {config.family} model is class-conditional, but dataset {config.data.name!r} has no labels; "
        "train it unconditionally (config.model.num_classes=0) or on a labelled dataset."
    )

  init_key, train_key, eval_key, sample_key = jax.random.split(jax.random.key(config.seed), 4)
  abstract_state = jax.eval_shape(trainer.init, init_key)
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  batch_sharding = sharding.batch_sharding(mesh, config.mesh)
  stacked_batches = trainer.real_batches_per_step
  train_batch_sharding = sharding.batch_sharding(mesh, config.mesh, stacked=stacked_batches is not None)
  replicated = sharding.replicated(mesh)

  train_iterator = pipeline.train_iterator(
      train_source,
      config.data,
      config.train.batch_size * (stacked_batches or 1),
      config.seed,
      jax.process_index(),
      jax.process_count(),
  )
  checkpointer = checkpoint.Checkpointer(checkpoint_dir, keep=config.ckpt.keep)
  start_step = checkpointer.latest_step() or 0
  if start_step:
    state = checkpointer.restore(
        start_step, checkpoint.abstract_with_shardings(abstract_state, state_sharding), train_iterator, config
    )
    logging.info("Resumed from the checkpoint at step %d in %s.", start_step, checkpoint_dir)
  else:
    state = jax.jit(trainer.init, out_shardings=state_sharding)(init_key)
  # Written only now, so that a refused resume leaves the workdir's record of its own config untouched.
  writer.write_config(config.to_dict())
  logging.info("%s model: %d parameters on a %s mesh.", config.family, _count_params(state), dict(mesh.shape))

  train_step = jit_train_step(trainer, state_sharding, train_batch_sharding, replicated)
  evaluate = _Evaluator(
      config, trainer, example_shapes, eval_source, state_sharding, batch_sharding, replicated, eval_key, sample_key
  )
  total_steps = config.train.total_steps
  progress = _Progress(start_step, total_steps)
  metric_sums, num_summed = None, 0
  preemption = _PreemptionSignal()
  step = start_step
  try:
    while step < total_steps:
      local_batch = next(train_iterator)
      if stacked_batches is not None:
        local_batch = jax.tree.map(lambda x: x.reshape(stacked_batches, -1, *x.shape[1:]), local_batch)
      batch = sharding.to_global_batch(local_batch, train_batch_sharding)
      state, metrics = train_step(state, batch, jax.random.fold_in(train_key, step))
      step += 1
      # Device-side running sums: nothing waits on the device until a logging step fetches them.
      metric_sums = metrics if metric_sums is None else jax.tree.map(jnp.add, metric_sums, metrics)
      num_summed += 1
      is_last = step == total_steps
      if step % config.train.log_every_steps == 0 or is_last:
        means = {name: float(value) / num_summed for name, value in jax.device_get(metric_sums).items()}
        _check_finite(means, step, checkpointer)
        writer.write_metrics(step, "train", means)
        progress.report(step, means)
        metric_sums, num_summed = None, 0
      if step % config.eval.every_steps == 0 or is_last:
        evaluate(state, step, writer)
      stop_requested = preemption.requested(step)
      if step % config.ckpt.every_steps == 0 or is_last or stop_requested:
        checkpointer.save(step, state, train_iterator, config)
      if stop_requested:
        logging.warning("Stopped at step %d on a signal; rerun the same command to resume from this checkpoint.", step)
        break
  finally:
    checkpointer.wait_until_finished()
    checkpointer.close()
    preemption.restore()
  return state


def jit_train_step(trainer, state_sharding, batch_sharding, replicated):
  """The train step as the loop runs it: sharded in and out, with the old state's buffers donated to the new."""
  return jax.jit(
      trainer.train_step,
      in_shardings=(state_sharding, batch_sharding, replicated),
      out_shardings=(state_sharding, replicated),
      donate_argnums=(0,),
  )


class _Evaluator:
  """Evaluates on the whole eval split and writes image grids; compiled once, reused at every evaluation.

  For 2-D toy data it also scores `config.eval.num_samples` samples for mode coverage and plots them over the data;
  with `config.eval.classifier_workdir` set, it adds FID, KID and precision/recall of image samples (see
  `genjax.evaluation`).
  """

  def __init__(
      self,
      config,
      trainer,
      example_shapes,
      eval_source,
      state_sharding,
      batch_sharding,
      replicated,
      eval_key,
      sample_key,
  ):
    self._config = config
    self._trainer = trainer
    self._example_shapes = example_shapes
    self._data_key = common.data_key(example_shapes)
    self._eval_source = eval_source
    self._batch_sharding = batch_sharding
    self._eval_key = eval_key
    self._sample_key = sample_key
    self._eval_step = jax.jit(
        trainer.eval_step, in_shardings=(state_sharding, batch_sharding, replicated), out_shardings=replicated
    )
    self._reconstruct = trainer.reconstruct and jax.jit(
        trainer.reconstruct, in_shardings=(state_sharding, batch_sharding), out_shardings=replicated
    )
    # Fully replicated outputs can be read on every process, whatever the mesh.
    self._gather = jax.jit(lambda images: images, out_shardings=replicated)
    self._generate = trainer.generate and jax.jit(
        trainer.generate, static_argnums=2, in_shardings=(state_sharding, replicated), out_shardings=replicated
    )
    self._state_sharding = state_sharding
    self._quality_network = None
    if trainer.generate is not None and self._data_key == "image" and config.eval.classifier_workdir:
      self._quality_network = evaluation.classifier_network(config.eval.classifier_workdir)

  def __call__(self, state, step: int, writer: writers.Writer) -> None:
    config = self._config
    sums, first_batch = None, None
    batches = pipeline.eval_batches(
        self._eval_source, config.data, config.eval.batch_size, config.seed, jax.process_index(), jax.process_count()
    )
    for batch_index, local_batch in enumerate(batches):
      batch = sharding.to_global_batch(local_batch, self._batch_sharding)
      # The same keys at every evaluation, so successive evaluations differ only through the model.
      batch_sums = self._eval_step(state, batch, jax.random.fold_in(self._eval_key, batch_index))
      sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
      if first_batch is None:
        first_batch = batch
    sums = jax.device_get(sums)
    count = sums.pop("count")
    metrics = {name: float(value / count) for name, value in sums.items()}
    if self._data_key == "point":
      metrics.update(self._score_and_plot_points(state, step, writer))
    if self._quality_network is not None:
      network, params = self._quality_network
      run = runs.Run(
          "",
          config,
          step,
          self._trainer,
          state,
          self._example_shapes,
          self._eval_source,
          self._batch_sharding.mesh,
          self._state_sharding,
      )
      quality, _ = evaluation.sample_quality(
          run, network, config.eval.num_quality_images, config.seed, config.eval.batch_size, params
      )
      metrics.update(quality)
    writer.write_metrics(step, "eval", metrics)
    if self._data_key == "image":
      self._write_image_grids(state, step, first_batch, writer)

  def _score_and_plot_points(self, state, step: int, writer: writers.Writer) -> dict[str, float]:
    mixture = self._eval_source.mixture  # The eval source of 2-D data is a `toy2d.MixtureSplit`.
    samples = np.asarray(self._generate(state, self._sample_key, self._config.eval.num_samples))
    coverage = mode_coverage.mode_coverage(samples, mixture.centers, mixture.std)
    title = (
        f"step {step}: {coverage['modes_covered']}/{len(mixture.centers)} modes, "
        f"{coverage['high_quality_fraction']:.0%} high quality"
    )
    writer.write_image(step, "samples", writers.scatter_plot(samples, self._eval_source.points, mixture.centers, title))
    return coverage

  def _write_image_grids(self, state, step: int, first_batch, writer: writers.Writer) -> None:
    config = self._config
    pixel_range = tuple(config.data.pixel_range)
    num_images = config.eval.num_grid_images
    if self._reconstruct is not None:
      originals = np.asarray(self._gather(first_batch["image"]))[:num_images]
      reconstructions = np.asarray(self._reconstruct(state, first_batch["image"]))[:num_images]
      columns = int(np.ceil(np.sqrt(len(originals))))
      paired = writers.interleave_rows(originals, reconstructions, columns)
      writer.write_image(step, "reconstructions", writers.image_grid(paired, pixel_range, columns))
    if self._generate is not None:
      samples = np.asarray(self._generate(state, self._sample_key, num_images))
      writer.write_image(step, "samples", writers.image_grid(samples, pixel_range, self._trainer.samples_per_row))


def _count_params(state) -> int:
  """Trainable parameters: the leaves of every `params` or `*_params` field of the state but weight averages."""
  return sum(
      leaf.size
      for field in dataclasses.fields(state)
      if field.name.endswith("params") and "ema" not in field.name
      for leaf in jax.tree.leaves(getattr(state, field.name))
  )


def _check_finite(metrics: dict[str, float], step: int, checkpointer: checkpoint.Checkpointer) -> None:
  bad = {name: value for name, value in metrics.items() if not np.isfinite(value)}
  if bad:
    checkpointer.wait_until_finished()
    last = checkpointer.latest_step()
    raise errors.UserError(
        f"Training diverged by step {step}: {bad}. "
        + (f"The last checkpoint (step {last}) in {checkpointer.directory} is intact. " if last else "")
        + "Lower config.optim.lr, set config.optim.grad_clip_norm, or change config.seed."
    )


class _Progress:
  """The console progress line: step, loss, steps/s and ETA since the last report."""

  def __init__(self, start_step: int, total_steps: int):
    self._total_steps = total_steps
    self._last_step = start_step
    self._last_time = time.perf_counter()

  def report(self, step: int, metrics: dict[str, float]) -> None:
    now = time.perf_counter()
    steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    eta_s = (self._total_steps - step) / max(steps_per_sec, 1e-9)
    self._last_step, self._last_time = step, now
    logging.info(
        "step %d/%d | loss %.4f | %.2f steps/s | ETA %s",
        step,
        self._total_steps,
        metrics["loss"],
        steps_per_sec,
        time.strftime("%H:%M:%S", time.gmtime(eta_s)),
    )


class _PreemptionSignal:
  """SIGTERM (what schedulers send before preempting) and a first Ctrl-C ask the loop to checkpoint and stop; a
  second Ctrl-C interrupts at once.

  In a multi-process run every process must stop at the same step, which JAX's preemption sync point agrees on.
  Signal handlers can only be installed from the main thread; elsewhere (a notebook's worker thread) none are.
  """

  _SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self._received = False
    self._multiprocess = jax.process_count() > 1
    self._previous_handlers = {}
    if not self._multiprocess and threading.current_thread() is threading.main_thread():
      self._previous_handlers = {signum: signal.signal(signum, self._on_signal) for signum in self._SIGNALS}

  def _on_signal(self, signum, frame):
    del frame
    self._received = True
    if signum == signal.SIGINT:
      logging.warning("Interrupted: saving a checkpoint after this step. Press Ctrl-C again to stop at once.")
      signal.signal(signal.SIGINT, signal.default_int_handler)

  def requested(self, step: int) -> bool:
    if self._multiprocess:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._received

  def restore(self) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
