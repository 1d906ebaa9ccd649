r"""Times training of any config at that config's batch size and prints one JSON object, last, on stdout.

  python experiments/benchmark.py --config=configs/gan.py --steps=20
  python experiments/benchmark.py --config=configs/vae.py:runlocal --mode=end_to_end --steps=200
  python experiments/benchmark.py --config=configs/wgan_gp.py:cifar10 --config.model.dtype=bfloat16
  python experiments/benchmark.py --config=configs/ddpm.py:cifar10 --mode=sample --steps=2 \
    --config.diffusion.sampling.sampler=ddim --config.diffusion.sampling.steps=10

--mode=step (the default) times the jitted train step alone on a synthetic batch: no dataset needs to be prepared
(the example spec comes from the dataset's metadata); warm-up is excluded from `step_ms` and `images_per_sec`, and
compilation is reported as `compile_s`. --mode=end_to_end times --steps steps of the real training loop on the real
data (after as many warm-up steps), beside the step alone and the input path alone: `end_to_end_images_per_sec`,
`step_images_per_sec`, `input_images_per_sec` (examples consumed per second), their ratio `end_to_end_over_step`,
the input path, peak host memory, device and dtype. `steps` counts the timed steps and `warmup_steps` those before.
--mode=sample times the model's sampler drawing one batch (config.train.batch_size examples) from a fresh state, as
sample.py draws: `sample_ms` per draw (a diffusion model's whole chain, its sampler and steps reported beside).

The console (stderr) says what is being done meanwhile; the JSON object comes after everything else, indented, and
is all that stdout holds (`python experiments/benchmark.py ... > result.json` keeps it).
"""

import json
import sys

from absl import flags
from ml_collections import config_flags

from genjax import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/gan.py.")
_STEPS = flags.DEFINE_integer(
    "steps", 20, "Timed steps (after two warm-up steps, or as many for end_to_end); for sample, timed draws."
)
_MODE = flags.DEFINE_enum("mode", "step", ["step", "end_to_end", "sample"], "What to time.")
flags.mark_flags_as_required(["config"])


def main():
  from genjax import benchmarking
  from genjax import checkpoint
  from genjax.data import sources

  checkpoint.quiet_orbax_logging()
  config = _CONFIG.value
  if _MODE.value == "step":
    result = benchmarking.time_train_step(config, sources.example_spec(config.data), _STEPS.value)
  elif _MODE.value == "sample":
    result = benchmarking.time_sampling(config, sources.example_spec(config.data), _STEPS.value)
  else:
    result = benchmarking.end_to_end(config, sources.open_source(config.data, config.seed), _STEPS.value)
  sys.stderr.flush()  # Log lines first: the result is the last thing a terminal shows.
  print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
  cli.run_with_config_file(main)
