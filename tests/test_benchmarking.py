"""Specification of genjax.benchmarking and experiments/benchmark.py (their output, not any speed)."""

import json

import pytest

from conftest import MNIST_SPEC, run_command, tiny_config
from genjax import benchmarking


@pytest.mark.parametrize("name", ["vae", "wgan_gp"])
def test_time_train_step_reports_the_benchmark_fields(name, devices):
  result = benchmarking.time_train_step(tiny_config(name), MNIST_SPEC, num_steps=2, devices=devices)
  assert result["batch_size"] == 16 and result["devices"] == 8
  assert result["compile_s"] > 0 and result["step_ms"] > 0
  assert result["images_per_sec"] > 0
  n_critic = 5 if name == "wgan_gp" else 1
  assert result["real_images_per_sec"] == pytest.approx(n_critic * result["images_per_sec"], rel=0.01)


def test_end_to_end_mode_times_the_loop_the_step_and_the_input_path(digits):
  result = benchmarking.end_to_end(tiny_config("gan", train__batch_size=8), digits, num_steps=2)
  for field in ("input_images_per_sec", "step_images_per_sec", "end_to_end_images_per_sec", "peak_host_rss_mib"):
    assert result[field] > 0, field
  assert result["end_to_end_over_step"] == pytest.approx(
      result["end_to_end_images_per_sec"] / result["step_images_per_sec"], rel=0.01
  )
  assert result["input_path"] == "on device" and result["dtype"] == "float32" and result["device"]


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
  output = json.loads(result.stdout.strip().splitlines()[-1])
  assert {"images_per_sec", "step_ms", "compile_s"} <= set(output)
