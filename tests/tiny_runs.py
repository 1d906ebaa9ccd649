"""The trained tiny runs that tests share, as session fixtures: each is trained once per test session (by the first
pytest worker that needs it; the others wait for it and read it), through the loop as a user's run is, on data the
project ships. A family adds its tiny run here and its name to RUN_FIXTURES (the tests that use one are integration
tests, see conftest.py)."""

import os
import pathlib
import shutil
from collections.abc import Callable

import filelock
import pytest

from conftest import load_config, tiny_config
from genjax.data import catalog

RUN_FIXTURES = ("tiny_runs", "restoration_runs", "srgan_runs", "translation_runs", "diffusion_runs", "stylegan_run")


def made_once(tmp_path_factory, name: str, make: Callable[[pathlib.Path], None]) -> pathlib.Path:
  """The directory `name` that `make(directory)` filled, shared by every pytest worker of this session: the first
  worker to ask makes it under a file lock, the others wait and read it."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # Each worker's base is a subdirectory of the session's.
  directory = root / name
  with filelock.FileLock(f"{directory}.lock"):
    if not (directory / ".made").exists():
      shutil.rmtree(directory, ignore_errors=True)  # Left by a worker whose `make` failed.
      directory.mkdir()
      make(directory)
      (directory / ".made").touch()
  return directory


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory):
  """A TFDS data_dir in which mnist5k has been prepared (array_record), shared by the whole session."""
  prepare = lambda data_dir: catalog.open_split("mnist5k", "train", str(data_dir), download=False)
  return str(made_once(tmp_path_factory, "tensorflow_datasets", prepare))


def _train_each(configs: dict, data_dir: str) -> Callable[[pathlib.Path], None]:
  """Trains each of `configs` on mnist5k (or the data it names) in its own workdir under a directory."""

  def train(directory: pathlib.Path) -> None:
    from genjax import train_loop

    for name, config in configs.items():
      config.data.data_dir = data_dir
      train_loop.run(config, str(directory / name))

  return train


@pytest.fixture(scope="session")
def tiny_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of tiny runs trained on mnist5k (4 steps): a VAE, an autoencoder, a class-conditional DCGAN and a
  classifier (a feature network for evaluation)."""
  configs = {
      "vae": tiny_config("vae"),
      "ae": tiny_config("ae"),
      "cgan": tiny_config("gan", model__num_classes=10, eval__grids__num_images=20),
      "classifier": tiny_config("classifier"),
  }
  directory = made_once(tmp_path_factory, "tiny_runs", _train_each(configs, tfds_data_dir))
  return {name: str(directory / name) for name in configs}


def _tiny_restoration_config(name: str, arg: str = "runlocal"):
  """configs/<name>.py:<arg> shrunk to a 4-step run of a network a few channels wide."""
  config = load_config(name, arg)
  config.train.batch_size = 8
  config.train.total_steps = 4
  config.train.log_every_steps = 2
  config.eval.every_steps = 4
  config.eval.restoration.baselines = False
  config.ckpt.every_steps = 4
  config.optim.warmup_steps = 0
  if config.task == "denoise":
    config.model.depth, config.model.features = 3, 4
  elif config.task == "super_resolution":
    config.model.features, config.model.num_blocks = 4, 1
    if "d_features" in config.model:
      config.model.d_features = 2
  else:
    config.model.channels = (4, 8)
  return config


@pytest.fixture(scope="session")
def restoration_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of tiny denoising, super-resolution and inpainting runs on the bundled photographs."""
  configs = {task: _tiny_restoration_config(task) for task in ("denoise", "super_resolution", "inpaint")}
  directory = made_once(tmp_path_factory, "restoration_runs", _train_each(configs, tfds_data_dir))
  return {task: str(directory / task) for task in configs}


@pytest.fixture(scope="session")
def srgan_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of configs/srgan.py's two tiny stages on the bundled photographs (x4, 4 steps each): a network
  trained on pixels alone, then the adversarial run started from it (`config.init_from`)."""

  def train(directory: pathlib.Path) -> None:
    pixels, adversarial = (_tiny_restoration_config("srgan", arg) for arg in ("runlocal,psnr", "runlocal"))
    pixels.evals = adversarial.evals = ()  # The test scores the adversarial run itself.
    adversarial.init_from = str(directory / "pixels")
    _train_each({"pixels": pixels, "adversarial": adversarial}, tfds_data_dir)(directory)

  directory = made_once(tmp_path_factory, "srgan_runs", train)
  return {name: str(directory / name) for name in ("pixels", "adversarial")}


@pytest.fixture(scope="session")
def translation_runs(tfds_data_dir, tmp_path_factory):
  """Workdirs of tiny translation runs on the offline known-map tasks (4 steps): pix2pix on grey -> colour
  photographs and CycleGAN on the thickened digits."""
  configs = {name: tiny_config(name, eval__translation__crop_size=64) for name in ("pix2pix", "cyclegan")}
  directory = made_once(tmp_path_factory, "translation_runs", _train_each(configs, tfds_data_dir))
  return {name: str(directory / name) for name in configs}


@pytest.fixture(scope="session")
def diffusion_runs(tfds_data_dir, tmp_path_factory):
  """The workdir of a tiny DDPM run on mnist5k (4 steps, T = 50, DDIM in 3 steps), checkpointed at steps 2 and 4,
  evaluated by its grids alone (the eval split's loss is the same U-Net pass as training, over 1,000 images)."""
  configs = {"ddpm": tiny_config("ddpm", evals=("grids",))}
  directory = made_once(tmp_path_factory, "diffusion_runs", _train_each(configs, tfds_data_dir))
  return {name: str(directory / name) for name in configs}


@pytest.fixture(scope="session")
def stylegan_run(tfds_data_dir, tmp_path_factory):
  """The workdir of a tiny StyleGAN2 run on mnist5k (4 steps, a few channels, 28x28 digits on a 32x32 canvas) with
  ADA, lazy R1 and path length every 2 steps (the lax.cond of lazy schedules costs little for networks this small)
  and ADA's p adjusted every 2 steps (fast enough to move), logging every step. It trains without evaluating: the
  tests that score it run the evaluators themselves."""
  config = tiny_config(
      "stylegan2",
      evals=(),
      stylegan__r1_every=2,
      stylegan__pl_weight=2.0,
      stylegan__pl_every=2,
      stylegan__ada_every=2,
      stylegan__ada_speed_images=128.0,
      train__log_every_steps=1,
  )
  directory = made_once(tmp_path_factory, "stylegan_run", _train_each({"stylegan2": config}, tfds_data_dir))
  return str(directory / "stylegan2")
