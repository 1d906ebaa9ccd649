"""The "grids" evaluation: image grids at every evaluation, for models of images.

- "reconstructions": the first `config.eval.grids.num_images` evaluation images above their reconstructions, strip
  by strip (a denoising autoencoder's: the noisy inputs it is given, their reconstructions, the clean images), for
  trainers that encode;
- "samples": as many samples from fixed latents (one full row per class for a conditional model), for trainers that
  sample.
Both are drawn as experiments/sample.py draws them (`genjax.sampling`).
"""

import numpy as np

from genjax import sampling
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
    self._first_images = None
    if trainer.encoder is not None:
      first_batch = next(context.eval_batches())["image"]
      self._first_images = np.asarray(experiment.gather(first_batch))[: self._num_images]

  def run(self, state, step: int):
    del step
    experiment, images = self._context.experiment, {}
    if self._first_images is not None:
      key = experiment.keys.eval
      images["reconstructions"] = sampling.reconstruction_grid(experiment, state, self._first_images, key)
    if experiment.trainer.sampler is not None:
      images["samples"] = sampling.sample_grid(experiment, state, self._num_images, experiment.keys.sample)
    return {}, images
