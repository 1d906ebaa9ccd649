"""The trained tiny runs that tests share, as session fixtures: each is trained once per test session, through the
loop as a user's run is, on data the project ships. A family adds its tiny run here and its name to RUN_FIXTURES
(the tests that use one are integration tests, see conftest.py)."""

import pytest

from conftest import tiny_config
from genjax.data import catalog

RUN_FIXTURES = ("tiny_runs",)


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
