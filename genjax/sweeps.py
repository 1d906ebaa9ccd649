"""Ablation sweeps on an Optuna storage: every point of a config's sweep is a trial, a separate
experiments/train.py run with its own workdir, claimed by whichever worker is free.

A sweep lives in a directory: one workdir per point (`<sweep_dir>/<point id>`, so an interrupted trial resumes from
its own checkpoints) and, by default, the Optuna journal file that is its storage (no server; on a file system that
every worker sees, it serves many machines). `--storage=postgresql://...` puts the queue in a shared database
instead. Optuna serves as the queue and the record: each trial's overrides, status, error, wall time and final
metrics are its user attributes; its value is its wall time.

- `enqueue`: every point once (`enqueue_trial(skip_if_exists=True)`), after checking each against the config.
- `work`: workers (threads, each running one trial process at a time, one GPU each where there are several) claim
  waiting trials until none is left. A trial that fails is recorded with its error; one stopped by a signal or
  left running by a worker that died (its heartbeat stops) is queued again, and continues from its checkpoint.
- `report`: results.csv, summary.md (mean +- std over seeds), one plot per swept key, and TensorBoard HParams.
"""

import csv
import hashlib
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np
import optuna
import tensorboardX
from absl import logging

from genjax import config_lib
from genjax import errors
from genjax import signals
from genjax import writers

STUDY_NAME = "genjax"
JOURNAL_FILE = "optuna_journal.log"
# Overrides that say which repetition a point is: summaries average over them.
SEED_KEY = "seed"
# A trial that ended so was stopped, not failed: it continues from its checkpoint when queued again.
_INTERRUPTED_EXIT_CODES = (errors.Stopped.exit_code, signals.INTERRUPTED_EXIT_CODE)


def load_points(config_file: str, sweep_name: str, base_overrides: Sequence[str] = ()) -> list[dict]:
  """The points of `get_sweep(sweep_name)` in a config file, each checked against the config with the overrides
  that every point gets (unknown keys and values of the wrong type are refused here, before any trial starts)."""
  path, _, config_arg = config_file.partition(":")
  if not os.path.isfile(path):
    raise errors.UserError(f"No config file {path!r}.")
  spec = importlib.util.spec_from_file_location("sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    raise errors.UserError(f"{path} defines no get_sweep(name); add one to sweep over it.")
  try:
    points = module.get_sweep(sweep_name)
  except KeyError:
    raise errors.UserError(f"{path} has no sweep {sweep_name!r}.") from None
  base = module.get_config(config_arg or None)
  for point in points:
    try:
      config_lib.override(base, [*base_overrides, *override_arguments(point)])
    except errors.UserError as e:
      raise errors.UserError(f"Sweep point {point} does not fit {path}: {e}") from e
  return points


def point_id(point: dict) -> str:
  """A stable, readable name for a point: its overrides, or a hash of them when they are long."""
  text = ",".join(f"{key}={point[key]}" for key in sorted(point))
  digest = hashlib.sha256(text.encode()).hexdigest()[:10]
  readable = "".join(c if c.isalnum() or c in "=.,-_" else "_" for c in text)
  return readable if len(readable) <= 80 else f"{readable[:60]}-{digest}"


def override_arguments(point: dict) -> list[str]:
  """`--config.key=value` arguments of a point."""
  return [f"--config.{key}={value}" for key, value in point.items()]


class Sweep:
  """A sweep's Optuna study and storage, with the few queue operations it needs (through the storage's public API,
  whose state changes are atomic: two workers never claim one trial)."""

  def __init__(self, study: optuna.Study, storage: optuna.storages.BaseStorage):
    self.study, self._storage = study, storage
    self._study_id = storage.get_study_id_from_name(study.study_name)

  def trials(self, *states: optuna.trial.TrialState) -> list[optuna.trial.FrozenTrial]:
    return self._storage.get_all_trials(self._study_id, deepcopy=False, states=states or None)

  def trial_id(self, trial: optuna.trial.FrozenTrial) -> int:
    return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, trial.number)

  def claim(self) -> optuna.trial.FrozenTrial | None:
    """A waiting trial, now running for this caller; None when no trial waits."""
    for trial in self.trials(optuna.trial.TrialState.WAITING):
      try:
        if self._storage.set_trial_state_values(self.trial_id(trial), state=optuna.trial.TrialState.RUNNING):
          return trial
      except optuna.exceptions.UpdateFinishedTrialError:
        continue
    return None

  def set(self, trial: optuna.trial.FrozenTrial, **attributes) -> None:
    for key, value in attributes.items():
      self._storage.set_trial_user_attr(self.trial_id(trial), key, value)

  def finish(self, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState, value: float | None = None):
    self._storage.set_trial_state_values(self.trial_id(trial), state, values=None if value is None else [value])

  def requeue(self, trial: optuna.trial.FrozenTrial, reason: str) -> None:
    """Fails an interrupted trial and queues its point again, to continue from its checkpoint."""
    self.set(trial, interrupted=reason)
    self.finish(trial, optuna.trial.TrialState.FAIL)
    params = trial.system_attrs["fixed_params"]
    self.study.enqueue_trial({**params, "attempt": params["attempt"] + 1}, user_attrs=trial.user_attrs)


def open_sweep(sweep_dir: str, storage_url: str | None, identity: dict | None) -> Sweep:
  """The sweep's study (created on first use). With an `identity` (config and sweep name), refuses a storage that
  holds another sweep; without, opens whatever sweep is there. Refuses a storage that cannot be reached. A refused
  sweep writes nothing: the study is read before anything is written."""
  journal = os.path.join(sweep_dir, JOURNAL_FILE)
  if identity is None and not storage_url and not os.path.isfile(journal):
    raise errors.UserError(f"{sweep_dir} holds no sweep; start one with experiments/sweep.py run.")
  os.makedirs(sweep_dir, exist_ok=True)
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  try:
    if storage_url:
      storage = optuna.storages.RDBStorage(storage_url, engine_kwargs={"pool_pre_ping": True})
    else:
      storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    try:
      study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except KeyError:  # No such study yet.
      study = None
  except Exception as e:  # Drivers, networks and authentication fail in many exception types.
    raise errors.UserError(f"Cannot open the sweep storage {storage_url or sweep_dir}: {type(e).__name__}: {e}") from e
  existing = study.user_attrs.get("identity") if study is not None else None
  if identity is None:  # Reading whatever sweep is there.
    if existing is None:
      raise errors.UserError(f"{sweep_dir} holds no sweep; start one with experiments/sweep.py run.")
  elif existing is None:
    if study is None:
      study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="minimize")
    study.set_user_attr("identity", identity)
  elif existing != identity:
    raise errors.UserError(
        f"The sweep storage of {sweep_dir} holds another sweep ({existing}), not {identity}; use another --sweep_dir "
        "(or --storage)."
    )
  return Sweep(study, storage)


def enqueue(sweep: Sweep, points: Sequence[dict]) -> int:
  """Queues every point not queued yet; returns how many points the sweep has."""
  for point in points:
    sweep.study.enqueue_trial(
        {"point": point_id(point), "attempt": 0}, user_attrs={"overrides": point}, skip_if_exists=True
    )
  return len(points)


def requeue_interrupted(sweep: Sweep, stale_after_s: float) -> int:
  """Queues again the running trials whose worker is gone; returns how many. A worker on this host is gone when its
  process is (at once); one elsewhere when its heartbeat has stopped for `stale_after_s` (killed, or its machine
  lost)."""
  stale = [trial for trial in sweep.trials(optuna.trial.TrialState.RUNNING) if _worker_gone(trial, stale_after_s)]
  for trial in stale:
    sweep.requeue(trial, "its worker stopped")
  return len(stale)


def _worker_gone(trial: optuna.trial.FrozenTrial, stale_after_s: float) -> bool:
  lease = trial.user_attrs
  if lease.get("host") == socket.gethostname() and "pid" in lease:
    try:
      os.kill(lease["pid"], 0)  # Signal 0: only whether the process exists.
    except ProcessLookupError:
      return True
    except PermissionError:  # Another user's process of that number: alive, so wait for the heartbeat.
      pass
  return time.time() - lease.get("heartbeat", 0.0) > stale_after_s


def work(
    sweep: Sweep,
    config_file: str,
    base_overrides: Sequence[str],
    sweep_dir: str,
    num_workers: int,
    compilation_cache_dir: str,
    heartbeat_s: float = 10.0,
) -> None:
  """Runs `num_workers` workers until no trial is waiting. On Ctrl-C (which the running trials receive too: they
  save a checkpoint and stop; a second Ctrl-C stops them at once) the workers claim nothing more, queue their trials
  again and end; then `errors.Stopped` is raised."""
  devices = _visible_gpus()
  stopping = threading.Event()
  threads = [
      threading.Thread(
          target=_worker,
          args=(
              sweep,
              config_file,
              base_overrides,
              sweep_dir,
              devices[index % len(devices)] if devices else None,
              compilation_cache_dir,
              heartbeat_s,
              stopping,
          ),
          name=f"sweep-worker-{index}",
      )
      for index in range(num_workers)
  ]
  def on_interrupt(signum, frame):
    del signum, frame
    if not stopping.is_set():
      logging.warning("Interrupted: the running trials are saving a checkpoint and will be queued again.")
    stopping.set()

  # A handler rather than KeyboardInterrupt, which would interrupt the joins below and leave the threads' states
  # unknown. Handlers can only be installed from the main thread.
  in_main_thread = threading.current_thread() is threading.main_thread()
  previous_handler = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
  try:
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
  finally:
    if in_main_thread:
      signal.signal(signal.SIGINT, previous_handler)
  if stopping.is_set():
    raise errors.Stopped(
        "The sweep was interrupted; its running trials were queued again to continue from their checkpoints, and "
        "finished ones are kept. Rerun the same command to go on.",
        None,
    )


def _visible_gpus() -> list[str]:
  visible = os.environ.get("CUDA_VISIBLE_DEVICES")
  if visible is not None:
    return [device for device in visible.split(",") if device]
  if shutil.which("nvidia-smi"):
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(index) for index, line in enumerate(listing.splitlines()) if line.startswith("GPU")]
  return []


def _worker(sweep, config_file, base_overrides, sweep_dir, gpu, compilation_cache_dir, heartbeat_s, stopping):
  while not stopping.is_set() and (trial := sweep.claim()) is not None:
    point = trial.user_attrs["overrides"]
    workdir = os.path.join(sweep_dir, point_id(point))
    log_path = os.path.join(sweep_dir, f"{point_id(point)}.log")
    command = [
        sys.executable,
        "experiments/train.py",
        f"--config={config_file}",
        f"--workdir={workdir}",
        f"--compilation_cache_dir={compilation_cache_dir}",
        *base_overrides,
        *override_arguments(point),
    ]
    # The lease: whoever finds this host's process gone, or the heartbeat stopped, queues the trial again.
    sweep.set(trial, workdir=workdir, heartbeat=time.time(), host=socket.gethostname(), pid=os.getpid())
    logging.info("Trial %s: %s", point_id(point), " ".join(command[1:]))
    start = time.time()
    with open(log_path, "a") as log:
      process = subprocess.Popen(command, cwd=_REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=_trial_env(gpu))
      while process.poll() is None:
        sweep.set(trial, heartbeat=time.time())
        try:
          process.wait(timeout=heartbeat_s)
        except subprocess.TimeoutExpired:
          pass
    wall_s = time.time() - start
    sweep.set(trial, wall_s=round(wall_s, 1))
    if process.returncode == 0:
      sweep.set(trial, final=_final_metrics(workdir))
      sweep.finish(trial, optuna.trial.TrialState.COMPLETE, wall_s)
    elif stopping.is_set() or process.returncode in _INTERRUPTED_EXIT_CODES:
      # Whatever a Ctrl-C of the sweep made of its trial (a checkpoint and 75, 130 at once, or an interrupted
      # start-up), the trial is not at fault.
      sweep.requeue(trial, "stopped on a signal")
      return
    else:
      sweep.set(trial, error=_last_error(log_path))
      sweep.finish(trial, optuna.trial.TrialState.FAIL)


_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trial_env(gpu: str | None) -> dict:
  """A trial is a single process: it must not join the job its worker runs in (srun's variables, the launchers'
  GENJAX_DISTRIBUTED), and it gets its worker's GPU."""
  env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
  env["GENJAX_DISTRIBUTED"] = "0"
  if gpu is not None:
    env["CUDA_VISIBLE_DEVICES"] = gpu
  return env


def _final_metrics(workdir: str) -> dict:
  lines = _metric_lines(workdir)
  evals = [line for line in lines if line["split"] == "eval"]
  return {key: value for key, value in (evals[-1] if evals else {}).items() if key != "split"}


def _metric_lines(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _last_error(log_path: str) -> str:
  with open(log_path) as f:
    lines = [line.strip() for line in f if line.strip()]
  errors_ = [line for line in lines if line.startswith("genjax: ")]
  return (errors_ or lines or ["(no output)"])[-1][:500]


def report(sweep: Sweep, sweep_dir: str, metrics: Sequence[str], goal: str, by: Sequence[str] = ()) -> list[str]:
  """Writes results.csv, summary.md, plot_<key>.png and TensorBoard HParams for the sweep; returns the paths. The
  first of `metrics` orders the summary (best first, by `goal`) and is the one plotted."""
  trials = [trial for trial in sweep.trials() if "overrides" in trial.user_attrs]
  latest = {trial.system_attrs["fixed_params"]["point"]: trial for trial in trials}  # The newest attempt of each.
  rows = [_row(trial, metrics, goal) for trial in latest.values()]
  keys = sorted({key for row in rows for key in row["overrides"]})
  group_keys = list(by) or [key for key in keys if key != SEED_KEY]
  written = [_write_csv(rows, keys, metrics, os.path.join(sweep_dir, "results.csv"))]
  groups = _groups(rows, group_keys, metrics)
  written.append(_write_summary(groups, group_keys, metrics, goal, len(rows), os.path.join(sweep_dir, "summary.md")))
  for key in group_keys:
    written.append(_plot(rows, key, [other for other in group_keys if other != key], metrics[0], sweep_dir))
  _write_hparams(rows, metrics)
  return written


def _row(trial, metrics: Sequence[str], goal: str) -> dict:
  workdir = trial.user_attrs.get("workdir", "")
  lines = _metric_lines(workdir)
  evals = [line for line in lines if line["split"] == "eval"]
  history = [line[metrics[0]] for line in evals if line.get(metrics[0]) is not None]
  return {
      "overrides": trial.user_attrs["overrides"],
      "status": trial.state.name.lower(),
      "final": {metric: evals[-1].get(metric) if evals else None for metric in metrics},
      "best": (max if goal == "max" else min)(history) if history else None,
      "step": lines[-1]["step"] if lines else None,
      "wall_s": trial.user_attrs.get("wall_s"),
      "error": trial.user_attrs.get("error", trial.user_attrs.get("interrupted", "")),
      "workdir": workdir,
  }


def _write_csv(rows, keys, metrics, path) -> str:
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(
        [
            *keys,
            *(f"final_{metric}" for metric in metrics),
            f"best_{metrics[0]}",
            "step",
            "status",
            "wall_s",
            "error",
            "workdir",
        ]
    )
    for row in rows:
      writer.writerow(
          [
              *(row["overrides"].get(key, "") for key in keys),
              *(row["final"][metric] for metric in metrics),
              row["best"],
              row["step"],
              row["status"],
              row["wall_s"],
              row["error"],
              row["workdir"],
          ]
      )
  return path


def _groups(rows, group_keys, metrics) -> list[dict]:
  groups = {}
  for row in rows:
    groups.setdefault(tuple(str(row["overrides"].get(key, "")) for key in group_keys), []).append(row)
  summary = []
  for setting, members in groups.items():
    completed = [row for row in members if row["status"] == "complete"]
    stats = {}
    for metric in metrics:
      finals = [row["final"][metric] for row in completed if row["final"][metric] is not None]
      stats[metric] = (float(np.mean(finals)), float(np.std(finals))) if finals else (math.nan, math.nan)
    walls = [row["wall_s"] for row in members if row["wall_s"] is not None]
    statuses = {row["status"] for row in members}
    summary.append(
        {
            "setting": setting,
            "stats": stats,
            "n": len(completed),
            "of": len(members),
            "wall_s": float(np.mean(walls)) if walls else math.nan,
            # What a setting without a value shows: why there is none yet.
            "pending": next((label for status, label in _PENDING_LABELS if status in statuses), "no value"),
        }
    )
  return summary


# A setting without a final value, by the most telling status of its points: "queued" for points that never
# started and for interrupted ones queued again (the CSV's error column tells them apart).
_PENDING_LABELS = (("running", "running"), ("waiting", "queued"), ("fail", "failed"))


def _write_summary(groups, group_keys, metrics, goal, num_trials, path) -> str:
  first = metrics[0]
  sign = -1 if goal == "max" else 1
  ordered = sorted(groups, key=lambda group: (math.isnan(group["stats"][first][0]), sign * group["stats"][first][0]))
  lines = [
      f"# Sweep summary, best {first} first ({'higher' if goal == 'max' else 'lower'} is better)",
      "",
      f"{num_trials} points; final values, mean +- standard deviation over the seeds of each setting (n: completed "
      "of all).",
      "",
      "| " + " | ".join([*group_keys, *metrics, "n", "mean wall s"]) + " |",
      "| " + " | ".join(["---"] * (len(group_keys) + len(metrics) + 2)) + " |",
  ]
  for group in ordered:
    values = [
        f"{mean:.4g} +- {std:.2g}" if not math.isnan(mean) else group["pending"]
        for mean, std in (group["stats"][metric] for metric in metrics)
    ]
    lines.append(
        "| " + " | ".join([*group["setting"], *values, f"{group['n']}/{group['of']}", f"{group['wall_s']:.0f}"]) + " |"
    )
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def _plot(rows, key, other_keys, metric, sweep_dir) -> str:
  """The metric against one swept key (mean with the seeds' standard deviation), a series per setting of the
  others."""
  fig = writers.new_figure((7, 4.5))
  axes = fig.add_subplot()
  values = sorted({str(row["overrides"].get(key, "")) for row in rows})
  series = {}
  for row in rows:
    if row["status"] == "complete" and row["final"][metric] is not None:
      label = ", ".join(f"{other}={row['overrides'].get(other)}" for other in other_keys) or metric
      series.setdefault(label, {}).setdefault(str(row["overrides"].get(key, "")), []).append(row["final"][metric])
  for offset, (label, by_value) in enumerate(sorted(series.items())):
    present = [value for value in values if value in by_value]
    positions = [values.index(value) + 0.08 * (offset - len(series) / 2) for value in present]
    means = [np.mean(by_value[value]) for value in present]
    stds = [np.std(by_value[value]) for value in present]
    axes.errorbar(positions, means, yerr=stds, fmt="o", capsize=3, label=label)
  axes.set_xticks(range(len(values)), values, rotation=30, ha="right", fontsize="small")
  axes.set(xlabel=key, ylabel=f"final {metric}", title=f"{metric} against {key} (error bars: std over seeds)")
  if len(series) > 1:
    axes.legend(fontsize="x-small")
  fig.tight_layout()
  path = os.path.join(sweep_dir, f"plot_{key.replace('.', '_')}.png")
  fig.savefig(path)
  return path


def _write_hparams(rows, metrics) -> None:
  """HParams events in each trial's workdir, so `tensorboard --logdir=SWEEP_DIR` compares the trials."""
  for row in rows:
    finals = {f"final/{metric}": value for metric, value in row["final"].items() if value is not None}
    if row["status"] != "complete" or not finals:
      continue
    hparams = {
        key: value if isinstance(value, (int, float, str, bool)) else str(value)
        for key, value in row["overrides"].items()
    }
    with tensorboardX.SummaryWriter(logdir=os.path.join(row["workdir"], "hparams")) as writer:
      writer.add_hparams(hparams, finals, name=".")
