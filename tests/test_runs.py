"""Specification of genjax.runs and genjax.workdirs: a run is rebuilt from what its workdir holds (config.json and
data_spec.json), so that tools that do not read its data work when the dataset is gone, and the data is opened only
when a tool asks for it."""

import json
import shutil

import jax
import pytest

from conftest import MNIST_SPEC
from genjax import runs
from genjax import sampling
from genjax import workdirs
from genjax.data import sources


class _DataOpened(Exception):
  pass


@pytest.fixture
def no_data(monkeypatch):
  """Any opening of a dataset (or of its metadata) raises `_DataOpened`: as if the data were gone."""

  def refuse(*arguments, **keywords):
    raise _DataOpened()

  monkeypatch.setattr(sources, "open_source", refuse)
  monkeypatch.setattr(sources, "example_spec", refuse)


def test_a_run_saves_the_spec_of_its_data(tiny_runs):
  with open(f"{tiny_runs['cgan']}/{workdirs.DATA_SPEC_FILE}") as f:
    assert sources.ExampleSpec.from_json(json.load(f)) == MNIST_SPEC
  config = workdirs.read_config(tiny_runs["cgan"])
  assert workdirs.read_data_spec(tiny_runs["cgan"], config) == MNIST_SPEC


def test_a_run_loads_and_samples_without_its_dataset(tiny_runs, no_data):
  run = runs.load(tiny_runs["cgan"])
  assert run.experiment.spec == MNIST_SPEC
  grid = sampling.sample_grid(run.experiment, run.state, 20, jax.random.key(0))
  assert grid.shape == (10 * 29 + 1, 2 * 29 + 1, 1)  # One row of two per class.
  with pytest.raises(_DataOpened):  # The data is opened only when a tool asks for it.
    run.data


def test_a_run_saved_before_its_data_spec_was_gets_it_from_the_datasets_metadata(tiny_runs, tmp_path):
  workdir = tmp_path / "older_vae"
  shutil.copytree(tiny_runs["vae"], workdir)
  (workdir / workdirs.DATA_SPEC_FILE).unlink()
  assert runs.load(str(workdir)).experiment.spec == MNIST_SPEC


def test_outputs_are_named_by_what_they_hold_so_none_replaces_another(tiny_runs, tmp_path):
  run = runs.load(tiny_runs["ae"])
  held_out = runs.output_dir(run, "eval", [("clean_images", None)])
  assert held_out == f"{run.workdir}/eval/4"
  photos = runs.output_dir(run, "eval", [("clean_images", ["~/photos/"])])
  assert photos == f"{run.workdir}/eval/4/clean_images-photos"
  assert runs.output_dir(run, "eval", [("clean_images", ["~/scans"])]) != photos
  between = runs.output_dir(run, "export", [("from_images", ["a.png", "dir/b.jpg"]), ("endpoints", None)])
  assert between == f"{run.workdir}/export/4/from_images-a_b"
  assert runs.output_dir(run, "codes", [("images", ["digits"])], out_dir=str(tmp_path)) == str(tmp_path)
