"""The one training loop that drives every model family.

It iterates the data, runs the jitted step, logs, calls the configured evaluators (`config.evals`), checkpoints and
handles preemption. What is trained is built by `genjax.experiment` (mesh, trainer, shardings, jitted steps); what
a family trains lives in its trainer; what is evaluated lives in `genjax.evaluators`. Where data comes from and
where results go are arguments (`data`, `writer`), so tests drive the loop with in-memory data and writers.

Per step at most the raw batch crosses from host to device (nothing, when the data lives on the device; the keys are
derived inside the jitted step), and nothing waits on the device except at log, evaluation and checkpoint steps; a
transfer guard makes any other host<->device transfer in the step's path an error. The step fixes the data, so a
resumed run repeats the unbroken run's steps bit for bit.
"""

import os
import signal
import tempfile
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from genjax import checkpoint
from genjax import errors
from genjax import evaluators
from genjax import experiment
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources


def run(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config` with the data it names, writing everything under `workdir` (see `genjax.writers` for the
  layout).

  Rerunning with the same workdir resumes from its latest checkpoint. Returns the final train state.
  """
  _check_writable(workdir)
  data = sources.open_source(config.data)
  writer = writers.RunWriter(workdir, enabled=jax.process_index() == 0)
  try:
    return train_and_evaluate(config, os.path.join(workdir, "checkpoints"), data, writer)
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
    data: sources.DataSource,
    writer: writers.Writer,
    devices=None,
):
  """Trains `config` to `config.train.total_steps`, resuming from `checkpoint_dir` if it holds a checkpoint.

  Args:
    config: the resolved experiment config.
    checkpoint_dir: where orbax checkpoints live (the run's `WORKDIR/checkpoints`).
    data: the train and eval splits and their spec (`sources.open_source`, or `sources.in_memory` in tests).
    writer: receives metrics and images (see `genjax.writers`).
    devices: the devices of the mesh; all of them by default.

  Returns:
    The final train state.
  """
  _check_eval_config(config)
  built = experiment.build(config, data.spec, devices)
  trainer = built.trainer
  evaluations = evaluators.build(config.evals, evaluators.Context(built, data, config.eval, config.seed))
  checkpointer = checkpoint.Checkpointer(checkpoint_dir, keep=config.ckpt.keep)
  start_step = checkpointer.latest_step() or 0
  if start_step:
    state = built.restore(checkpointer, start_step)
    logging.info("Resumed from the checkpoint at step %d in %s.", start_step, checkpoint_dir)
  else:
    state = built.init()
  # Written only now, so that a refused resume leaves the workdir's record of its own config untouched.
  writer.write_config(config.to_dict())
  train_input = pipeline.open_train_input(data, config.data, built.stream, built.train_batch_sharding, start_step)
  logging.info(
      "%s model: %d parameters on a %s mesh; training data %s.",
      config.family,
      trainer.num_params(state),
      dict(built.mesh.shape),
      train_input.description,
  )

  total_steps = config.train.total_steps
  progress = _Progress(start_step, total_steps, trainer.progress_metrics)
  metric_sums, num_summed = None, 0
  preemption = _PreemptionSignal()
  step = start_step
  try:
    while step < total_steps:
      # Only the batch may cross from host to device here; anything else is a bug that costs speed.
      with jax.transfer_guard("disallow"):
        state, metrics = built.train_step(state, train_input.feed(step))
        # Device-side running sums: nothing waits on the device until a logging step fetches them.
        metric_sums = metrics if metric_sums is None else jax.tree.map(jnp.add, metric_sums, metrics)
      step += 1
      num_summed += 1
      is_last = step == total_steps
      if step % config.train.log_every_steps == 0 or is_last:
        means = {name: float(value) / num_summed for name, value in jax.device_get(metric_sums).items()}
        _check_finite(means, step, checkpointer)
        writer.write_metrics(step, "train", means)
        progress.report(step, means)
        metric_sums, num_summed = None, 0
      if step % config.eval.every_steps == 0 or is_last:
        eval_metrics, images = evaluators.run(evaluations, state, step)
        writer.write_metrics(step, "eval", eval_metrics)
        for name, image in images.items():
          writer.write_image(step, name, image)
      stop_requested = preemption.requested(step)
      if step % config.ckpt.every_steps == 0 or is_last or stop_requested:
        checkpointer.save(step, state, config)
      if stop_requested:
        logging.warning("Stopped at step %d on a signal; rerun the same command to resume from this checkpoint.", step)
        break
  finally:
    checkpointer.wait_until_finished()
    checkpointer.close()
    preemption.restore()
  return state


def _check_eval_config(config: ml_collections.ConfigDict) -> None:
  if config.eval.classifier_workdir and "sample_quality" not in config.evals:
    raise errors.UserError(
        "config.eval.classifier_workdir is set but config.evals does not list 'sample_quality', which would use it; "
        f"add it (e.g. --config.evals='{(*config.evals, 'sample_quality')}') or unset the workdir."
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
  """The console progress line: step, the trainer's progress metrics, steps/s and ETA since the last report."""

  def __init__(self, start_step: int, total_steps: int, metric_names: tuple[str, ...]):
    self._total_steps = total_steps
    self._metric_names = metric_names
    self._last_step = start_step
    self._last_time = time.perf_counter()

  def report(self, step: int, metrics: dict[str, float]) -> None:
    now = time.perf_counter()
    steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    eta_s = (self._total_steps - step) / max(steps_per_sec, 1e-9)
    self._last_step, self._last_time = step, now
    shown = " | ".join(f"{name} {metrics[name]:.4f}" for name in self._metric_names)
    logging.info(
        "step %d/%d | %s | %.2f steps/s | ETA %s",
        step,
        self._total_steps,
        shown,
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
