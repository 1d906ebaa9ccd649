"""Specification of sweeps (genjax.sweeps, experiments/sweep.py, the config helpers): points built from helpers,
checked before anything runs; workers that finish a grid, survive a failed trial and a killed sweep; a report with
its table, CSV and plots."""

import csv
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from conftest import COMPILATION_CACHE, REPO_ROOT, command_env, run_command
from genjax import config_lib
from genjax import errors
from genjax import sweeps

# A config file of the kind users write: a variant of configs/toy2d.py, tiny, with named sweeps.
_TINY_SWEEP_CONFIG = """
from configs import toy2d
from genjax import config_lib


def get_config(arg=None):
  config = toy2d.get_config(arg)
  config.model.g_channels = config.model.d_channels = (8, 8)
  config.train.total_steps, config.train.log_every_steps = 4, 2
  config.eval.every_steps, config.eval.batch_size, config.eval.mode_coverage.num_samples = 4, 100, 100
  config.ckpt.every_steps = 2
  return config


def get_sweep(name):
  grid = config_lib.product(config_lib.sweep("gan.loss", ["hinge", "least_squares"]), config_lib.seeds(1))
  return {
      "grid": grid,
      "pair": grid[:2],
      "grid_and_a_failure": grid + [{"optim.lr": -1.0}],
      "typo": [{"gan.los": "x"}],
      "long": [{"train.total_steps": 100000, "train.log_every_steps": 1}],
  }[name]
"""


@pytest.fixture
def config_file(tmp_path):
  path = tmp_path / "tiny_sweep.py"
  path.write_text(textwrap.dedent(_TINY_SWEEP_CONFIG))
  return str(path)


def _sweep(*arguments):
  return run_command("sweep.py", *arguments)


def _results(sweep_dir):
  with open(os.path.join(sweep_dir, "results.csv")) as f:
    return list(csv.DictReader(f))


def test_helpers_build_points_as_big_vision_does():
  grid = config_lib.product(
      config_lib.sweep("a", [1, 2]), config_lib.zipped(config_lib.sweep("b", "xy"), config_lib.seeds(2))
  )
  assert grid == [
      {"a": 1, "b": "x", "seed": 0},
      {"a": 1, "b": "y", "seed": 1},
      {"a": 2, "b": "x", "seed": 0},
      {"a": 2, "b": "y", "seed": 1},
  ]
  with pytest.raises(errors.UserError, match="differ in length"):
    config_lib.zipped(config_lib.sweep("a", [1, 2]), config_lib.seeds(3))


@pytest.mark.cli
def test_a_point_with_an_unknown_key_is_refused_before_any_trial(config_file, tmp_path):
  with pytest.raises(errors.UserError, match=r"Sweep point \{'gan.los': 'x'\} does not fit .*gan.los"):
    sweeps.load_points(config_file, "typo")
  result = _sweep("run", f"--config={config_file}", "--sweep=typo", f"--sweep_dir={tmp_path / 'sweep'}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert not (tmp_path / "sweep").exists()


@pytest.mark.cli
def test_two_workers_finish_a_grid_a_failed_trial_stops_nothing_and_the_report_has_table_csv_and_plots(
    config_file, tmp_path
):
  sweep_dir = str(tmp_path / "grid")
  arguments = [f"--config={config_file}", f"--sweep_dir={sweep_dir}", "--metric=modes_covered"]
  result = _sweep("run", *arguments, "--sweep=grid_and_a_failure", "--workers=2")
  assert result.returncode == 0, result.stderr
  rows = _results(sweep_dir)
  complete = [row for row in rows if row["status"] == "complete"]
  assert {(row["gan.loss"], row["seed"]) for row in complete} == {("hinge", "0"), ("least_squares", "0")}
  assert all(row["step"] == "4" and row["final_modes_covered"] != "" for row in complete)
  (failed,) = [row for row in rows if row["status"] == "fail"]
  assert "config.optim.lr=-1.0 must be a positive number" in failed["error"]
  with open(os.path.join(sweep_dir, "summary.md")) as f:
    summary = f.read()
  assert "| gan.loss | optim.lr | modes_covered | n | mean wall s |" in summary and "| 1/1 |" in summary
  assert os.path.isfile(os.path.join(sweep_dir, "plot_gan_loss.png"))
  # The same directory for another sweep: refused.
  result = _sweep("run", *arguments, "--sweep=grid")
  assert result.returncode == 1 and "holds another sweep" in result.stderr


@pytest.mark.cli
def test_a_killed_sweep_run_again_finishes_the_rest_without_rerunning_finished_trials(config_file, tmp_path):
  sweep_dir = str(tmp_path / "killed")
  command = [
      sys.executable,
      "experiments/sweep.py",
      "run",
      f"--config={config_file}",
      "--sweep=pair",
      f"--sweep_dir={sweep_dir}",
      "--workers=1",
      f"--compilation_cache_dir={COMPILATION_CACHE}",
  ]
  env = command_env()
  process = subprocess.Popen(
      command, cwd=REPO_ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  finished = []
  deadline = time.time() + 300
  while not finished and time.time() < deadline:
    time.sleep(0.5)
    if os.path.isfile(os.path.join(sweep_dir, sweeps.JOURNAL_FILE)):
      finished = sweeps.open_sweep(sweep_dir, None, identity=None).trials(optuna.trial.TrialState.COMPLETE)
  os.killpg(process.pid, signal.SIGKILL)  # Worker and trial, without a chance to record anything.
  process.wait()
  finished_log = finished[0].user_attrs["workdir"] + ".log"
  with open(finished_log) as f:
    finished_log_text = f.read()
  result = _sweep(
      "run", f"--config={config_file}", "--sweep=pair", f"--sweep_dir={sweep_dir}", "--workers=2", "--stale_after_s=0"
  )
  assert result.returncode == 0, result.stderr
  assert [row["status"] for row in _results(sweep_dir)] == ["complete"] * 2
  with open(finished_log) as f:
    assert f.read() == finished_log_text  # The finished trial did not run again.


@pytest.mark.cli
def test_an_unreachable_storage_is_refused(config_file, tmp_path):
  result = _sweep(
      "run",
      f"--config={config_file}",
      "--sweep=grid",
      f"--sweep_dir={tmp_path}",
      "--storage=postgresql://nobody@127.0.0.1:1/optuna",
  )
  assert result.returncode == 1 and "Cannot open the sweep storage postgresql://" in result.stderr
  assert "Traceback" not in result.stderr


def _identity(sweep_name):
  return {"config": "tiny_sweep.py", "sweep": sweep_name, "overrides": []}


@pytest.mark.cli
def test_a_refused_sweep_leaves_the_other_sweeps_journal_untouched(tmp_path):
  sweeps.open_sweep(str(tmp_path), None, _identity("grid"))
  journal = tmp_path / sweeps.JOURNAL_FILE
  before = journal.read_bytes()
  with pytest.raises(errors.UserError, match="holds another sweep"):
    sweeps.open_sweep(str(tmp_path), None, _identity("other"))
  assert journal.read_bytes() == before
  with pytest.raises(errors.UserError, match="holds no sweep"):
    sweeps.open_sweep(str(tmp_path / "empty"), None, identity=None)
  assert not (tmp_path / "empty" / sweeps.JOURNAL_FILE).exists()


@pytest.mark.cli
def test_the_report_labels_points_that_never_started_as_queued_not_failed(tmp_path):
  sweep = sweeps.open_sweep(str(tmp_path), None, _identity("grid"))
  sweeps.enqueue(sweep, [{"gan.loss": "hinge"}, {"gan.loss": "least_squares"}])
  sweeps.report(sweep, str(tmp_path), ["modes_covered"], "max")
  summary = (tmp_path / "summary.md").read_text()
  assert "failed" not in summary and summary.count("| queued |") == 2, summary


@pytest.mark.cli
def test_a_running_trial_whose_worker_died_on_this_host_is_queued_again_at_once(tmp_path):
  sweep = sweeps.open_sweep(str(tmp_path), None, _identity("grid"))
  sweeps.enqueue(sweep, [{"seed": 0}, {"seed": 1}])
  dead = subprocess.Popen(["true"])
  dead.wait()
  for pid in (os.getpid(), dead.pid):  # A live worker (this process) and a dead one, both heard of just now.
    trial = sweep.claim()
    sweep.set(trial, heartbeat=time.time(), host=socket.gethostname(), pid=pid)
  assert sweeps.requeue_interrupted(sweep, stale_after_s=120) == 1
  (running,) = sweep.trials(optuna.trial.TrialState.RUNNING)
  assert running.user_attrs["pid"] == os.getpid()
  (waiting,) = sweep.trials(optuna.trial.TrialState.WAITING)
  assert waiting.system_attrs["fixed_params"]["attempt"] == 1


@pytest.mark.cli
def test_ctrl_c_stops_a_sweep_with_a_message_and_queues_its_running_trial_again(config_file, tmp_path):
  sweep_dir = str(tmp_path / "interrupted")
  command = [
      sys.executable,
      "experiments/sweep.py",
      "run",
      f"--config={config_file}",
      "--sweep=long",
      f"--sweep_dir={sweep_dir}",
      f"--compilation_cache_dir={COMPILATION_CACHE}",
  ]
  env = command_env()
  process = subprocess.Popen(
      command, cwd=REPO_ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  log = os.path.join(sweep_dir, sweeps.point_id({"train.total_steps": 100000, "train.log_every_steps": 1}) + ".log")
  deadline = time.time() + 300
  while time.time() < deadline and not (os.path.isfile(log) and "step 2/100000" in open(log).read()):
    time.sleep(0.5)
  os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the sweep and its trial both receive it.
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == errors.Stopped.exit_code, stderr
  assert "Traceback" not in stderr and "genjax: stopped: " in stderr
  sweep = sweeps.open_sweep(sweep_dir, None, identity=None)
  assert not sweep.trials(optuna.trial.TrialState.RUNNING), stderr
  (waiting,) = sweep.trials(optuna.trial.TrialState.WAITING)  # The next run continues it from its checkpoint.
  assert waiting.system_attrs["fixed_params"]["attempt"] == 1
