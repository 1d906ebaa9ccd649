"""Specification of genjax.benchmarking and experiments/benchmark.py (their output, not any speed)."""

import json
import re
import subprocess
import sys

import pytest
from absl import logging

from conftest import MNIST_SPEC, REPO_ROOT, run_command, tiny_config
from genjax import benchmarking
from genjax import errors


@pytest.mark.parametrize("name", ["vae", "wgan_gp"])
def test_time_train_step_reports_the_benchmark_fields(name):
  result = benchmarking.time_train_step(tiny_config(name), MNIST_SPEC, num_steps=2)
  assert result["batch_size"] == 16 and result["devices"] == 1
  assert (result["steps"], result["warmup_steps"]) == (2, benchmarking.WARMUP_STEPS)
  assert result["compile_s"] > 0 and result["step_ms"] > 0
  assert result["images_per_sec"] > 0
  n_critic = 5 if name == "wgan_gp" else 1
  assert result["real_images_per_sec"] == pytest.approx(n_critic * result["images_per_sec"], rel=0.01)


def test_sample_mode_times_draws_of_one_batch_and_refuses_a_model_without_a_sampler():
  result = benchmarking.time_sampling(tiny_config("gan", train__batch_size=8), MNIST_SPEC, num_calls=2)
  assert (result["batch_size"], result["calls"], result["warmup_calls"]) == (8, 2, benchmarking.WARMUP_STEPS)
  assert result["sample_ms"] > 0 and result["compile_s"] > 0 and result["images_per_sec"] > 0
  with pytest.raises(errors.UserError, match="a classifier model does not sample"):
    benchmarking.time_sampling(tiny_config("classifier"), MNIST_SPEC, num_calls=1)


def test_end_to_end_mode_times_the_loop_the_step_and_the_input_path_and_says_which_steps_warm_up(digits, monkeypatch):
  console_lines = []
  monkeypatch.setattr(logging, "info", lambda message, *args: console_lines.append(str(message) % args))
  result = benchmarking.end_to_end(tiny_config("gan", train__batch_size=8), digits, num_steps=2)
  assert (result["steps"], result["warmup_steps"]) == (2, 2)
  rates = [key for key in result if key.endswith("_per_sec")]
  assert rates == ["end_to_end_images_per_sec", "step_images_per_sec", "input_images_per_sec"]  # End to end first.
  assert "3/3: the training loop: steps 1-2 warm up (compilation, first reads), steps 3-4 are timed." in console_lines
  assert any(re.fullmatch(r"Warmed up: 2 steps in \d+\.\d s; timing 2 steps\.", line) for line in console_lines)
  assert any(re.fullmatch(r"Timed 2 steps in \d+\.\d s\.", line) for line in console_lines)
  assert not any(line.startswith("step ") for line in console_lines)  # No "step 4/4" for a 2-step benchmark.
  for field in ("input_images_per_sec", "step_images_per_sec", "end_to_end_images_per_sec", "peak_host_rss_mib"):
    assert result[field] > 0, field
  assert result["end_to_end_over_step"] == pytest.approx(
      result["end_to_end_images_per_sec"] / result["step_images_per_sec"], rel=0.01
  )
  assert result["input_path"] == "on device" and result["dtype"] == "float32" and result["device"]


@pytest.mark.cli
def test_benchmark_cli_prints_one_json_object():
  result = run_command(
      "benchmark.py",
      "--config=configs/gan.py:runlocal",
      "--steps=2",
      "--config.train.batch_size=8",
      "--config.model.g_channels=(8, 4)",
      "--config.model.d_channels=(4, 8)",
  )
  assert result.returncode == 0, result.stderr
  output = json.loads(result.stdout)  # The result is all that stdout holds.
  assert {"images_per_sec", "step_ms", "compile_s"} <= set(output)
  assert (output["steps"], output["warmup_steps"]) == (2, 2)
  assert "Compiling the train step" in result.stderr and "Timing 2 steps" in result.stderr


@pytest.mark.cli
@pytest.mark.parametrize(
    "script", ["benchmark_torch_dcgan.py", "benchmark_torch_wgan_gp.py", "benchmark_torch_translation.py"]
)
def test_torch_benchmarks_without_torch_say_to_install_it(script):
  # torch made unimportable, as where it is not installed, whether or not it is installed here.
  without_torch = (
      "import runpy, sys; sys.modules['torch'] = None; "
      f"sys.argv = ['{script}', '--steps=2']; runpy.run_path('experiments/{script}', run_name='__main__')"
  )
  command = [sys.executable, "-c", without_torch]
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
  assert result.returncode != 0 and result.stdout == ""
  assert result.stderr.strip().splitlines() == [
      f"genjax: error: {script} compares genjax with PyTorch, which requirements.txt leaves out: install it first "
      "(pip install torch, or the build for your accelerator from https://pytorch.org)."
  ]
