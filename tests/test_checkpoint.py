"""Specification of the checkpoint door: relative and empty workdirs, storage errors that orbax raises in the
background, and damaged checkpoints met more than once."""

import os
import shutil
import subprocess

import pytest

from conftest import tiny_config
from genjax import checkpoint
from genjax import errors
from genjax import runs
from genjax import train_loop
from genjax import writers


def _train(config, checkpoint_dir, digits):
  return train_loop.train_and_evaluate(config, checkpoint_dir, digits, writers.MemoryWriter())


def test_a_relative_checkpoint_directory_keeps_its_checkpoints_and_resumes(digits, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _train(tiny_config("vae"), os.path.join("run", "checkpoints"), digits)
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["2", "4"]
  resumed = _train(tiny_config("vae", train__total_steps=6), os.path.join("run", "checkpoints"), digits)
  assert int(resumed.step) == 6 and not (tmp_path / "run" / "checkpoints_damaged").exists()


def test_the_tools_read_a_run_through_a_relative_workdir(tiny_runs, monkeypatch):
  workdir = tiny_runs["vae"]
  monkeypatch.chdir(os.path.dirname(workdir))
  run = runs.load(os.path.basename(workdir))
  assert run.step == 4 and run.workdir == workdir
  assert not os.path.exists(workdir + "/checkpoints_damaged")


@pytest.mark.parametrize("load", [lambda: train_loop.run(tiny_config("vae"), ""), lambda: runs.load("")])
def test_an_empty_workdir_is_refused(load):
  with pytest.raises(errors.UserError, match=r"--workdir is empty"):
    load()


def test_the_workdir_is_resolved_once_and_named(tmp_path, monkeypatch, caplog):
  monkeypatch.chdir(tmp_path)
  with caplog.at_level("INFO"):
    assert checkpoint.absolute_workdir("run") == str(tmp_path / "run")
  assert str(tmp_path / "run") in caplog.text
  assert checkpoint.absolute_workdir("gs://bucket/run") == "gs://bucket/run"  # Object stores have no cwd.


@pytest.fixture
def small_disk(tmp_path):
  """A 4 MiB tmpfs of its own, as a nearly full disk is: mounting needs root, so elsewhere the test is skipped."""
  mount_point = tmp_path / "disk"
  mount_point.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True)
  if mounted.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
  yield mount_point
  subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(disk, leave_bytes: int):
  """Leaves `leave_bytes` free on `disk` (in a filler file)."""
  free = shutil.disk_usage(disk).free
  with open(disk / "filler", "wb") as f:
    f.write(b"\0" * max(free - leave_bytes, 0))


@pytest.mark.parametrize("leave_bytes", [0, 8192], ids=["no_room_at_all", "room_for_part_of_a_save"])
def test_a_disk_that_fills_during_a_save_is_a_storage_error_and_the_previous_checkpoint_resumes(
    leave_bytes, digits, small_disk
):
  checkpoint_dir = str(small_disk / "run" / "checkpoints")
  _train(tiny_config("vae", train__total_steps=2), checkpoint_dir, digits)
  _fill(small_disk, leave_bytes)
  with pytest.raises(errors.StorageError, match=r"Could not write the checkpoint of step \d+ .*step 2\) is intact"):
    _train(tiny_config("vae", train__total_steps=8), checkpoint_dir, digits)
  os.remove(small_disk / "filler")
  assert int(_train(tiny_config("vae", train__total_steps=2), checkpoint_dir, digits).step) == 2


def test_a_disk_full_before_the_first_save_is_a_storage_error(digits, small_disk):
  checkpoint_dir = str(small_disk / "run" / "checkpoints")
  os.makedirs(checkpoint_dir)
  _fill(small_disk, 0)
  with pytest.raises(errors.StorageError, match=r"Could not write the checkpoint of step 2 .*free some space"):
    _train(tiny_config("vae", train__total_steps=8), checkpoint_dir, digits)


def _truncate_array_files(step_dir):
  """Cuts every array data file of a step (those in a "d" folder of the OCDBT store) to a third, as a killed copy
  would."""
  for root, _, names in os.walk(step_dir):
    for name in names if root.endswith("/d") else ():
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def test_a_step_damaged_a_second_time_is_set_aside_under_a_fresh_name(digits, tmp_path, caplog):
  checkpoint_dir = str(tmp_path / "checkpoints")
  for _ in range(2):
    _train(tiny_config("vae"), checkpoint_dir, digits)
    _truncate_array_files(os.path.join(checkpoint_dir, "4"))
    with caplog.at_level("WARNING"):
      assert int(_train(tiny_config("vae"), checkpoint_dir, digits).step) == 4  # From step 2, trained again.
  assert sorted(os.listdir(tmp_path / "checkpoints_damaged")) == ["4", "4.1"]
  warnings = [record.getMessage() for record in caplog.records if "is damaged" in record.getMessage()]
  assert len(warnings) == 2
  for warning in warnings:  # The reason in a few words, not the storage library's whole report.
    assert len(warning.replace(str(tmp_path), "")) < 250, warning


def test_when_every_checkpoint_is_damaged_the_refusal_says_how_to_start_over(digits, tmp_path):
  checkpoint_dir = str(tmp_path / "checkpoints")
  _train(tiny_config("vae"), checkpoint_dir, digits)
  for step in ("2", "4"):
    _truncate_array_files(os.path.join(checkpoint_dir, step))
  for _ in range(2):  # The same true message on every rerun.
    with pytest.raises(errors.UserError) as refused:
      _train(tiny_config("vae"), checkpoint_dir, digits)
    message = str(refused.value)
    assert f"steps 2, 4) are in {tmp_path / 'checkpoints_damaged'}" in message
    assert "Rerun to start from step 0" not in message
  os.rename(tmp_path / "checkpoints_damaged", tmp_path / "set_aside")  # As the message says, to start over.
  assert int(_train(tiny_config("vae"), checkpoint_dir, digits).step) == 4
