"""Evaluations, chosen by name in `config.evals` (as big_vision does) and composed the same way in training and by
experiments/evaluate.py, so that a number means the same wherever it was computed.

  split            the trainer's eval metrics over the eval split (every family)
  grids            sample and reconstruction grids (models of images)
  mode_coverage    modes covered and high-quality fraction, with a scatter plot (generators of 2-D mixtures)
  sample_quality   FID, KID, precision/recall in a feature network's space (generators of images)
  likelihood       negative ELBO and importance-weighted bound (models with a likelihood)
  reconstruction   MSE, PSNR and SSIM of reconstructions (models that encode)
  restoration      PSNR, SSIM, SWD (and LPIPS) of restored whole images, beside classical baselines (restorers)
  anomaly          AUROC and AUPRC of per-image anomaly scores against the left-out classes (one-class protocol)
  translation      PSNR, SSIM, L1, sharpness, SWD (and LPIPS) of translations against their targets, cycle errors
                   (translators)

Each evaluation says itself whether it can serve a run (`applies`): training refuses one that cannot before it
starts, and experiments/evaluate.py runs every offline evaluation (`OFFLINE`) that applies. Each reads its own
options, `config.eval.<name>.*`, and is constructed when first run (after the checkpoint is restored, and only if
it runs at all), so that building the list costs nothing.
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
from genjax.evaluators import translation

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
    "translation": translation.TranslationQuality,
}
# What experiments/evaluate.py runs wherever it applies: the scores of a trained model (the split's own metrics and
# the grids belong to training; the anomaly protocol has experiments/anomaly.py).
OFFLINE = ("sample_quality", "mode_coverage", "likelihood", "reconstruction", "restoration", "translation")


def applicable(names: Sequence[str], context: common.Context) -> list[str]:
  """The evaluations of `names` that can serve the run of `context`, in order."""
  return [name for name in names if EVALUATORS[name].applies(context)]


def create(name: str, context: common.Context):
  """The evaluation `name`, constructed now. Raises `UserError` for an unknown name or one that cannot serve the
  run, saying why."""
  _check([name], context)
  return EVALUATORS[name](context)


def _check(names: Sequence[str], context: common.Context) -> None:
  unknown = [name for name in names if name not in EVALUATORS]
  if unknown:
    raise errors.UserError(f"config.evals names unknown evaluations {unknown}; known: {', '.join(EVALUATORS)}.")
  for name in names:
    verdict = EVALUATORS[name].applies(context)
    if not verdict:
      raise errors.UserError(f"The {name!r} evaluation (config.evals) {verdict.why_not}.")


class _ConstructedWhenFirstRun:
  """An evaluation that is checked now and constructed at its first `run`."""

  def __init__(self, name: str, context: common.Context):
    self.name, self._context, self._evaluator = name, context, None

  @property
  def evaluator(self):
    if self._evaluator is None:
      self._evaluator = EVALUATORS[self.name](self._context)
    return self._evaluator

  @property
  def protocol(self) -> dict:
    return self.evaluator.protocol

  def run(self, state, step: int):
    return self.evaluator.run(state, step)


def build(names: Sequence[str], context: common.Context) -> list[common.Evaluator]:
  """The evaluations `names`, in order, each checked now (`UserError` for an unknown name or one that cannot serve
  the run) and constructed when first run."""
  _check(names, context)
  return [_ConstructedWhenFirstRun(name, context) for name in names]


def run(evaluators: Sequence[common.Evaluator], state, step: int):
  """Runs every evaluator: (all metrics, all images by name)."""
  metrics, images = {}, {}
  for evaluator in evaluators:
    evaluator_metrics, evaluator_images = evaluator.run(state, step)
    metrics.update(evaluator_metrics)
    images.update(evaluator_images)
  return metrics, images
