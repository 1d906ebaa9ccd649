"""Evaluations, chosen by name in `config.evals` (as big_vision does) and composed the same way in training and by
experiments/evaluate.py, so that a number means the same wherever it was computed.

  split            the trainer's eval metrics over the eval split (every family)
  grids            sample and reconstruction grids (models of images)
  mode_coverage    modes covered and high-quality fraction, with a scatter plot (generators of 2-D mixtures)
  sample_quality   FID, KID, precision/recall in a feature network's space (generators of images)
  likelihood       negative ELBO and importance-weighted bound (models with a likelihood)
  reconstruction   MSE, PSNR and SSIM of reconstructions (models that encode)
  restoration      PSNR and SSIM of restored whole images, beside classical baselines (restorers)
  anomaly          AUROC and AUPRC of per-image anomaly scores against the left-out classes (one-class protocol)

Each is built once from a `Context` (see `common`); an evaluator that cannot serve the run (mode coverage of
images, a likelihood of a GAN) is refused with a message when it is built, before training starts.
"""

from collections.abc import Sequence

from genjax import errors
from genjax.evaluators import anomaly
from genjax.evaluators import common
from genjax.evaluators import grids
from genjax.evaluators import likelihood
from genjax.evaluators import mode_coverage
from genjax.evaluators import reconstruction
from genjax.evaluators import restoration
from genjax.evaluators import sample_quality
from genjax.evaluators import split

Context = common.Context

EVALUATORS = {
    "split": split.SplitMetrics,
    "grids": grids.Grids,
    "mode_coverage": mode_coverage.ModeCoverage,
    "sample_quality": sample_quality.SampleQuality,
    "likelihood": likelihood.LikelihoodBounds,
    "reconstruction": reconstruction.ReconstructionQuality,
    "restoration": restoration.RestorationQuality,
    "anomaly": anomaly.AnomalyDetection,
}


def build(names: Sequence[str], context: common.Context) -> list[common.Evaluator]:
  """The evaluators `names`, in order, built on `context`."""
  unknown = [name for name in names if name not in EVALUATORS]
  if unknown:
    raise errors.UserError(f"config.evals names unknown evaluations {unknown}; known: {', '.join(EVALUATORS)}.")
  return [EVALUATORS[name](context) for name in names]


def run(evaluators: Sequence[common.Evaluator], state, step: int):
  """Runs every evaluator: (all metrics, all images by name)."""
  metrics, images = {}, {}
  for evaluator in evaluators:
    evaluator_metrics, evaluator_images = evaluator.run(state, step)
    metrics.update(evaluator_metrics)
    images.update(evaluator_images)
  return metrics, images
