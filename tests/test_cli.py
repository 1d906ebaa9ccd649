"""Specification of experiments/train.py as users run it: the files a run writes, resuming, and bad input.

Each test starts the real command in a subprocess on the bundled mnist5k (prepared once per session).
"""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from conftest import run_command, tiny_config
from genjax import errors
from genjax import train_loop


def _train(workdir, *overrides, config="configs/vae.py:runlocal", data_dir=None):
  data_dir_override = [f"--config.data.data_dir={data_dir}"] if data_dir else []
  return run_command("train.py", f"--config={config}", f"--workdir={workdir}", *overrides, *data_dir_override)


_SHORT = [
    "--config.train.total_steps=4",
    "--config.train.log_every_steps=2",
    "--config.eval.every_steps=4",
    "--config.ckpt.every_steps=2",
]


def _metric_lines(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _assert_only_genjax_speaks(stderr):
  """Every log line comes from genjax's modules or the entry point: no TPU probe, no TFDS or TensorFlow narration,
  no OpenCV advice, no progress bars' carriage returns and escapes in what is not a terminal."""
  from conftest import REPO_ROOT

  ours = {name for _, _, names in os.walk(os.path.join(REPO_ROOT, "genjax")) for name in names} | {"train.py"}
  speakers = set(re.findall(r"^[IWEF]\d{4} [\d:.]+ +\d+ ([^:\s]+):\d+\]", stderr, re.M))
  assert speakers <= ours, stderr
  assert not re.search(r"\x1b\[|\r|OpenCV|libtpu|absl::InitializeLog|oneDNN|Unknown size", stderr), stderr


@pytest.mark.cli
def test_runlocal_trains_writes_the_run_files_and_resumes(tmp_path, tfds_data_dir):
  workdir = str(tmp_path / "vae")
  first = _train(workdir, *_SHORT, data_dir=tfds_data_dir)
  assert first.returncode == 0, first.stderr
  assert "step 4/4 | loss" in first.stderr and "steps/s | ETA" in first.stderr
  _assert_only_genjax_speaks(first.stderr)

  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["total_steps"] == 4
  lines = _metric_lines(workdir)
  assert [(m["step"], m["split"]) for m in lines] == [(2, "train"), (4, "train"), (4, "eval")]
  assert {"loss", "neg_elbo_nats", "neg_elbo_bits_per_dim"} <= set(lines[-1])
  assert all(np.isfinite(m["loss"]) for m in lines)
  for name in ("samples", "reconstructions"):
    image = np.asarray(Image.open(os.path.join(workdir, "samples", f"{name}_00000004.png")))
    assert image.dtype == np.uint8 and image.shape[0] > 28 and image.std() > 0
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]

  longer = _train(workdir, *_SHORT[1:], "--config.train.total_steps=6", data_dir=tfds_data_dir)
  assert longer.returncode == 0, longer.stderr
  assert "Resumed from the checkpoint at step 4" in longer.stderr
  assert [(m["step"], m["split"]) for m in _metric_lines(workdir)[3:]] == [(6, "train"), (6, "eval")]


@pytest.mark.cli
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--config.train.total_stepz=5"], 'total_stepz.*Did you mean "total_steps"'),
        (["--config.train.total_steps=many"], "flag --config.train.total_steps=many: invalid literal"),
        (["--config.data.name=mnistt"], "Unknown dataset 'mnistt'.*Bundled with genjax \\(offline\\): mnist5k"),
    ],
)
def test_bad_input_exits_with_one_clear_message(overrides, message, tmp_path, tfds_data_dir):
  """Flag errors, and one user error found after JAX has started; every other refusal is tested in-process (a
  `UserError` becomes this exit and this line in one place: see test_reliability)."""
  result = _train(str(tmp_path / "run"), *overrides, data_dir=tfds_data_dir)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith("genjax: error: ")
  assert re.search(message, last_line), last_line


def test_unwritable_workdir_is_refused(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(errors.UserError, match=re.escape(f"Cannot write to the workdir '{blocker / 'run'}'")):
    train_loop.run(tiny_config("vae"), str(blocker / "run"))


@pytest.mark.cli
def test_unknown_config_argument_is_refused(tmp_path):
  result = _train(str(tmp_path), config="configs/vae.py:runlocl")
  assert result.returncode == 1
  assert "Unknown config argument 'runlocl'" in result.stderr and "accepts: runlocal" in result.stderr


def test_every_command_the_readme_runs_is_python_or_installed_by_the_requirements():
  from conftest import REPO_ROOT

  with open(os.path.join(REPO_ROOT, "README.md")) as f:
    blocks = re.findall(r"```bash\n(.*?)```", f.read(), re.S)
  commands = {line.split()[0] for block in blocks for line in block.splitlines() if line and line[0].isalpha()}
  with open(os.path.join(REPO_ROOT, "requirements.txt")) as f:
    pinned = {line.split("==")[0] for line in f if "==" in line}
  assert "tensorboard" in commands and commands - {"python", "python3", "pip"} <= pinned
