r"""Trains any genjax experiment from an ml_collections config file.

  python experiments/train.py --config=configs/vae.py:runlocal --workdir=/tmp/genjax/vae_local
  python experiments/train.py --config=configs/vae.py --workdir=DIR --config.train.total_steps=50000

Rerunning with the same --workdir resumes from its latest checkpoint. Problems the user can fix are reported as a
one-paragraph message with exit status 1. Compiled programs are kept in --compilation_cache_dir (default
~/.cache/genjax/jax_compilation_cache), so a rerun starts without recompiling.
"""

from absl import flags
from ml_collections import config_flags

from genjax import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/vae.py:runlocal.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flags_as_required(["config", "workdir"])


def main():
  # Imported here so that flag errors are reported before JAX and TFDS spend seconds importing.
  from genjax import checkpoint
  from genjax import sharding
  from genjax import train_loop

  checkpoint.quiet_orbax_logging()
  sharding.initialize_distributed(_CONFIG.value.distributed)
  train_loop.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_with_config_file(main)
