r"""Scores every test image of a trained run for abnormality and says how well the scores find the anomalies.

  python experiments/anomaly.py --workdir=/tmp/genjax/ae_without_3
  python experiments/anomaly.py --workdir=/tmp/genjax/vae_without_3 --iwae_samples=1000
  python experiments/anomaly.py --workdir=/tmp/genjax/vae_local --config.data.exclude_classes="(3,)"

The anomalies are the eval images of the classes in the run's config.data.exclude_classes, those left out of its
training (the one-class protocol; override it to ask about other classes). Scores follow what the model offers
(see genjax/evaluators/anomaly.py): reconstruction error (AE, VAE), negative ELBO and importance-weighted bound
(VAE), minus the critic's logit (unconditional GAN).

Writes under --out_dir (default WORKDIR/anomaly/<step>/):
  metrics.json, summary.md       AUROC and AUPRC of each score
  scores.npz                     per test image, in the split's order: each score, "label" and "is_anomaly"
  anomaly_histogram_<score>.png  the scores of normal and of anomalous images
  anomaly_top_<score>.png        the --num_images test images that score highest, highest first
`--config.x.y=v` overrides the run's saved config.
"""

import os

from absl import flags

from genjax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where to write (default: WORKDIR/anomaly/<step>).")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 64, "Most anomalous images shown per score.", lower_bound=1)
_IWAE_SAMPLES = flags.DEFINE_integer(
    "iwae_samples", 100, "Importance samples of the VAE's bound (the iwae score).", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 200, "Global batch of scoring.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the likelihood bounds' draws.", lower_bound=0)
flags.mark_flags_as_required(["workdir"])


def main(overrides: list[str]) -> None:
  import numpy as np
  from etils import epath

  from genjax import checkpoint
  from genjax import evaluators
  from genjax import pixels
  from genjax import runs
  from genjax.evaluators import report

  checkpoint.quiet_orbax_logging()
  flag_overrides = [
      f"--config.eval.anomaly.num_images={_NUM_IMAGES.value}",
      f"--config.eval.anomaly.iwae_samples={_IWAE_SAMPLES.value}",
      f"--config.eval.batch_size={_BATCH_SIZE.value}",
  ]
  run = runs.load(_WORKDIR.value, _STEP.value, [*flag_overrides, *overrides])
  detector = evaluators.create("anomaly", evaluators.Context(run.experiment, lambda: run.data, run.config.eval, _SEED.value))
  scores = detector.scores(run.state)
  metrics, images = detector.summarize(scores)
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "anomaly", str(run.step))
  protocol = {"step": run.step, "dataset": run.config.data.name, **detector.protocol}
  report.write(out_dir, f"Anomaly detection by {run.workdir} at step {run.step}", run.config.family, metrics, protocol)
  with epath.Path(out_dir, "scores.npz").open("wb") as f:
    np.savez(f, **scores)
  for name, image in images.items():
    pixels.save_png(os.path.join(out_dir, f"{name}.png"), image)
  for name, value in metrics.items():
    print(f"{name}: {value:.4f}")
  print(out_dir)


if __name__ == "__main__":
  cli.run(main)
