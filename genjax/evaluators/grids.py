"""The "grids" evaluation: image grids at every evaluation, for models of images.

- "reconstructions": the first `config.eval.grids.num_images` evaluation images (odd rows) above their
  reconstructions (even rows), for trainers that encode;
- "samples": as many samples from fixed latents (one row per class for a conditional model), for trainers that
  sample.
"""

import numpy as np

from genjax import writers
from genjax.evaluators import common


class Grids:
  protocol = {}

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    trainer = context.experiment.trainer
    return common.requirements(
        (context.spec.is_image, f"draws images; {context.config.data.name!r} holds {context.spec.data_key}s"),
        (
            trainer.encoder is not None or trainer.sampler is not None,
            f"needs a model that reconstructs or samples; a {context.config.family} does neither",
        ),
    )

  def __init__(self, context: common.Context):
    experiment = context.experiment
    trainer = experiment.trainer
    self._context = context
    self._num_images = context.options_of("grids").num_images
    self._pixel_range = tuple(context.config.data.pixel_range)
    self._first_batch = next(context.eval_batches())["image"] if trainer.encoder is not None else None

  def run(self, state, step: int):
    del step
    experiment, images = self._context.experiment, {}
    if self._first_batch is not None:
      originals = np.asarray(experiment.gather(self._first_batch))[: self._num_images]
      reconstructions = np.asarray(experiment.reconstruct(state, self._first_batch))[: self._num_images]
      columns = int(np.ceil(np.sqrt(len(originals))))
      paired = writers.interleave_rows(originals, reconstructions, columns)
      images["reconstructions"] = writers.image_grid(paired, self._pixel_range, columns)
    if experiment.trainer.sampler is not None:
      samples = np.asarray(experiment.generate(state, experiment.keys.sample, self._num_images))
      images["samples"] = writers.image_grid(samples, self._pixel_range, experiment.trainer.sampler.samples_per_row)
    return {}, images
