"""The "mode_coverage" evaluation, for generators of 2-D mixtures: how many of the mixture's modes
`config.eval.mode_coverage.num_samples` samples reach and how many samples are high-quality (see
`genjax.metrics.mode_coverage`), with a scatter plot of the samples over the data."""

import numpy as np

from genjax import writers
from genjax.evaluators import common
from genjax.metrics import mode_coverage


class ModeCoverage:
  protocol = {}

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        # Only point data can be a mixture: image data is not opened to find out.
        (
            not context.spec.is_image and context.data.mixture is not None,
            f"needs a 2-D mixture; {context.config.data.name!r} is not one",
        ),
        (context.experiment.trainer.sampler is not None, f"needs samples; a {context.config.family} model does not sample"),
    )

  def __init__(self, context: common.Context):
    self._context = context
    self._num_samples = context.options_of("mode_coverage").num_samples
    self._real_points = np.stack([example["point"] for example in context.data.eval])

  def run(self, state, step: int):
    experiment, mixture = self._context.experiment, self._context.data.mixture
    samples = np.asarray(experiment.generate(state, experiment.keys.sample, self._num_samples))
    coverage = mode_coverage.mode_coverage(samples, mixture.centers, mixture.std)
    title = (
        f"step {step}: {coverage['modes_covered']}/{len(mixture.centers)} modes, "
        f"{coverage['high_quality_fraction']:.0%} high quality"
    )
    return coverage, {"samples": writers.scatter_plot(samples, self._real_points, mixture.centers, title)}
