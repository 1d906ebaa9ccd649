"""Specification of the layout: arrows point one way (experiments -> train_loop/evaluators -> experiment ->
trainers -> models/losses), no genjax module imports itself through others, importing the setup seam leaves
TensorFlow out, and the one loop knows no particular family, dataset or evaluation."""

import ast
import glob
import os
import subprocess
import sys

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


def _module_name(path: str) -> str:
  relative = os.path.relpath(path, REPO_ROOT)[: -len(".py")].replace(os.sep, ".")
  return relative.removesuffix(".__init__")


def _import_graph() -> dict[str, set[str]]:
  """Each genjax module -> the genjax modules it imports, at import time or inside a function alike ("from
  genjax.data import sources" names the module genjax.data.sources, "from genjax import losses" genjax.losses)."""
  modules = {_module_name(path): path for path in _files("")}
  graph = {}
  for name, path in modules.items():
    imported = set()
    for dotted in _imported_modules(path):
      # "a.b.c" is module a.b.c, or the symbol c of module a.b.
      target = dotted if dotted in modules else dotted.rpartition(".")[0]
      if target in modules and target != name:
        imported.add(target)
    graph[name] = imported
  return graph


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of the graph (its modules in import order, the first repeated at the end), or None."""
  state, stack = {}, []

  def visit(module):
    state[module] = "open"
    stack.append(module)
    for imported in sorted(graph[module]):
      if state.get(imported) == "open":
        return stack[stack.index(imported) :] + [imported]
      if imported not in state:
        found = visit(imported)
        if found:
          return found
    state[module] = "done"
    stack.pop()
    return None

  for module in sorted(graph):
    if module not in state:
      found = visit(module)
      if found:
        return found
  return None


def test_the_cycle_finder_finds_cycles():
  assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
  assert _a_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_genjax_module_imports_itself_through_others():
  graph = _import_graph()
  assert "genjax.data.sources" in graph["genjax.data.pipeline"]  # The graph sees "from genjax.data import x".
  assert _a_cycle(graph) is None


@pytest.mark.cli
def test_importing_the_setup_seam_imports_neither_tensorflow_nor_folder_reading():
  # A fresh interpreter: this one has imported TFDS for the bundled dataset already.
  probe = (
      "import sys; import genjax.experiment; "
      "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets') "
      "or m in ('genjax.data.catalog', 'genjax.data.folders')))"
  )
  environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
      [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=environment
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"
