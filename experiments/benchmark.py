r"""Times the jitted train step of any config at that config's batch size and prints one JSON object.

  python experiments/benchmark.py --config=configs/gan.py --steps=20
  python experiments/benchmark.py --config=configs/vae.py:runlocal --steps=50 --config.train.batch_size=256

Warm-up is excluded from `step_ms` and `images_per_sec`; compilation is reported separately as `compile_s`. The
batches are synthetic, so no dataset needs to be prepared; the example spec comes from the dataset's metadata.
"""

import json
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from genjax import errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/gan.py.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps, after two warm-up steps.")
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  from genjax import benchmarking
  from genjax.data import sources

  config = _CONFIG.value
  try:
    result = benchmarking.time_train_step(config, sources.example_spec(config.data), _STEPS.value)
  except errors.UserError as e:
    sys.exit(f"genjax: error: {e}")
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
