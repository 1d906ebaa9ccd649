"""Specification of genjax.benchmarking and experiments/benchmark.py (their output, not any speed)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import MNIST_SPEC, REPO_ROOT, tiny_config
from genjax import benchmarking


@pytest.mark.parametrize("name", ["vae", "wgan_gp"])
def test_time_train_step_reports_the_benchmark_fields(name, devices):
  result = benchmarking.time_train_step(tiny_config(name), MNIST_SPEC, num_steps=2, devices=devices)
  assert result["batch_size"] == 16 and result["devices"] == 8
  assert result["compile_s"] > 0 and result["step_ms"] > 0
  assert result["images_per_sec"] > 0
  n_critic = 5 if name == "wgan_gp" else 1
  assert result["real_images_per_sec"] == pytest.approx(n_critic * result["images_per_sec"], rel=0.01)


def test_benchmark_cli_prints_one_json_object():
  command = [
      sys.executable,
      "experiments/benchmark.py",
      "--config=configs/gan.py:runlocal",
      "--steps=2",
      "--config.train.batch_size=8",
      "--config.model.g_channels=(8, 4)",
      "--config.model.d_channels=(4, 8)",
  ]
  env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  output = json.loads(result.stdout.strip().splitlines()[-1])
  assert {"images_per_sec", "step_ms", "compile_s"} <= set(output)
