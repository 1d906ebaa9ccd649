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

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/anomaly/STEP",
    batch_size=(200, "Global batch of scoring."),
    seed="the likelihood bounds' draws",
    num_images=(64, "Most anomalous images shown per score.", 1),
)
_IWAE_SAMPLES = flags.DEFINE_integer(
    "iwae_samples", 100, "Importance samples of the VAE's bound (the iwae score).", lower_bound=1
)


def main(overrides: list[str]) -> None:
  from genjax import runs
  from genjax.evaluators import offline

  flag_overrides = [
      f"--config.eval.anomaly.num_images={_RUN.num_images.value}",
      f"--config.eval.anomaly.iwae_samples={_IWAE_SAMPLES.value}",
      f"--config.eval.batch_size={_RUN.batch_size.value}",
  ]
  run = _RUN.load([*flag_overrides, *overrides])
  out_dir = runs.output_dir(run, "anomaly", out_dir=_RUN.out_dir.value)
  print(offline.detect_anomalies(run, _RUN.seed.value, out_dir).table)
  print(out_dir)


if __name__ == "__main__":
  cli.run(main)
