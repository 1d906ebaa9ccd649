"""The "restoration" evaluation: PSNR and SSIM of a restorer on the eval split's whole images, beside classical
baselines (`genjax.baselines`) on the very same degraded images.

Each clean image (in the config's channels; its sides cut to what the task needs) is degraded once, with a key of
its own, so every evaluation and every baseline sees the same inputs, and restored as experiments/restore.py
restores (`genjax.restoring`: mirrored borders, tiles of 256 pixels). What is scored follows from the restorer's
`degradations.Degradation`, never from the task's name; per image, then averaged:

- PSNR and SSIM over the image;
- where the degradation `scores_on_luma` (super-resolution): on the luma Y of ITU-R BT.601 of colour images
  (16-235, as MATLAB's rgb2ycbcr), with `scale` border pixels shaved, as super-resolution papers report them;
- where it is not scored on `whole_images` (inpainting): on a grid of crops of the training patches' size from the
  centre of each image, each degraded on its own (holes as large as in training);
- where it makes masks (inpainting): also `hole_psnr`, the PSNR over the missing pixels only (the known ones are
  copied);
- over the whole set, on the [0, 1] images in their channels (`perceptual_scores`): `swd`, the sliced Wasserstein
  distance of their Laplacian-pyramid patches to the clean ones' (always), and `lpips` (only where the VGG16 and
  LPIPS weights are in the cache; the protocol says when they were not), both lower is better, where PSNR rewards
  the blur that averaging plausible answers gives.

Baselines (`config.eval.restoration.baselines`) are the degradation's `baselines` (`genjax.baselines.METHODS`: for
denoising, total variation, non-local means (both tuned on training images) and BM3D where installed; bicubic
upscaling for super-resolution; biharmonic inpainting), computed and scored the same way once, when the evaluator is
built. Strips of
degraded | restored | clean, under those labels, go to samples/.
"""

import functools

import jax
import numpy as np

from genjax import baselines
from genjax import pixels
from genjax import restoring
from genjax import writers
from genjax.data import sources
from genjax.evaluators import common
from genjax.evaluators import perceptual_scores
from genjax.metrics import image_quality

# The luma of PIL's convert("L"), as the device computes it (`genjax.data.preprocess`).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_STRIPS = 2
_SHOWN_SIDE = 128  # Strips' images are enlarged to at least this side.
_CROPS_PER_SIDE = 4  # Inpainting: at most a 4 x 4 grid of patch-sized crops from the centre of each image.


class RestorationQuality:

  # Scored beside the classical baselines: evaluate.py's summary is a table of methods.
  compares_methods = True

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        (context.experiment.trainer.restorer is not None, f"needs a restorer; a {context.config.family} is not one")
    )

  def __init__(self, context: common.Context):
    restorer = context.experiment.trainer.restorer
    self._context, self._restorer = context, restorer
    channels = context.config.data.channels
    self._clean = [
        _prepare(context.data.eval[index][sources.IMAGE], channels, restorer.multiple)
        for index in range(len(context.data.eval))
    ]
    images = f"{len(self._clean)} whole images of {_described(context)}"
    if not restorer.degradation.whole_images:
      side = context.experiment.spec.data_shape[0]  # The training patches' (or images') side.
      self._clean = [crop for image in self._clean for crop in _central_crops(image, side)]
      images = (
          f"{len(self._clean)} crops of {side}x{side}, up to {_CROPS_PER_SIDE ** 2} central ones per image of {images}"
      )
    self._degrade = jax.jit(restorer.degrade)
    keys = [jax.random.fold_in(context.experiment.keys.eval, index) for index in range(len(self._clean))]
    pairs = [self._degrade(clean[None], key) for clean, key in zip(self._clean, keys)]
    self._degraded = [np.asarray(degraded[0]) for degraded, _ in pairs]
    self._masks = [None if mask is None else np.asarray(mask[0]) for _, mask in pairs]
    self._restore = restoring.jitted_restore(context.experiment)
    self._perceptual = perceptual_scores.PerceptualScores(pixels.UNIT_RANGE)
    self.protocol = {
        "restoration_images": images,
        "restoration_scores": self._score_description(),
        **{f"restoration_{name}": text for name, text in self._perceptual.protocol.items()},
    }
    self._baselines = self._run_baselines(context) if context.options_of("restoration").baselines else {}

  def _score_description(self) -> str:
    degradation = self._restorer.degradation
    if degradation.scores_on_luma and self._clean[0].shape[-1] == 3:
      return f"PSNR/SSIM on Y (BT.601), {self._restorer.scale} border pixels shaved"
    return "PSNR/SSIM on the image" + (", hole_psnr on the missing pixels" if degradation.needs_mask else "")

  def _scores(self, restored: list[np.ndarray]) -> dict[str, float]:
    per_image = [self._score(clean, image, mask) for clean, image, mask in zip(self._clean, restored, self._masks)]
    scores = {name: float(np.mean([scores[name] for scores in per_image])) for name in per_image[0]}
    return scores | self._perceptual.scores(self._clean, [np.clip(image, 0.0, 1.0) for image in restored])

  def _score(self, clean: np.ndarray, restored: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    restored = np.clip(restored, 0.0, 1.0)
    if self._restorer.degradation.scores_on_luma:
      shave = self._restorer.scale
      clean, restored = (_luma_ycbcr(image)[shave:-shave, shave:-shave] for image in (clean, restored))
    psnr, ssim = _psnr_and_ssim(clean[None], restored[None])
    scores = {"psnr": float(psnr[0]), "ssim": float(ssim[0])}
    if mask is not None:
      hole = np.broadcast_to(mask, clean.shape) > 0
      scores["hole_psnr"] = baselines.psnr(clean[hole], restored[hole])
    return scores

  def _run_baselines(self, context: common.Context) -> dict[str, dict[str, float]]:
    setting = baselines.Setting(
        context.config.restoration.sigma, self._restorer.scale, functools.partial(self._tuning_pairs, context)
    )
    methods = baselines.methods(self._restorer.degradation.baselines, setting)
    restored = {
        name: [method(image, mask) for image, mask in zip(self._degraded, self._masks)]
        for name, method in methods.items()
    }
    return {name: self._scores(images) for name, images in restored.items()}

  def _tuning_pairs(self, context: common.Context, count: int = 2):
    """(noisy, clean) top-left crops of the first training images, for the baselines' strengths."""
    pairs = []
    for index in range(count):
      image = context.data.train[index]
      size = image.get(sources.SIZE, np.shape(image[sources.IMAGE])[:2])
      clean = _prepare(image[sources.IMAGE][: size[0], : size[1]], context.config.data.channels, 1)[:256, :256]
      noisy, _ = self._degrade(clean[None], jax.random.key(index))
      pairs.append((np.asarray(noisy[0]), clean))
    return pairs

  def run(self, state, step: int):
    del step
    restore = functools.partial(self._restore, state)
    restored = [
        restoring.apply_tiled(
            restore, degraded, restoring.Tiling(), self._restorer.multiple, self._restorer.scale, mask
        )
        for degraded, mask in zip(self._degraded, self._masks)
    ]
    metrics = self._scores(restored)
    for name, scores in self._baselines.items():
      metrics.update({f"{name}_{score}": value for score, value in scores.items()})
    return metrics, {"restoration": self._strips(restored)}

  def _strips(self, restored: list[np.ndarray]) -> np.ndarray:
    """degraded | restored | clean for the first images, on one grid under column labels (each at the clean
    image's size; small ones, such as inpainting's patch-sized crops, enlarged to be seen)."""
    triples = list(zip(self._clean, self._degraded, restored))[:_STRIPS]
    side = min(256, *(min(clean.shape[:2]) for clean, _, _ in triples))  # Central crops keep the grid small.
    enlarged = -(-_SHOWN_SIDE // side)  # Whole pixels, as blocks: nothing is smoothed away.
    rows = []
    for clean, degraded, image in triples:
      scale = clean.shape[0] // degraded.shape[0]
      shown = np.repeat(np.repeat(degraded, scale, axis=0), scale, axis=1)  # Low resolution shown as blocks.
      top, left = (clean.shape[0] - side) // 2, (clean.shape[1] - side) // 2
      for array in (shown, np.clip(image, 0, 1), clean):
        crop = array[top : top + side, left : left + side]
        rows.append(np.repeat(np.repeat(crop, enlarged, axis=0), enlarged, axis=1))
    grid = writers.image_grid(np.stack(rows), (0.0, 1.0), 3)
    return writers.with_column_labels(grid, ("degraded", "restored", "clean"))


@jax.jit
def _psnr_and_ssim(clean, restored):
  """One compiled program per image size, instead of SSIM's many small operations each compiled on its own."""
  return image_quality.psnr(clean, restored, (0.0, 1.0)), image_quality.ssim(clean, restored, (0.0, 1.0))


def _described(context: common.Context) -> str:
  data_config = context.config.data
  if context.data.name == data_config.name:
    return f"{data_config.name}/{data_config.eval_split}"
  return context.data.name  # Images given for evaluation (evaluate.py --clean_images).


def _prepare(image, channels: int, multiple: int) -> np.ndarray:
  """An eval image as floats in [0, 1] with the config's channels, its sides cut to multiples of `multiple`."""
  image = np.asarray(image, np.float32) / 255.0
  if channels == 1 and image.shape[-1] == 3:
    image = (image @ _LUMA)[..., None]
  height, width = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
  return image[:height, :width]


def _central_crops(image: np.ndarray, side: int) -> list[np.ndarray]:
  """A grid of up to `_CROPS_PER_SIDE` x `_CROPS_PER_SIDE` adjacent `side` x `side` crops from the image's centre."""
  rows, columns = (min(_CROPS_PER_SIDE, length // side) for length in image.shape[:2])
  top, left = (image.shape[0] - rows * side) // 2, (image.shape[1] - columns * side) // 2
  return [
      image[top + row * side : top + (row + 1) * side, left + column * side : left + (column + 1) * side]
      for row in range(rows)
      for column in range(columns)
  ]


def _luma_ycbcr(image: np.ndarray) -> np.ndarray:
  """Y of BT.601 YCbCr in [16, 235] / 255 for colour images; grey ones as they are."""
  if image.shape[-1] == 1:
    return image
  return (16.0 + image @ np.array([65.481, 128.553, 24.966], np.float32)) / 255.0
