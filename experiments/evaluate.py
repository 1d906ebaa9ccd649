r"""Evaluates a trained run, prints its metrics table and writes metrics.json and summary.md under --out_dir (default WORKDIR/eval/<step>/, or
WORKDIR/eval/<step>/clean_images-<folder name>/ for --clean_images, beside the held-out evaluation).

  python experiments/evaluate.py --workdir=/tmp/genjax/gan_local --classifier_workdir=/tmp/genjax/classifier_local
  python experiments/evaluate.py --workdir=/tmp/genjax/vae_local --classifier_workdir=/tmp/genjax/classifier_local \
    --iwae_samples=1000
  python experiments/evaluate.py --workdir=RUN --feature_network=inception --inception_weights=/path/to/pt_inception-2015-12-05-6726825d.pth
  python experiments/evaluate.py --workdir=RUN --config.data.data_dir=/data   # the data has moved
  python experiments/evaluate.py --workdir=/tmp/genjax/denoise_local --clean_images=~/photos   # your own images
  python experiments/evaluate.py --workdir=/tmp/genjax/ddpm_local --evals=sample_quality \
    --classifier_workdir=/tmp/genjax/classifier_local   # only FID/KID/PR (a diffusion bound takes T passes)

What it reports depends on what the model can do (see genjax/evaluators): FID, KID and precision/recall for models
that sample images, mode coverage for generators of 2-D mixtures, the likelihood bounds of a model with a
likelihood, reconstruction MSE/PSNR/SSIM of models that encode, and for restoration runs PSNR/SSIM beside classical baselines
on the same degraded images (of the eval split, or of --clean_images). Restoration and translation also report SWD
(ProGAN's sliced Wasserstein distance of Laplacian-pyramid patches, no weights needed) and LPIPS where torchvision's
VGG16 and LPIPS' v0.1 weights are in ~/.cache/genjax (otherwise the protocol says LPIPS was not computed and which
files to put there). The same evaluators run during training when
config.evals lists them, so the numbers mean the same. `--config.x.y=v` overrides the run's saved config.
"""

from absl import flags

from genjax import cli

_RUN = cli.define_run_flags(
    out_dir="WORKDIR/eval/STEP[/clean_images-NAME]",
    batch_size=(200, "Global batch of feature extraction and reconstruction."),
    seed="the samples and of KID's subsets",
    num_images=(0, "N real and N generated images (0: the whole eval split).", 0),
)
_EVALS = flags.DEFINE_list(
    "evals", [], "Only these evaluations (default: every one that applies to the run), e.g. sample_quality."
)
_FEATURE_NETWORK = flags.DEFINE_enum(
    "feature_network", "classifier", ["classifier", "inception"], "Feature space of FID, KID and precision/recall."
)
_CLASSIFIER_WORKDIR = flags.DEFINE_string(
    "classifier_workdir",
    None,
    "A configs/classifier.py run on the same kind of images (for --feature_network=classifier; default: the run's "
    "config.eval.sample_quality.classifier_workdir).",
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights", None, "pt_inception-2015-12-05-6726825d.pth (default: the cache, else a download)."
)
_REAL_FLOOR = flags.DEFINE_bool(
    "real_floor", False, "Also score N training images against the same held-out images: the real-vs-real floor."
)
_IWAE_SAMPLES = flags.DEFINE_integer(
    "iwae_samples", 100, "Importance samples k of the VAE's likelihood bound.", lower_bound=1
)
_CLEAN_IMAGES = flags.DEFINE_string(
    "clean_images",
    None,
    "Restoration: a folder of clean images to degrade, restore and score, instead of the eval split.",
)
_BASELINES = flags.DEFINE_bool(
    "baselines",
    None,
    "Restoration: also score the classical baselines (default: the run's config.eval.restoration.baselines).",
)


def main(overrides: list[str]) -> None:
  from genjax import runs
  from genjax.evaluators import offline

  run = _RUN.load([*_flags_as_overrides(), *overrides])
  given = [("clean_images", _CLEAN_IMAGES.value and [_CLEAN_IMAGES.value])]
  out_dir = runs.output_dir(run, "eval", given, _RUN.out_dir.value)
  print(offline.evaluate(run, _RUN.seed.value, out_dir, _CLEAN_IMAGES.value, _EVALS.value).table)
  print(out_dir)


def _flags_as_overrides() -> list[str]:
  """This command's evaluation flags, as overrides of the run's `config.eval`."""
  overrides = {
      "batch_size": _RUN.batch_size.value,
      "sample_quality.feature_network": _FEATURE_NETWORK.value,
      "sample_quality.num_images": _RUN.num_images.value,
      "sample_quality.real_floor": _REAL_FLOOR.value,
      "sample_quality.classifier_workdir": _CLASSIFIER_WORKDIR.value,
      "sample_quality.inception_weights": _INCEPTION_WEIGHTS.value,
      "likelihood.iwae_samples": _IWAE_SAMPLES.value,
      "restoration.baselines": _BASELINES.value,
  }
  return [f"--config.eval.{key}={value}" for key, value in overrides.items() if value is not None]


if __name__ == "__main__":
  cli.run(main)
