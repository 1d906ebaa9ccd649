"""Specification of the layout: arrows point one way (experiments -> train_loop/evaluators -> experiment ->
trainers -> models/losses), and the one loop knows no particular family, dataset or evaluation."""

import ast
import glob
import os

import pytest

from conftest import REPO_ROOT

GENJAX = os.path.join(REPO_ROOT, "genjax")


def _imported_modules(path: str) -> set[str]:
  """Every module a file imports, as dotted names ("genjax.data.sources", ...)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _files(folder: str) -> list[str]:
  return sorted(glob.glob(os.path.join(GENJAX, folder, "**", "*.py"), recursive=True))


def test_the_loop_imports_no_evaluation_run_loading_metric_or_family():
  imported = _imported_modules(os.path.join(GENJAX, "train_loop.py"))
  forbidden = [
      name
      for name in imported
      if name.startswith(("genjax.evaluators.", "genjax.metrics", "genjax.trainers", "genjax.feature_networks"))
      or name in ("genjax.runs", "genjax.sampling")
  ]
  assert not forbidden


def test_the_loop_names_no_family_dataset_or_data_kind():
  with open(os.path.join(GENJAX, "train_loop.py")) as f:
    source = f.read()
  strings = {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)}
  assert not strings & {"vae", "gan", "autoencoder", "classifier", "image", "point", "mnist5k", "ring", "grid"}


@pytest.mark.parametrize(
    "folder, must_not_import",
    [
        ("models", ("genjax.trainers", "genjax.experiment", "genjax.train_loop", "genjax.data", "genjax.evaluators")),
        ("trainers", ("genjax.experiment", "genjax.train_loop", "genjax.evaluators", "genjax.runs", "genjax.writers")),
        ("metrics", ("genjax.trainers", "genjax.experiment", "genjax.train_loop", "genjax.runs", "genjax.models")),
        ("data", ("genjax.trainers", "genjax.experiment", "genjax.train_loop", "genjax.evaluators")),
    ],
)
def test_arrows_point_one_way(folder, must_not_import):
  for path in _files(folder):
    wrong = [name for name in _imported_modules(path) if name.startswith(must_not_import)]
    assert not wrong, (path, wrong)


def test_nothing_in_genjax_imports_experiments_or_configs():
  for path in _files(""):
    wrong = [name for name in _imported_modules(path) if name.split(".")[0] in ("experiments", "configs")]
    assert not wrong, (path, wrong)
