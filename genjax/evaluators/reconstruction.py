"""The "reconstruction" evaluation: mean squared error, PSNR (dB) and SSIM of the reconstructions of the whole eval
split, per image then averaged (see `genjax.metrics.image_quality`)."""

import jax.numpy as jnp

from genjax.evaluators import common
from genjax.metrics import image_quality

NAMES = ("mse", "psnr", "ssim")


class ReconstructionQuality:
  protocol = {}

  def __init__(self, context: common.Context):
    encoder = context.experiment.trainer.encoder
    common.require(encoder is not None, "reconstruction", f"needs an encoder; a {context.config.family} has none")
    pixel_range = tuple(context.config.data.pixel_range)

    def per_image(state, batch):
      images = batch["image"]
      reconstructions = encoder.reconstruct(state, images)
      return jnp.stack(
          [
              image_quality.mean_squared_error(images, reconstructions),
              image_quality.psnr(images, reconstructions, pixel_range),
              image_quality.ssim(images, reconstructions, pixel_range),
          ],
          axis=-1,
      )

    self._evaluate = common.per_example_over_eval_split(context, per_image)

  def run(self, state, step: int):
    del step
    return common.mean_of_columns(self._evaluate(state), NAMES), {}
