"""Shared fixtures: eight simulated CPU devices, the bundled dataset prepared once, tiny configs, one compilation
cache for the session, and the entry points run as users run them.

XLA_FLAGS must be set before JAX initialises its backend, which is why it is set at import time here.
"""

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from genjax import cli  # noqa: E402
from genjax import config_lib  # noqa: E402
from genjax.data import catalog  # noqa: E402
from genjax.data import mnist5k  # noqa: E402
from genjax.data import pipeline  # noqa: E402
from genjax.data import preprocess  # noqa: E402
from genjax.data import sources  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tests compile the same tiny programs many times over (every run of the loop builds its own jitted functions);
# JAX's persistent cache, in a directory of this session's, compiles each once, in this process and in the
# entry points that tests start.
COMPILATION_CACHE = tempfile.mkdtemp(prefix="genjax-tests-jax-cache-")
atexit.register(shutil.rmtree, COMPILATION_CACHE, ignore_errors=True)
cli.enable_compilation_cache(COMPILATION_CACHE)


def run_command(script: str, *arguments: str) -> subprocess.CompletedProcess:
  """Runs `python experiments/<script> ARGUMENTS` from the repository root on one CPU device, as a user would."""
  command = [sys.executable, f"experiments/{script}", *arguments, f"--compilation_cache_dir={COMPILATION_CACHE}"]
  env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
  return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)


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
  elif config.family == "classifier":
    config.model.channels = (4, 8)
    config.model.feature_size = 8
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


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory):
  """A TFDS data_dir in which mnist5k has been prepared (array_record), shared by the whole session."""
  data_dir = str(tmp_path_factory.mktemp("tensorflow_datasets"))
  catalog.open_split("mnist5k", "train", data_dir, download=False)
  return data_dir


@pytest.fixture(scope="session")
def tiny_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of tiny runs trained on mnist5k (4 steps): a VAE, an autoencoder, a class-conditional DCGAN and a
  classifier (a feature network for evaluation)."""
  from genjax import train_loop

  workdirs = {}
  for name, config in [
      ("vae", tiny_config("vae")),
      ("ae", tiny_config("ae")),
      ("cgan", tiny_config("gan", model__num_classes=10, eval__grids__num_images=20)),
      ("classifier", tiny_config("classifier")),
  ]:
    config.data.data_dir = tfds_data_dir
    workdirs[name] = str(tmp_path_factory.mktemp(name))
    train_loop.run(config, workdirs[name])
  return workdirs


@pytest.fixture(scope="session")
def translation_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of tiny translation runs on the offline known-map tasks (4 steps): pix2pix on grey -> colour
  photographs and CycleGAN on the thickened digits."""
  from genjax import train_loop

  workdirs = {}
  for name in ("pix2pix", "cyclegan"):
    config = tiny_config(name, eval__translation__crop_size=64)
    config.data.data_dir = tfds_data_dir
    workdirs[name] = str(tmp_path_factory.mktemp(name))
    train_loop.run(config, workdirs[name])
  return workdirs


@pytest.fixture
def devices():
  assert jax.device_count() == 8, "tests expect 8 simulated CPU devices (XLA_FLAGS set in conftest.py)"
  return jax.devices()
