"""Specification of what a run does when things go wrong: non-finite values are never checkpointed and the newest
finite checkpoint survives; a damaged checkpoint is set aside and the one before is used; a full disk is reported
with the space left; config values out of range are refused before anything is touched; metrics.jsonl holds each
step once after a crash; each outcome has its own exit status; processes agree on the data."""

import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import COMPILATION_CACHE, REPO_ROOT, TEST_XLA_FLAGS, command_env, load_config, run_command, tiny_config
from genjax import checkpoint
from genjax import cli
from genjax import config_lib
from genjax import errors
from genjax import train_loop
from genjax import writers


def _params(state):
  return jax.tree.map(np.asarray, state.params)


def _train(config, workdir, digits, writer=None):
  return train_loop.train_and_evaluate(
      config, os.path.join(workdir, "checkpoints"), digits, writer or writers.MemoryWriter()
  )


def _saved_steps(workdir):
  return sorted(int(name) for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.isdigit())


def test_a_divergence_mid_run_is_never_checkpointed_and_the_newest_finite_checkpoint_survives(digits, tmp_path):
  workdir = str(tmp_path)
  _train(tiny_config("vae", train__total_steps=4), workdir, digits)
  assert _saved_steps(workdir) == [2, 4]
  # From step 4 on the updates explode (parameters near 1e30 after step 5, non-finite losses at step 6); a
  # checkpoint is due at every step, a log line only at step 8.
  exploding = tiny_config("vae", train__total_steps=8, optim__lr=1e30, ckpt__every_steps=1, train__log_every_steps=8)
  with pytest.raises(errors.Diverged, match=r"by step 6 .*newest checkpoint \(step 5\).* is finite and intact"):
    _train(exploding, workdir, digits)
  assert _saved_steps(workdir) == [2, 4, 5]
  newest = _train(tiny_config("vae", train__total_steps=5), workdir, digits)  # Restores step 5, trains nothing.
  assert int(newest.step) == 5 and all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(_params(newest)))


def test_non_finite_metrics_are_json_null_and_named(tmp_path):
  writer = writers.RunWriter(str(tmp_path))
  writer.write_metrics(3, "train", {"loss": float("nan"), "kl": float("inf"), "mse": 0.5})
  writer.close()
  with open(tmp_path / "metrics.jsonl") as f:
    line = json.loads(f.read())  # Strict JSON: Python's parser would accept NaN, so check the text too.
  assert line == {"step": 3, "split": "train", "loss": None, "kl": None, "mse": 0.5, "nonfinite": ["loss", "kl"]}


@pytest.mark.parametrize(
    "damage",
    [
        lambda step_dir: _truncate_array_files(os.path.join(step_dir, "state")),
        lambda step_dir: _overwrite(os.path.join(step_dir, "state", "_METADATA"), b"{not json"),
        lambda step_dir: os.remove(os.path.join(step_dir, "state", "manifest.ocdbt")),
    ],
    ids=["truncated_array_file", "garbled_metadata", "missing_manifest"],
)
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_one_before_resumes(damage, digits, tmp_path):
  workdir = str(tmp_path / "run")
  config = tiny_config("vae", train__total_steps=6, optim__schedule="constant")
  straight = _train(config, str(tmp_path / "straight"), digits)
  _train(tiny_config("vae", train__total_steps=4, optim__schedule="constant"), workdir, digits)
  damage(os.path.join(workdir, "checkpoints", "4"))
  resumed = _train(config, workdir, digits)
  jax.tree.map(np.testing.assert_array_equal, _params(resumed), _params(straight))
  assert os.path.isdir(os.path.join(workdir, "checkpoints_damaged", "4"))  # Kept, for inspection.
  assert _saved_steps(workdir) == [2, 4, 6]


def _truncate_array_files(directory):
  """Cuts every array data file (those in a "d" folder of the OCDBT store) to a third, as a full disk or a killed
  copy would."""
  for root, _, names in os.walk(directory):
    for name in names if root.endswith("/d") else ():
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def _overwrite(path, content: bytes):
  with open(path, "wb") as f:
    f.write(content)


def test_a_full_disk_found_in_the_background_names_the_step_and_the_free_space_and_keeps_the_previous_checkpoint(
    digits, tmp_path, monkeypatch
):
  # As orbax reports a full disk: TensorStore's error, raised by the background write of step 4 and surfacing only
  # when the next save (or the end of the run) waits for it. tests/test_checkpoint.py fills a real tmpfs.
  workdir = str(tmp_path)
  original_wait = ocp.CheckpointManager.wait_until_finished

  def wait_for_a_write_that_found_the_disk_full(manager):
    original_wait(manager)
    if 4 in manager.all_steps():
      raise ValueError(
          'RESOURCE_EXHAUSTED: Error writing local file "ocdbt.process_0/d/41e8": Failed to write 171 bytes to file '
          "21: No space left on device [os_error_code='28'] [tensorstore_spec='{...}']"
      )

  monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", wait_for_a_write_that_found_the_disk_full)
  with pytest.raises(
      errors.StorageError, match=r"step 4 .*: No space left on device \(.* MiB free of .*step 2\) is intact"
  ):
    _train(tiny_config("vae", train__total_steps=6), workdir, digits)
  monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", original_wait)
  shutil.rmtree(os.path.join(workdir, "checkpoints", "4"))  # What orbax leaves of a save that failed.
  assert int(_train(tiny_config("vae", train__total_steps=2), workdir, digits).step) == 2  # Restorable.


def test_metrics_after_a_crash_and_a_resume_hold_each_step_once(digits, tmp_path):
  workdir = str(tmp_path)
  config = tiny_config("vae", train__total_steps=6, train__log_every_steps=1, ckpt__every_steps=4)
  writer = writers.RunWriter(workdir)
  _train(config, workdir, digits, writer)
  writer.close()
  # As if killed after logging step 6 but before its checkpoint: the newest checkpoint is step 4.
  shutil.rmtree(os.path.join(workdir, "checkpoints", "6"))
  writer = writers.RunWriter(workdir)
  _train(config, workdir, digits, writer)
  writer.close()
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    train_steps = [line["step"] for line in map(json.loads, f) if line["split"] == "train"]
  assert train_steps == [1, 2, 3, 4, 5, 6]


def test_each_train_line_says_how_many_steps_it_averages(digits, tmp_path):
  writer = writers.MemoryWriter()
  _train(tiny_config("vae", train__total_steps=5), str(tmp_path), digits, writer)
  assert [(m["step"], m["num_steps_averaged"]) for m in writer.metrics if m["split"] == "train"] == [
      (2, 2),
      (4, 2),
      (5, 1),
  ]


def test_total_steps_below_the_checkpoint_is_refused_and_equal_is_already_done(digits, tmp_path):
  workdir = str(tmp_path)
  _train(tiny_config("vae"), workdir, digits)
  with pytest.raises(
      errors.UserError, match="checkpoint is at step 4, beyond config.train.total_steps=2.*greater than 4"
  ):
    _train(tiny_config("vae", train__total_steps=2), workdir, digits)
  writer = writers.MemoryWriter()
  assert int(_train(tiny_config("vae"), workdir, digits, writer).step) == 4
  assert writer.metrics == [] and writer.config is None  # Nothing trained, nothing rewritten.


def test_keep_zero_is_refused_before_anything_is_deleted(digits, tmp_path):
  workdir = str(tmp_path)
  _train(tiny_config("vae", train__total_steps=2), workdir, digits)
  with pytest.raises(errors.UserError, match=r"config.ckpt.keep=0 must be at least 1"):
    _train(tiny_config("vae", ckpt__keep=0), workdir, digits)
  assert _saved_steps(workdir) == [2]


@pytest.mark.cli
@pytest.mark.parametrize(
    "key",
    [
        "train.total_steps",
        "train.batch_size",
        "train.log_every_steps",
        "eval.every_steps",
        "eval.batch_size",
        "ckpt.every_steps",
        "ckpt.keep",
    ],
)
@pytest.mark.parametrize("value", [0, -1])
def test_train_py_refuses_non_positive_sizes_and_intervals_without_touching_the_workdir(key, value, tmp_path):
  workdir = tmp_path / "run"
  result = run_command(
      "train.py", "--config=configs/vae.py:runlocal", f"--workdir={workdir}", f"--config.{key}={value}"
  )
  assert result.returncode == errors.UserError.exit_code
  assert "Traceback" not in result.stderr
  (message,) = [line for line in result.stderr.splitlines() if line.startswith("genjax: error:")]
  assert f"config.{key}={value} must be" in message
  assert not workdir.exists()


@pytest.mark.parametrize(
    "error, code", [(errors.UserError("bad"), 1), (errors.Diverged("nan"), 65), (errors.StorageError("full"), 74)]
)
def test_each_outcome_has_its_exit_status(error, code):
  def main(argv):
    raise error

  with pytest.raises(SystemExit) as exited:
    cli.reporting_user_errors(main)(["genjax"])
  assert exited.value.code == code
  assert errors.Stopped("stopped", None).exit_code == 75


@pytest.mark.cli
def test_a_run_that_diverges_exits_65_and_a_stopped_run_exits_75(tmp_path, tfds_data_dir):
  data_dir = f"--config.data.data_dir={tfds_data_dir}"
  tiny = ["--config.model.widths=(4, 8)", "--config.model.latent_size=4", "--config.train.batch_size=16"]
  diverged = run_command(
      "train.py",
      "--config=configs/vae.py:runlocal",
      f"--workdir={tmp_path / 'a'}",
      data_dir,
      *tiny,
      "--config.optim.lr=1e30",
      "--config.train.total_steps=4",
      "--config.train.log_every_steps=2",
  )
  assert diverged.returncode == 65 and "genjax: error: Training diverged by step" in diverged.stderr
  assert "Traceback" not in diverged.stderr
  command = [
      sys.executable,
      "experiments/train.py",
      "--config=configs/vae.py:runlocal",
      f"--workdir={tmp_path / 'b'}",
      data_dir,
      *tiny,
      "--config.train.total_steps=100000",
      "--config.train.log_every_steps=1",
      f"--compilation_cache_dir={COMPILATION_CACHE}",
  ]
  env = command_env()
  process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env=env)
  for line in process.stderr:
    if "step 3/100000" in line:
      process.terminate()  # SIGTERM, as a scheduler sends before preempting.
      break
  stderr = process.stderr.read()
  assert process.wait(timeout=120) == 75
  assert "genjax: stopped: Stopped at step" in stderr and "Traceback" not in stderr
  assert _saved_steps(str(tmp_path / "b"))


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    return probe.getsockname()[1]


@pytest.mark.cli
def test_two_processes_started_as_srun_would_train_like_one_and_their_checkpoint_resumes_in_one(
    tmp_path, tfds_data_dir, tiny_runs
):
  # The tiny VAE run of the fixtures, as flags: the one-process run to compare with, trained once for the session.
  overrides = {
      "model.widths": (4, 8),
      "model.latent_size": 4,
      "train.batch_size": 16,
      "train.total_steps": 4,
      "train.log_every_steps": 2,
      "eval.every_steps": 4,
      "eval.batch_size": 16,
      "eval.grids.num_images": 8,
      "eval.anomaly.num_images": 8,
      "eval.mode_coverage.num_samples": 100,
      "ckpt.every_steps": 2,
      "optim.warmup_steps": 0,
      "data.data_dir": tfds_data_dir,
  }
  config = load_config("vae", "runlocal")
  config_lib.set_values(config, overrides)
  assert config.to_dict() == tiny_config("vae", data__data_dir=tfds_data_dir).to_dict()
  arguments = ["--config=configs/vae.py:runlocal", *(f"--config.{key}={value}" for key, value in overrides.items())]
  port = _free_port()
  two = [
      subprocess.Popen(
          [
              sys.executable,
              "experiments/train.py",
              f"--workdir={tmp_path / 'two'}",
              *arguments,
              f"--compilation_cache_dir={COMPILATION_CACHE}",
          ],
          cwd=REPO_ROOT,
          stderr=subprocess.PIPE,
          text=True,
          # What srun sets for a 2-task step on one node (and no other SLURM_* of a job these tests may run in),
          # GENJAX_DISTRIBUTED as launch/slurm.sbatch adds it, and a free coordinator port: the processes find each
          # other through genjax's SLURM detection, not through config flags.
          env={
              **{key: value for key, value in os.environ.items() if not key.startswith("SLURM_")},
              "JAX_PLATFORMS": "cpu",
              "XLA_FLAGS": TEST_XLA_FLAGS,
              "GENJAX_DISTRIBUTED": "1",
              "SLURM_JOB_ID": "4242",
              "SLURM_STEP_ID": "0",
              "SLURM_STEP_NODELIST": "localhost",
              "SLURM_NTASKS": "2",
              "SLURM_PROCID": str(process_id),
              "SLURM_LOCALID": str(process_id),
              "JAX_COORDINATOR_PORT": str(port),
          },
      )
      for process_id in range(2)
  ]
  outputs = [process.communicate(timeout=600)[1] for process in two]
  assert [process.returncode for process in two] == [0, 0], outputs
  final = lambda workdir: [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))][-1]
  one_line, two_line = final(tiny_runs["vae"]), final(tmp_path / "two")
  assert one_line["step"] == two_line["step"] == 4
  for name in ("loss", "neg_elbo_nats", "kl"):
    np.testing.assert_allclose(two_line[name], one_line[name], rtol=1e-4)
  # The two processes' checkpoint, resumed by this one process for two more steps.
  config.train.total_steps = 6
  assert int(train_loop.run(config, str(tmp_path / "two")).step) == 6


def test_a_mistyped_key_is_named_once_in_balanced_quotes():
  with pytest.raises(errors.UserError) as refused:
    config_lib.override(load_config("vae"), ["--config.train.total_stepz=9"])
  assert str(refused.value) == (
      "Cannot apply --config.train.total_stepz=9: 'total_stepz' is not a config key. "
      'Did you mean "total_steps" instead of "total_stepz"?'
  )


def test_a_divergence_before_any_checkpoint_says_what_to_change_in_plain_sentences(tmp_path):
  checkpointer = checkpoint.Checkpointer(str(tmp_path / "checkpoints"), keep=1)
  with pytest.raises(errors.Diverged) as diverged:
    train_loop._stop_if_diverged(False, {"loss": float("nan"), "kl": 1.0}, 3, checkpointer)
  checkpointer.close()
  assert str(diverged.value) == (
      "Training diverged by step 3: {'loss': nan}. No checkpoint was written. Before rerunning, lower "
      "config.optim.lr, set config.optim.grad_clip_norm, or change config.seed."
  )
