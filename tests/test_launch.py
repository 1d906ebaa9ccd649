"""Specification of launch/ and of multi-host start-up: each launcher's commands (dry runs), and what a process that
srun started takes from srun's variables."""

import os
import shlex
import subprocess

import jax
import ml_collections
import pytest

from conftest import REPO_ROOT
from genjax import config_lib
from genjax import sharding

TRAIN_FLAGS = ["--config=configs/wgan_gp.py:cifar10", "--workdir=gs://bucket/run one"]


def _dry_run(script, *arguments, env=None):
  result = subprocess.run(
      ["bash", os.path.join(REPO_ROOT, "launch", script), "--dry-run", *arguments],
      capture_output=True,
      text=True,
      env={**os.environ, **(env or {})},
      timeout=60,
  )
  assert result.returncode == 0, result.stderr
  # Each line, as the shell would split it (the scripts print their commands quoted).
  return [shlex.split(line) for line in result.stdout.splitlines()]


@pytest.mark.cli
def test_tpu_vm_creates_copies_installs_and_trains_on_every_worker():
  create, archive, copy, install, train = _dry_run(
      "tpu_vm.sh", "genjax-v5e", "europe-west4-b", "v5litepod-16", "--", *TRAIN_FLAGS
  )
  assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "genjax-v5e"]
  assert {"--zone=europe-west4-b", "--accelerator-type=v5litepod-16"} <= set(create)
  assert "git ls-files -co --exclude-standard | tar" in archive[-1]
  assert copy[4] == "scp" and "--worker=all" in copy
  assert install[4] == "ssh" and "--worker=all" in install
  assert all(package in install[-1] for package in ("'jax[tpu]==0.10.2'", "gcsfs", "google-cloud-storage"))
  assert train[4] == "ssh" and "--worker=all" in train
  command = train[-1].removeprefix("--command=")
  assert "GENJAX_DISTRIBUTED=1 .venv/bin/python experiments/train.py" in command
  assert shlex.split(command.split("experiments/train.py", 1)[1]) == TRAIN_FLAGS  # Quoted, spaces and all.


@pytest.mark.cli
def test_tpu_vm_sweep_runs_a_sweep_worker_outside_any_distributed_run():
  *_, work = _dry_run("tpu_vm.sh", "--sweep", "sweep-0", "us-central2-b", "v4-8", "--", "--config=configs/toy2d.py")
  command = shlex.split(work[-1].removeprefix("--command="))
  assert command == [
      "cd",
      "genjax",
      "&&",
      "GENJAX_DISTRIBUTED=0",
      ".venv/bin/python",
      "experiments/sweep.py",
      "run",
      "--config=configs/toy2d.py",
  ]


@pytest.mark.cli
def test_xpk_creates_one_workload_that_installs_and_trains():
  (create,) = _dry_run("xpk.sh", "my-cluster", "wgan", "v5litepod-16", "2", "--", *TRAIN_FLAGS, env={"PROJECT": "p1"})
  assert create[:3] == ["xpk", "workload", "create"]
  expected = {"--cluster=my-cluster", "--workload=wgan", "--tpu-type=v5litepod-16", "--num-slices=2", "--project=p1"}
  assert expected | {f"--script-dir={REPO_ROOT}"} <= set(create)
  command = create[-1].removeprefix("--command=")
  assert "&& GENJAX_DISTRIBUTED=1 python experiments/train.py" in command
  assert shlex.split(command.split("experiments/train.py", 1)[1]) == TRAIN_FLAGS


@pytest.mark.cli
@pytest.mark.parametrize(
    "script, expected",
    [
        ("slurm.sbatch", "srun --kill-on-bad-exit=1 env GENJAX_DISTRIBUTED=1 .venv/bin/python experiments/train.py"),
        ("slurm_sweep.sbatch", ".venv/bin/python experiments/sweep.py run --workers=1"),
    ],
)
def test_slurm_scripts_start_genjax_with_the_given_flags(script, expected):
  (command,) = _dry_run(script, *TRAIN_FLAGS)
  assert command == [*expected.split(), *TRAIN_FLAGS]


@pytest.mark.cli
@pytest.mark.parametrize(
    "script, arguments",
    [
        ("tpu_vm.sh", []),
        ("tpu_vm.sh", ["only-a-name"]),
        ("xpk.sh", []),
        ("slurm.sbatch", []),
        ("slurm.sbatch", ["--dry-run"]),
        ("slurm_sweep.sbatch", []),
    ],
)
def test_launchers_print_their_usage_and_only_it_when_called_without_their_arguments(script, arguments):
  result = subprocess.run(
      ["bash", os.path.join(REPO_ROOT, "launch", script), *arguments], capture_output=True, text=True, timeout=60
  )
  assert result.returncode == 2, result.stderr
  usage = result.stdout
  assert "Usage" in usage and f"launch/{script}" in usage
  # The script's header comment, without its comment marks, #SBATCH lines or any line of code after it.
  assert not any(line.startswith(("#", "set ", "dry_run", "if ")) for line in usage.splitlines()), usage
  assert usage.rstrip().splitlines()[-1] in open(os.path.join(REPO_ROOT, "launch", script)).read()


_SRUN = {
    "SLURM_JOB_ID": "1234",
    "SLURM_STEP_ID": "3",
    "SLURM_STEP_NODELIST": "gpu[007-009,012]",
    "SLURM_NTASKS": "16",
    "SLURM_PROCID": "9",
    "SLURM_LOCALID": "1",
}


@pytest.mark.parametrize(
    "extra, local_device_ids",
    [
        ({}, None),  # No GPUs: JAX uses what it finds (CPUs, TPUs).
        ({"SLURM_NTASKS_PER_NODE": "8", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}, [1]),  # 8 tasks share 8 GPUs.
        ({"SLURM_NTASKS_PER_NODE": "8", "CUDA_VISIBLE_DEVICES": "5"}, [0]),  # --gpus-per-task=1: one visible.
        ({"SLURM_NTASKS_PER_NODE": "1", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}, [0, 1, 2, 3]),  # One process per node.
        ({"SLURM_STEP_TASKS_PER_NODE": "4(x4)", "SLURM_GPUS_ON_NODE": "8"}, [0, 1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_srun_variables_give_coordinator_process_and_local_devices(extra, local_device_ids):
  arguments = sharding.slurm_arguments({**_SRUN, **extra})
  assert arguments["coordinator_address"] == f"gpu007:{49152 + (1234 * 64 + 3) % 16384}"
  assert (arguments["num_processes"], arguments["process_id"]) == (16, 9)
  assert arguments["local_device_ids"] == local_device_ids


def test_each_job_step_has_its_own_coordinator_port_unless_one_is_given():
  ports = {sharding.slurm_arguments({**_SRUN, "SLURM_STEP_ID": step})["coordinator_address"] for step in "012"}
  assert len(ports) == 3
  given = sharding.slurm_arguments({**_SRUN, "JAX_COORDINATOR_PORT": "5555", "SLURM_STEP_NODELIST": "node1,node2"})
  assert given["coordinator_address"] == "node1:5555"


def test_config_flags_join_a_run_outside_slurm_and_win_over_srun_variables(monkeypatch):
  joined = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **arguments: joined.append(arguments))
  config = ml_collections.ConfigDict()
  config_lib.mesh_and_distributed(config)
  config.distributed.update(initialize=True, coordinator_address="host0:1234", num_processes=2, process_id=1)
  sharding.initialize_distributed(config.distributed, environ={})
  sharding.initialize_distributed(config.distributed, environ=dict(_SRUN))
  given = dict(coordinator_address="host0:1234", num_processes=2, process_id=1)
  assert joined == [given, {**given, "local_device_ids": None}]


def test_the_coordinator_is_exempted_from_proxies():
  environ = {"http_proxy": "http://proxy:3128", "no_proxy": "localhost"}
  sharding._bypass_proxies("gpu007", environ)
  assert environ["no_proxy"] == "localhost,gpu007" and environ["no_grpc_proxy"] == "gpu007"
