"""Shared test machinery: one CPU device (eight simulated ones for the tests about sharding), the test tiers, tiny
configs, one compilation cache for the session, each experiment built once per test process, and the entry points
run as users run them. The trained tiny runs that many tests share are session fixtures in `tiny_runs.py`.

Tiers (markers, assigned at collection; select with `-m`):
- unit: functions on hand-made inputs, no trained run;
- integration: through the loop, or on a trained tiny run (a fixture of `tiny_runs.py`);
- cli: runs an entry point as a user does, in a process of its own (`run_command`), for the exit-status wiring;
- slow: longer than the default suite affords; deselected by default (`-m slow` runs them);
- sharding: asks for the `devices` fixture; run on 8 simulated devices in one pytest process of their own (see
  `ShardedTests`), since XLA fixes the device count when JAX initialises, before any test runs.

XLA_FLAGS must be set before JAX initialises its backend, which is why it is set at import time here.
"""

import atexit
import collections
import contextvars
import copy
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

# Set for the pytest process that runs the sharding tests (started by `ShardedTests`).
_ON_SIMULATED_MESH = "GENJAX_TESTS_ON_SIMULATED_MESH"
SIMULATED_DEVICES = 8
# The tests' programs are tiny: XLA's backend optimisations cost them far more compile time than they save in run
# time (the default suite takes 2.5 times as long with them), and so do XLA CPU's MLIR fusion emitters (without
# them test_gan.py takes 45 CPU-seconds instead of 84). Entry points that tests start get the same flags.
TEST_XLA_FLAGS = " ".join(
    [
        os.environ.get("XLA_FLAGS", ""),
        "--xla_backend_optimization_level=0",
        "--xla_llvm_disable_expensive_passes=true",
        "--xla_cpu_use_fusion_emitters=false",
    ]
)
_device_count = SIMULATED_DEVICES if os.environ.get(_ON_SIMULATED_MESH) else 1
os.environ["XLA_FLAGS"] = TEST_XLA_FLAGS + f" --xla_force_host_platform_device_count={_device_count}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from genjax import cli  # noqa: E402
from genjax import config_lib  # noqa: E402
from genjax.data import mnist5k  # noqa: E402
from genjax.data import pipeline  # noqa: E402
from genjax.data import preprocess  # noqa: E402
from genjax.data import sources  # noqa: E402

pytest_plugins = ["tiny_runs"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests compile the same tiny programs many times over (every run of the loop builds its own jitted functions);
# JAX's persistent cache, in a directory of this session's, compiles each once, in this process, in the pytest
# workers and processes it starts (which inherit the variable), and in the entry points that tests start.
_CACHE_VARIABLE = "GENJAX_TESTS_COMPILATION_CACHE"
if _CACHE_VARIABLE not in os.environ:  # The session's first pytest process, which owns the cache.
  os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="genjax-tests-jax-cache-")
  atexit.register(shutil.rmtree, os.environ[_CACHE_VARIABLE], ignore_errors=True)
COMPILATION_CACHE = os.environ[_CACHE_VARIABLE]
cli.enable_compilation_cache(COMPILATION_CACHE)


def run_command(script: str, *arguments: str) -> subprocess.CompletedProcess:
  """Runs `python experiments/<script> ARGUMENTS` from the repository root on one CPU device, as a user would.

  Only cli tests start processes: the rest of the suite tests the same logic in-process, which is far cheaper."""
  assert "cli" in _current_marks.get(), "a test that starts an entry point is a cli test: mark it @pytest.mark.cli"
  command = [sys.executable, f"experiments/{script}", *arguments, f"--compilation_cache_dir={COMPILATION_CACHE}"]
  return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=command_env(), timeout=600)


def command_env(**variables: str) -> dict[str, str]:
  """The environment of an entry point that a test starts: one CPU device, the tests' XLA flags, `variables`."""
  return {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS, "JAX_PLATFORMS": "cpu", **variables}


def load_config(name: str, arg: str = "runlocal"):
  """Loads configs/<name>.py as a module and returns get_config(arg)."""
  spec = importlib.util.spec_from_file_location(f"configs.{name}", os.path.join(REPO_ROOT, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


# The example spec of MNIST-like data.
MNIST_SPEC = sources.ExampleSpec.images((28, 28, 1), num_classes=10)


def tiny_config(name: str, arg: str = "runlocal", **overrides):
  """A config (`runlocal` by default) shrunk to a model and schedule that compile and run in seconds."""
  config = load_config(name, arg)
  if config.family == "gan":
    config.model.g_channels = {"dcgan": (8, 4), "resnet": (8, 8, 8), "mlp": (8, 8)}[config.model.architecture]
    config.model.d_channels = {"dcgan": (4, 8), "resnet": (8, 8, 8), "mlp": (8, 8)}[config.model.architecture]
  elif config.family == "stylegan2":
    config.model.channel_base, config.model.channel_max, config.model.w_size = 64, 8, 8
  elif config.family == "classifier":
    config.model.channels = (4, 8)
    config.model.feature_size = 8
  elif config.family == "diffusion":
    # One level (no down- or upsampling) keeps the programs small: compiling them is most of a tiny run's time.
    config.model.channels, config.model.channel_multipliers, config.model.num_res_blocks = 8, (1,), 1
    config.model.attention_resolutions = ()  # The middle block still attends, at 28x28.
    config.diffusion.num_timesteps, config.diffusion.sampling.steps = 50, 3
  elif config.family == "translation":
    config.model.num_downs, config.model.num_blocks = 2, 1
    config.model.g_features = config.model.d_features = 4
    config.model.d_layers = 1
    config.translation.pool_size = min(config.translation.pool_size, 4)
    if config.data.patch_size:
      config.data.patch_size = 16
  else:
    config.model.widths = (4, 8)
  if "latent_size" in config.model:
    config.model.latent_size = 4
  config.train.batch_size = 16
  config.train.total_steps = 4
  config.train.log_every_steps = 2
  config.eval.every_steps = 4
  config.eval.batch_size = 16
  config.eval.grids.num_images = 8
  config.eval.anomaly.num_images = 8
  config.eval.mode_coverage.num_samples = 100
  config.ckpt.every_steps = 2
  config.optim.warmup_steps = 0
  # data__synthetic__fraction=0.5 sets config.data.synthetic.fraction.
  config_lib.set_values(config, {key.replace("__", "."): value for key, value in overrides.items()})
  return config


@pytest.fixture(scope="session")
def digits():
  """40 real MNIST digits (4 per class) as an in-memory source: 24 train and 20 eval examples."""
  images, labels = mnist5k.load_rows(mnist5k.bundled_csv_path())
  picked = np.concatenate([np.flatnonzero(labels == c)[:4] for c in range(10)])
  examples = [{"image": images[i], "label": int(labels[i])} for i in picked]
  return sources.in_memory("mnist5k", examples[::2] + examples[1::2][:4], examples[1::2])


def train_batch(config, data: sources.DataSource, step: int = 0, batches_per_step: int = 1):
  """The preprocessed train batch `[k, B, ...]` of `step`, as a trainer's train step receives it."""
  raw = pipeline.StreamReader(
      data.train, data.spec, pipeline.Stream(config.seed, batches_per_step, config.train.batch_size), 0, 1
  )(step)
  keys = preprocess.train_example_keys(jax.random.key(0), raw[pipeline.EPOCH], raw[pipeline.POSITION])
  model_arrays = {key: raw[key] for key in (*data.spec.shapes, sources.SIZE) if key in raw}
  return preprocess.apply(model_arrays, keys, preprocess.Options.from_config(config.data, data.spec), training=True)


def eval_batch(config, examples, batch_size: int):
  """The first evaluation batch `[B, ...]` of `examples` (with "mask"), as a trainer's eval step receives it."""
  spec = sources.inferred_spec(examples)
  raw = next(pipeline.eval_batches(examples, spec, batch_size))
  keys = preprocess.eval_example_keys(jax.random.key(0), raw[pipeline.INDEX])
  model_arrays = {key: raw[key] for key in ("image", "point", "label") if key in raw}
  batch = preprocess.apply(model_arrays, keys, preprocess.Options.from_config(config.data, spec), training=False)
  return {**jax.tree.map(np.array, batch), "mask": raw["mask"]}  # Writable copies.


def unlabelled(data: sources.DataSource) -> sources.DataSource:
  """The same images without their labels."""
  train, evaluation = ([{"image": example["image"]} for example in split] for split in (data.train, data.eval))
  return sources.in_memory(data.name, train, evaluation)


@pytest.fixture
def devices():
  """The 8 simulated CPU devices: a test that asks for them is a sharding test (see the module docstring)."""
  assert jax.device_count() == SIMULATED_DEVICES, "sharding tests run in the process that `ShardedTests` starts"
  return jax.devices()


_TIERS = ("unit", "integration", "cli")
# The marks of the test now running, for `run_command`'s check that only cli tests start processes.
_current_marks = contextvars.ContextVar("current_marks", default=frozenset())


def pytest_configure(config):
  for tier, meaning in [
      ("unit", "functions on hand-made inputs, no trained run"),
      ("integration", "through the loop, or on a trained tiny run"),
      ("cli", "runs an entry point in a process of its own"),
      ("sharding", "on 8 simulated devices, in a pytest process of their own"),
  ]:
    config.addinivalue_line("markers", f"{tier}: {meaning}")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session, config, items):
  """Gives every test its tier before `-m` selects (the one it is marked with; integration if it uses a trained
  tiny run; else unit); after selection, hands the sharding tests to one `ShardedTests` item and orders the rest
  for the workers (see `_longest_files_first`)."""
  import tiny_runs  # The plugin this module names in pytest_plugins: loaded by now.

  run_fixtures = set(tiny_runs.RUN_FIXTURES)
  for item in items:
    if not any(item.get_closest_marker(tier) for tier in _TIERS):
      item.add_marker("integration" if run_fixtures & set(item.fixturenames) else "unit")
    if "devices" in item.fixturenames:
      item.add_marker("sharding")
  yield
  if os.environ.get(_ON_SIMULATED_MESH):
    return
  sharded = [item for item in items if item.get_closest_marker("sharding")]
  items[:] = _longest_files_first([item for item in items if not item.get_closest_marker("sharding")])
  if sharded:
    # First: the longest item, so that the other workers share the rest of the suite while it runs.
    items.insert(0, ShardedTests.from_parent(session, name="sharding tests on 8 simulated devices", tests=sharded))


# The files that take longest, longest first: seconds on a worker of the default suite on the 2-core CPU
# (2026-12-03): 120, 107, 101, 91, 89, 64, 59, 55, 46, 38, 36, 36, 33 and 30; the others took under 27 s each.
# `--durations` shows when this needs changing.
_LONGEST_FILES = (
    "test_translation.py",
    "test_restoration.py",
    "test_stylegan.py",
    "test_gan.py",
    "test_reliability.py",
    "test_sweeps.py",
    "test_diffusion.py",
    "test_srgan.py",
    "test_train_loop.py",
    "test_cli.py",
    "test_evaluation.py",
    "test_synthetic.py",
    "test_benchmarking.py",
    "test_checkpoint.py",
)


def _longest_files_first(items: list) -> list:
  """`items` file by file: `_LONGEST_FILES` first, then the other files by their number of tests, most first. The
  workers take whole files in this order (`--dist loadscope --no-loadscope-reorder`), so that what is left for the
  end is short and they finish together. (xdist's own order, by number of tests alone, left the one-item sharding
  process for last, where it ran alone for its 97 s.)"""
  counts = collections.Counter(item.path.name for item in items)
  rank = lambda name: _LONGEST_FILES.index(name) if name in _LONGEST_FILES else len(_LONGEST_FILES)
  return sorted(items, key=lambda item: (rank(item.path.name), -counts[item.path.name], item.path.name))


class ShardedTests(pytest.Item):
  """The selected sharding tests, run by one pytest process started with 8 simulated CPU devices."""

  def __init__(self, *, tests, **kwargs):
    super().__init__(**kwargs)
    self.node_ids = [test.nodeid for test in tests]

  def runtest(self):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *self.node_ids]
    env = {**os.environ, _ON_SIMULATED_MESH: "1", "XLA_FLAGS": TEST_XLA_FLAGS}
    result = subprocess.run(command, cwd=str(self.config.rootpath), capture_output=True, text=True, env=env)
    self.add_report_section("call", "stdout", result.stdout)
    if result.returncode != 0:
      raise ShardedTestsFailed(result.stdout + result.stderr)

  def repr_failure(self, excinfo):
    if isinstance(excinfo.value, ShardedTestsFailed):
      return f"The sharding tests failed on 8 simulated devices:\n{excinfo.value}"
    return super().repr_failure(excinfo)

  def reportinfo(self):
    return self.path, None, f"{self.name} ({len(self.node_ids)} tests)"


class ShardedTestsFailed(Exception):
  """The output of the sharding tests' pytest process, which failed."""


@pytest.fixture(scope="session", autouse=True)
def _each_experiment_built_once_per_process():
  """`experiment.build` memoised in each test process by everything it reads: the config (its JSON), the spec, the
  devices and `generated_data`. The tests build the same tiny configs again and again (every tiny run of the loop,
  every `runs.load` of a shared run), and each fresh build traces and lowers its programs again. A build is a pure
  function of those inputs and of the family's trainer factory (a key too, since a test may replace it), with one
  exception left unmemoised: generated-data mixing reads the generator's run from disk. Each build gets a copy of
  the config, so that a test that changes its config afterwards changes no other test's experiment."""
  from genjax import experiment
  from genjax import trainers

  build, built = experiment.build, {}

  def build_once(config, spec, devices=None, generated_data=True):
    if generated_data and config.data.synthetic.workdir:
      return build(config, spec, devices, generated_data)
    device_ids = None if devices is None else tuple(device.id for device in devices)
    key = (config.to_json(), repr(spec), device_ids, generated_data, trainers.FAMILIES.get(config.family))
    if key not in built:
      built[key] = build(copy.deepcopy(config), spec, devices, generated_data)
    return built[key]

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(experiment, "build", build_once)
    yield


@pytest.fixture(autouse=True)
def _marks_of_the_running_test(request):
  token = _current_marks.set(frozenset(mark.name for mark in request.node.iter_markers()))
  yield
  _current_marks.reset(token)
