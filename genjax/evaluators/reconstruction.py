"""The "reconstruction" evaluation: mean squared error, PSNR (dB) and SSIM of the reconstructions of the whole eval
split, per image then averaged (see `genjax.metrics.image_quality`).

An exact reconstruction has an infinite PSNR, which would make the mean infinite: `psnr` averages over the other
images and `exact_reconstructions` counts them.
"""

import jax.numpy as jnp
import numpy as np

from genjax.evaluators import common
from genjax.metrics import image_quality

NAMES = ("mse", "psnr", "ssim")


class ReconstructionQuality:
  protocol = {}

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        (context.experiment.trainer.encoder is not None, f"needs an encoder; a {context.config.family} has none")
    )

  def __init__(self, context: common.Context):
    encoder = context.experiment.trainer.encoder
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
    values = self._evaluate(state)
    metrics = common.mean_of_columns(values, NAMES)
    psnr = values[:, NAMES.index("psnr")]
    exact = ~np.isfinite(psnr)
    metrics["psnr"] = float(psnr[~exact].mean()) if not exact.all() else float("nan")
    metrics["exact_reconstructions"] = int(exact.sum())
    return metrics, {}
