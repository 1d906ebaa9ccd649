"""Specification of the checkpoint door: relative and empty workdirs, storage errors that orbax raises in the
background, and damaged checkpoints met more than once."""

import os

import jax
import numpy as np
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
