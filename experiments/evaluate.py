r"""Evaluates a trained run and writes WORKDIR/eval/<step>/metrics.json and summary.md.

  python experiments/evaluate.py --workdir=/tmp/genjax/gan_local --classifier_workdir=/tmp/genjax/classifier_local
  python experiments/evaluate.py --workdir=/tmp/genjax/vae_local --classifier_workdir=/tmp/genjax/classifier_local \
    --iwae_samples=1000
  python experiments/evaluate.py --workdir=RUN --feature_network=inception --inception_weights=/path/to/pt_inception-2015-12-05-6726825d.pth

What it reports depends on the model (see genjax/evaluation.py): FID, KID and precision/recall for models that
sample (GAN, VAE), the likelihood bounds of a VAE, reconstruction MSE/PSNR/SSIM of AE and VAE. The feature network
is a genjax classifier run (configs/classifier.py; the domain network for MNIST-like data) or the FID Inception-v3.
"""

import json
import os
import sys

from absl import app
from absl import flags

from genjax import errors

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory, as given to experiments/train.py.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
_FEATURE_NETWORK = flags.DEFINE_enum(
    "feature_network", "classifier", ["classifier", "inception"], "Feature space of FID, KID and precision/recall."
)
_CLASSIFIER_WORKDIR = flags.DEFINE_string(
    "classifier_workdir",
    None,
    "A configs/classifier.py run on the same kind of images (for --feature_network=classifier).",
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights", None, "pt_inception-2015-12-05-6726825d.pth (default: the cache, else a download)."
)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 0, "N real and N generated images (0: the whole eval split).")
_REAL_FLOOR = flags.DEFINE_bool(
    "real_floor", False, "Also score N training images against the same held-out images: the real-vs-real floor."
)
_IWAE_SAMPLES = flags.DEFINE_integer("iwae_samples", 100, "Importance samples k of the VAE's likelihood bound.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 200, "Global batch of feature extraction and reconstruction.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the samples and of KID's subsets.")
_OVERRIDES = flags.DEFINE_multi_string("override", [], "Config override KEY=VALUE, e.g. data.data_dir=/data.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    directory = _evaluate()
  except errors.UserError as e:
    sys.exit(f"genjax: error: {e}")
  print(directory)


def _evaluate() -> str:
  from genjax import checkpoint
  from genjax import evaluation
  from genjax import runs

  checkpoint.quiet_orbax_logging()
  run = runs.load(_WORKDIR.value, _STEP.value, _OVERRIDES.value)
  metrics, protocol = {}, {"step": run.step, "dataset": run.config.data.name, "binarize": run.config.data.binarize}
  if run.trainer.generate is not None:
    if _FEATURE_NETWORK.value == "inception":
      network, params = evaluation.inception_network(_INCEPTION_WEIGHTS.value)
    elif _CLASSIFIER_WORKDIR.value:
      network, params = evaluation.classifier_network(_CLASSIFIER_WORKDIR.value)
    else:
      raise errors.UserError(
          "FID, KID and precision/recall need a feature network: pass --classifier_workdir=RUN of a "
          "configs/classifier.py run on this kind of images, or --feature_network=inception."
      )
    num_images = _NUM_IMAGES.value or len(run.eval_source)
    sample_metrics, sample_protocol = evaluation.sample_quality(
        run, network, num_images, _SEED.value, _BATCH_SIZE.value, params, _REAL_FLOOR.value
    )
    metrics.update(sample_metrics)
    protocol.update(sample_protocol)
  if run.config.family == "vae":
    metrics.update(evaluation.likelihood_bounds(run, _IWAE_SAMPLES.value, _BATCH_SIZE.value, _SEED.value))
    protocol["iwae_samples"] = _IWAE_SAMPLES.value
  if run.trainer.reconstruct is not None:
    metrics.update(evaluation.reconstruction_quality(run, _BATCH_SIZE.value))

  directory = os.path.join(run.workdir, "eval", str(run.step))
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "metrics.json"), "w") as f:
    json.dump({"metrics": metrics, "protocol": protocol}, f, indent=2)
  with open(os.path.join(directory, "summary.md"), "w") as f:
    f.write(evaluation.summary_markdown(run, metrics, protocol))
  return directory


if __name__ == "__main__":
  app.run(main)
