"""The one training loop that drives every model family.

It iterates the data, runs the jitted step, logs, calls the configured evaluators (`config.evals`), checkpoints and
handles preemption. What is trained is built by `genjax.experiment` (mesh, trainer, shardings, jitted steps); what
a family trains lives in its trainer; what is evaluated lives in `genjax.evaluators`. Where data comes from and
where results go are arguments (`data`, `writer`), so tests drive the loop with in-memory data and writers.

Per step at most the raw batch crosses from host to device (nothing, when the data lives on the device; the keys are
derived inside the jitted step), and nothing waits on the device except at log, evaluation and checkpoint steps; a
transfer guard makes any other host<->device transfer in the step's path an error. The step fixes the data, so a
resumed run repeats the unbroken run's steps bit for bit.

The console is never silent for long: it says when the train step compiles and how long that took, shows the first
step at once, then a progress line at every log step and, between them, every `console.REPORT_EVERY_S` seconds
(those extra lines fetch the running means for the console only: what is written, metrics.jsonl included, stays at
log steps). Rates and ETAs count steps after the first, so compilation does not inflate them.
"""

import time
import uuid

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from genjax import checkpoint
from genjax import console
from genjax import errors
from genjax import evaluators
from genjax import experiment
from genjax import in_flight
from genjax import sharding
from genjax import signals
from genjax import validation
from genjax import warm_start
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources


def run(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config` with the data it names, writing everything under `workdir` (see `genjax.writers` for the
  layout).

  Rerunning with the same workdir resumes from its newest intact checkpoint. Returns the final train state; raises
  `errors.Stopped` after a checkpoint when a signal asks for a stop, `errors.Diverged` on non-finite values.
  """
  validation.check_config(config)
  workdir = checkpoint.absolute_workdir(workdir)
  _check_writable(workdir)
  data = sources.open_source(config.data, config.seed)
  writer = writers.RunWriter(workdir, enabled=jax.process_index() == 0)
  try:
    return train_and_evaluate(config, str(epath.Path(workdir) / "checkpoints"), data, writer)
  finally:
    writer.close()


def _check_writable(workdir: str) -> None:
  # A probe of this process's own: the processes of a multi-process run share the workdir and come here at the same
  # moment (jax.distributed.initialize releases them together). With one name for all, a process could unlink the
  # probe that another was about to unlink, and that one stopped with 'Cannot write to the workdir'.
  probe = epath.Path(workdir) / f".genjax_write_test.{uuid.uuid4().hex}"
  try:
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("")
    probe.unlink()
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
    log_progress: bool = True,
):
  """Trains `config` to `config.train.total_steps`, resuming from `checkpoint_dir` if it holds a checkpoint.

  Args:
    config: the resolved experiment config.
    checkpoint_dir: where orbax checkpoints live (the run's `WORKDIR/checkpoints`).
    data: the train and eval splits and their spec (`sources.open_source`, or `sources.in_memory` in tests).
    writer: receives metrics and images (see `genjax.writers`).
    devices: the devices of the mesh; all of them by default.
    log_progress: whether to print the console's progress lines (a benchmark prints its own).

  Returns:
    The final train state.
  """
  _check_eval_config(config)
  built = experiment.build(config, data.spec, devices)
  # The mesh that in-step sharding annotations refer to; entered before anything compiles, since JAX keys its
  # compilation caches by it.
  with jax.set_mesh(built.mesh):
    return _restore_and_train(config, built, data, checkpoint_dir, writer, log_progress)


def _restore_and_train(config, built, data, checkpoint_dir, writer, log_progress):
  evaluations = evaluators.build(config.evals, evaluators.Context(built, lambda: data, config.eval, config.seed))
  checkpointer = checkpoint.Checkpointer(checkpoint_dir, keep=config.ckpt.keep)
  try:
    start_step, state = checkpointer.restore_newest_intact(built.restore_target, config)
    total_steps = config.train.total_steps
    if start_step > total_steps:
      raise errors.UserError(
          f"The workdir's newest checkpoint is at step {start_step}, beyond config.train.total_steps={total_steps}. "
          f"To train on, rerun with --config.train.total_steps greater than {start_step}; to evaluate it, use "
          "experiments/evaluate.py."
      )
    if start_step == total_steps:
      logging.info("Already trained to step %d (config.train.total_steps) in %s.", start_step, checkpoint_dir)
      return state
    frozen = built.load_frozen(data)
    if start_step:
      logging.info("Resumed from the checkpoint at step %d in %s.", start_step, checkpoint_dir)
    else:
      state = built.init()
      if config.get("init_from"):
        state = warm_start.from_run(built, state, config.init_from)
    # Written only now, so that a refused resume leaves the workdir's record of its own config untouched; lines
    # of steps after the checkpoint (written before a crash) go, since those steps are trained again.
    writer.write_config(config.to_dict(), data.spec.to_json())
    writer.resume_at(start_step)
    return _train(config, built, evaluations, data, frozen, checkpointer, writer, state, start_step, log_progress)
  finally:
    checkpointer.close()


def _train(config, built, evaluations, data, frozen, checkpointer, writer, state, start_step, log_progress):
  """Steps from `start_step` to `config.train.total_steps`, logging, evaluating and checkpointing on the way; the
  step takes the `frozen` networks' weights (`Experiment.load_frozen`) as an argument."""
  train_input = pipeline.open_train_input(data, config.data, built.stream, built.train_batch_sharding, start_step)
  for name, network in built.frozen_networks.items():
    logging.info("Frozen network %s: %s.", name, network.description)
  logging.info(
      "%s model: %d parameters on a %s mesh, train state %.1f MiB per device; training data %s.",
      config.family,
      built.trainer.num_params(state),
      dict(built.mesh.shape),
      built.state_bytes_per_device / 2**20,
      train_input.description + (f", {built.mixer.description}" if built.mixer else ""),
  )
  total_steps = config.train.total_steps
  progress = _Progress(start_step, total_steps, built.trainer.progress_metrics, log_progress)
  metric_sums, num_summed, finite = None, 0, _all_true(built)
  steps_in_flight = in_flight.StepsInFlight()
  stop_requests = signals.StopRequests()
  step = start_step
  try:
    while step < total_steps:
      # Only the batch may cross from host to device here; anything else is a bug that costs speed.
      first_call = step == start_step
      with jax.transfer_guard("disallow"):
        feed = train_input.feed(step)
        if first_call:
          logging.info("Compiling the train step (or loading it from the compilation cache).")
          compile_start = time.perf_counter()
        state, metrics = built.train_step(state, feed, frozen)
        if first_call:  # The call returns once compiled; the step itself runs on asynchronously.
          logging.info("Compiled the train step in %.1f s.", time.perf_counter() - compile_start)
        # Device-side running sums, and whether every value was finite since the last checkpoint: nothing waits
        # on the device until a log, evaluation or checkpoint step fetches them.
        metric_sums, finite = _accumulate(metric_sums, finite, metrics)
      steps_in_flight.dispatched(metrics)
      step += 1
      num_summed += 1
      is_last, is_log_step = step == total_steps, step % config.train.log_every_steps == 0
      if is_log_step or is_last:
        means = _means(metric_sums, num_summed)
        writer.write_metrics(step, "train", {**means, "num_steps_averaged": num_summed})
        _stop_if_diverged(bool(finite), means, step, checkpointer)
        progress.report(step, means)
        metric_sums, num_summed = None, 0
      elif progress.due(step):
        progress.report(step, _means(metric_sums, num_summed))
      if step % config.eval.every_steps == 0 or is_last:
        _stop_if_diverged(bool(finite), {}, step, checkpointer)
        eval_metrics, images = evaluators.run(evaluations, state, step)
        writer.write_metrics(step, "eval", eval_metrics)
        for name, image in images.items():
          writer.write_image(step, name, image)
        if is_last and eval_metrics:  # The results reach the console, not only the files.
          shown = ", ".join(f"{name} {value:.4g}" for name, value in eval_metrics.items())
          logging.info("Final evaluation at step %d: %s.", step, shown)
      stop_requested = stop_requests.requested(step, is_log_step)
      if step % config.ckpt.every_steps == 0 or is_last or stop_requested:
        # Never a non-finite state: the newest checkpoint must stay one to resume from.
        _stop_if_diverged(bool(finite & _state_is_finite(state)), {}, step, checkpointer)
        checkpointer.save(step, state, config)
        finite = _all_true(built)
      if stop_requested:
        checkpointer.wait_until_finished()
        raise errors.Stopped(f"Stopped at step {step} on a signal; rerun the same command to resume.", state)
    checkpointer.wait_until_finished()
  finally:
    stop_requests.restore()
  return state


def _means(metric_sums, num_summed: int) -> dict[str, float]:
  """The metrics' means over the steps summed (fetched from the device: the one wait of a log step)."""
  return {name: float(value) / num_summed for name, value in jax.device_get(metric_sums).items()}


@jax.jit
def _accumulate(sums, finite, metrics):
  """The metrics' running sums (`sums` is None after a log step) and whether all have been finite."""
  is_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(value)) for value in jax.tree.leaves(metrics)]))
  sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
  return sums, finite & is_finite


@jax.jit
def _state_is_finite(state) -> jax.Array:
  floats = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in floats]))


def _all_true(built: experiment.Experiment) -> jax.Array:
  return sharding.put(np.bool_(True), built.replicated)


def _check_eval_config(config: ml_collections.ConfigDict) -> None:
  if config.eval.sample_quality.classifier_workdir and "sample_quality" not in config.evals:
    raise errors.UserError(
        "config.eval.sample_quality.classifier_workdir is set but config.evals does not list 'sample_quality', which would use it; "
        f"add it (e.g. --config.evals='{(*config.evals, 'sample_quality')}') or unset the workdir."
    )


def _stop_if_diverged(finite: bool, means: dict[str, float], step: int, checkpointer: checkpoint.Checkpointer):
  """Raises `errors.Diverged` unless every value since the last checkpoint was finite, naming the checkpoint to
  resume from (the newest, which is finite: no other is ever written)."""
  if finite:
    return
  checkpointer.wait_until_finished()
  last = checkpointer.latest_step()
  bad = {name: value for name, value in means.items() if not np.isfinite(value)}
  raise errors.Diverged(
      f"Training diverged by step {step}"
      + (f": {bad}" if bad else " (non-finite values)")
      + ". "
      + (
          f"The newest checkpoint (step {last}) in {checkpointer.directory} is finite and intact, and rerunning "
          "resumes from it. "
          if last
          else "No checkpoint was written. "
      )
      + "Before rerunning, lower config.optim.lr, set config.optim.grad_clip_norm, or change config.seed."
  )


class _Progress:
  """The console progress line: step, the trainer's progress metrics (means since the last log step), and from the
  second report on, steps/s and the ETA at that rate since the previous report. The first report comes after the
  first step (its metrics fetched, so the step has run): steps after it are timed, compilation is not."""

  def __init__(self, start_step: int, total_steps: int, metric_names: tuple[str, ...], enabled: bool = True):
    self._start_step, self._total_steps = start_step, total_steps
    self._metric_names = metric_names
    self._enabled = enabled
    self._last_step, self._last_time = start_step, None

  def due(self, step: int) -> bool:
    """Whether a console line is due between log steps: after the first step, then every REPORT_EVERY_S."""
    if not self._enabled:
      return False
    return self._last_time is None or time.perf_counter() - self._last_time >= console.REPORT_EVERY_S

  def report(self, step: int, metrics: dict[str, float]) -> None:
    if not self._enabled:
      return
    now = time.perf_counter()
    shown = " | ".join(f"{name} {metrics[name]:.4f}" for name in self._metric_names)
    if self._last_time is None:
      logging.info("step %d/%d | %s", step, self._total_steps, shown)
    else:
      steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
      eta_s = (self._total_steps - step) / max(steps_per_sec, 1e-9)
      eta = console.duration(eta_s)
      logging.info("step %d/%d | %s | %.2f steps/s | ETA %s", step, self._total_steps, shown, steps_per_sec, eta)
    self._last_step, self._last_time = step, now
