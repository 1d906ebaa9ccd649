"""The "translation" evaluation: how well a translator (`contract.Translator`) maps the eval split's inputs (A, the
"image" field) to their targets (B, "target"), on whole images or central crops of them.

Each eval example is converted to the config's channels and pixel range and cut to its central square of at most
`config.eval.translation.crop_size` pixels a side, rounded down to the translator's multiple (the networks are fully
convolutional: trained on patches, applied to larger images). Scores are per image, then averaged, on [0, 1] pixels:

- where the eval split pairs each input with its target (anything but an unpaired split of two folders: pix2pix's
  pairs, the known-map tasks' true answers): PSNR (at most 100 dB per image), SSIM and L1 of G(A) against B
  (`*_a_to_b`), the same PSNR of the input itself (`identity_psnr`: what doing nothing scores, where A and B have
  one number of channels), and
  `sharpness_a_to_b`, the high-frequency energy of G(A) relative to B's (mean squared 3x3 Laplacian; 1 matches the
  targets' detail, below 1 is blurrier: what an L1-only model gives up);
- where the translator goes both ways (CycleGAN): the cycle errors, L1 of F(G(A)) against A and of G(F(B)) against B
  (`cycle_l1_a`, `cycle_l1_b`);
- perceptual scores (`perceptual_scores`, lower is better): `swd_a_to_b`, the sliced Wasserstein distance between
  the Laplacian-pyramid patches of G(A) and of the targets (a distance between sets: paired or not; `swd_b_to_a` of
  F(B) against the inputs for CycleGAN), always, where images have 16 pixels a side or more; and `lpips_a_to_b`
  (`lpips_b_to_a`) where targets are paired, only where the VGG16 and LPIPS weights are in the cache (the protocol
  says when they were not).

With `config.eval.translation.classifier_workdir` (a configs/classifier.py run on the same kind of images), also
whether the classifier reads the same class in G(A) as in A (`classifier_agreement`), beside the same for the true
targets (`classifier_agreement_targets`: the map's own effect on the classifier, where targets are paired), and
FID and KID in its penultimate features (`genjax.metrics.feature_distances`): of G(A) against the eval targets
(`fid_a_to_b`, `kid_a_to_b`), of F(B) against the eval inputs for CycleGAN (`fid_b_to_a`, `kid_b_to_a`), and of
the inputs themselves against the targets (`fid_identity`: what doing nothing scores).

Strips of input | output (| target) for the first images (and target | F(target) back) go to samples/. Numbers are
of the train state's generators (no weight average) at the evaluated step.
"""

import jax
import numpy as np

from genjax import errors
from genjax import pixels
from genjax import runs
from genjax import writers
from genjax.data import sources
from genjax.evaluators import common
from genjax.evaluators import perceptual_scores
from genjax.metrics import feature_distances
from genjax.metrics import image_quality
from genjax.trainers import contract

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # As the device computes it (`genjax.data.preprocess`).


def _prepare(image: np.ndarray, channels: int, crop_size: int, multiple: int, pixel_range) -> np.ndarray:
  """uint8 `[H, W, C]` -> float32 in `pixel_range`, in `channels` (0: as stored), cut to its central square of side
  min(crop_size, H, W) rounded down to `multiple`."""
  image = np.asarray(image, np.float32) / 255.0
  if channels == 1 and image.shape[-1] == 3:
    image = (image @ _LUMA)[..., None]
  elif channels == 3 and image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  side = min(crop_size, *image.shape[:2]) // multiple * multiple
  top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
  return pixels.rescale(image[top : top + side, left : left + side], pixels.UNIT_RANGE, pixel_range)


def high_frequency_energy(images: np.ndarray) -> np.ndarray:
  """Mean squared response of the 3x3 Laplacian over the interior of `[N, H, W, C]` images: `[N]`."""
  neighbours = images[:, :-2, 1:-1] + images[:, 2:, 1:-1] + images[:, 1:-1, :-2] + images[:, 1:-1, 2:]
  laplacian = neighbours - 4 * images[:, 1:-1, 1:-1]
  return np.mean(np.square(laplacian), axis=(1, 2, 3))


def _capped_psnr(reference: np.ndarray, images: np.ndarray, pixel_range) -> np.ndarray:
  """Per image, at most 100 dB: an image matched exactly (a grey photograph's own luma) would make the mean
  infinite."""
  return np.minimum(np.asarray(image_quality.psnr(reference, images, pixel_range)), 100.0)


class TranslationQuality:

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        (
            context.experiment.trainer.translator is not None,
            f"needs a translator; a {context.config.family} model is not one",
        )
    )

  def __init__(self, context: common.Context):
    options = context.options_of("translation")
    translator = context.experiment.trainer.translator
    self._context, self._translator, self._options = context, translator, options
    data_config = context.config.data
    self._pixel_range = tuple(data_config.pixel_range)
    split = context.data.eval
    self._aligned = not isinstance(split, sources.UnpairedSplit)
    prepare = lambda image: _prepare(
        image, data_config.channels, options.crop_size, translator.multiple, self._pixel_range
    )
    examples = [split[index] for index in range(len(split))]
    self._inputs = [prepare(example[sources.IMAGE]) for example in examples]
    self._targets = [prepare(example[sources.TARGET]) for example in examples]
    self._translate = jax.jit(translator.translate, static_argnums=2, out_shardings=context.experiment.replicated)
    self._classifier = None
    if options.classifier_workdir:
      self._classifier = _Classifier(options.classifier_workdir, self._pixel_range)
    sides = sorted({image.shape[0] for image in self._inputs})
    self.protocol = {
        "translation_images": (
            f"{len(examples)} {data_config.name}/{data_config.eval_split} examples, central squares of "
            f"{'/'.join(map(str, sides))} px"
        ),
        "translation_targets": "paired with each input" if self._aligned else "unpaired (no per-image scores)",
        "translation_scores": "PSNR/SSIM/L1 on [0, 1] pixels; sharpness: mean squared 3x3 Laplacian of G(A) / of B",
        "translation_weights": "the train state's generators (no weight average)",
    }
    self._perceptual = perceptual_scores.PerceptualScores(self._pixel_range)
    self.protocol.update({f"translation_{name}": text for name, text in self._perceptual.protocol.items()})
    if self._classifier is not None:
      self.protocol["translation_classifier"] = self._classifier.name
      self.protocol["translation_kid"] = "unbiased MMD^2, cubic kernel, 100 subsets of min(1000, N // 2) images"
      self._input_classes, self._input_features = self._read(self._inputs)
      _, self._target_features = self._read(self._targets)
      self._fid_identity = feature_distances.frechet_distance_from_features(self._target_features, self._input_features)

  def _translated(self, state, images: list[np.ndarray], direction: str) -> list[np.ndarray]:
    """`images` through the translator, in batches of one size (at most config.eval.batch_size), in order."""
    outputs = [None] * len(images)
    by_side = {}
    for index, image in enumerate(images):
      by_side.setdefault(image.shape, []).append(index)
    batch_size = self._context.options.batch_size
    for indices in by_side.values():
      for start in range(0, len(indices), batch_size):
        chosen = indices[start : start + batch_size]
        batch = np.stack([images[index] for index in chosen])
        translated = np.asarray(self._translate(state, batch, direction))
        for index, output in zip(chosen, translated):
          outputs[index] = output
    return outputs

  def _scores(self, references: list[np.ndarray], images: list[np.ndarray]) -> dict[str, np.ndarray]:
    reference, image = np.stack(references), np.clip(np.stack(images), *self._pixel_range)
    unit = lambda x: pixels.rescale(x, self._pixel_range, pixels.UNIT_RANGE)
    return {
        "psnr": _capped_psnr(reference, image, self._pixel_range),
        "ssim": np.asarray(image_quality.ssim(reference, image, self._pixel_range)),
        "l1": np.mean(np.abs(unit(reference) - unit(image)), axis=(1, 2, 3)),
        "sharpness": high_frequency_energy(unit(image)) / np.maximum(high_frequency_energy(unit(reference)), 1e-12),
    }

  def run(self, state, step: int):
    del step
    metrics, images = {}, {}
    outputs = self._translated(state, self._inputs, contract.A_TO_B)
    same_shape = self._inputs[0].shape == self._targets[0].shape
    if self._aligned and same_shape and all(a.shape == b.shape for a, b in zip(outputs, self._targets)):
      for name, values in self._scores(self._targets, outputs).items():
        metrics[f"{name}_a_to_b"] = float(np.mean(values))
      identity = _capped_psnr(np.stack(self._targets), np.stack(self._inputs), self._pixel_range)
      metrics["identity_psnr"] = float(np.mean(identity))
    metrics.update(self._perceptual_scores("a_to_b", self._targets, outputs))
    if self._classifier is not None:
      classes, features = self._read(outputs)
      metrics["classifier_agreement"] = float(np.mean(classes == self._input_classes))
      if self._aligned:
        metrics["classifier_agreement_targets"] = float(np.mean(self._read(self._targets)[0] == self._input_classes))
      metrics.update(self._distances("a_to_b", self._target_features, features))
      metrics["fid_identity"] = self._fid_identity
    strips = [self._inputs[:4], outputs[:4]] + ([self._targets[:4]] if self._aligned else [])
    if contract.B_TO_A in self._translator.directions:
      back = self._translated(state, self._targets, contract.B_TO_A)
      cycle_a = self._translated(state, outputs, contract.B_TO_A)
      cycle_b = self._translated(state, back, contract.A_TO_B)
      unit = lambda x: pixels.rescale(np.stack(x), self._pixel_range, pixels.UNIT_RANGE)
      metrics["cycle_l1_a"] = float(np.mean(np.abs(unit(cycle_a) - unit(self._inputs))))
      metrics["cycle_l1_b"] = float(np.mean(np.abs(unit(cycle_b) - unit(self._targets))))
      metrics.update(self._perceptual_scores("b_to_a", self._inputs, back))
      strips += [self._targets[:4], back[:4]]
      if self._classifier is not None:
        metrics.update(self._distances("b_to_a", self._input_features, self._read(back)[1]))
    images["translation"] = self._grid(strips)
    return metrics, images

  def _perceptual_scores(self, suffix: str, references: list[np.ndarray], images: list[np.ndarray]) -> dict[str, float]:
    """SWD (and LPIPS) of `images`, clipped to the pixel range, against `references`, named `<score>_<suffix>`."""
    clipped = [np.clip(image, *self._pixel_range) for image in images]
    scores = self._perceptual.scores(references, clipped, paired=self._aligned)
    return {f"{name}_{suffix}": value for name, value in scores.items()}

  def _read(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The class the classifier reads in each image `[N]`, and its features `[N, D]`."""
    batch_size = self._context.options.batch_size
    starts = range(0, len(images), batch_size)
    read = [self._classifier.read(np.stack(images[start : start + batch_size])) for start in starts]
    return np.concatenate([classes for classes, _ in read]), np.concatenate([features for _, features in read])

  def _distances(self, suffix: str, real: np.ndarray, other: np.ndarray) -> dict[str, float]:
    subset_size = min(1000, len(real) // 2)  # Subsets of all N would all be the same.
    kid, _ = feature_distances.kernel_inception_distance(real, other, subset_size=subset_size, seed=self._context.seed)
    return {f"fid_{suffix}": feature_distances.frechet_distance_from_features(real, other), f"kid_{suffix}": kid}

  def _grid(self, columns: list[list[np.ndarray]]) -> np.ndarray:
    """One row per image: its input, output (and target, and the way back), each cut to the smallest side shown."""
    side = min(image.shape[0] for column in columns for image in column)
    channels = max(image.shape[-1] for column in columns for image in column)
    cut = lambda image: np.broadcast_to(image[:side, :side], (side, side, channels))
    rows = [cut(column[row]) for row in range(len(columns[0])) for column in columns]
    return writers.image_grid(np.stack(rows), self._pixel_range, len(columns))


class _Classifier:
  """A classifier run's reading of images in the translation run's pixel range."""

  def __init__(self, workdir: str, pixel_range: tuple[float, float]):
    run = runs.load(workdir)
    capability = run.experiment.trainer.features
    if capability is None or capability.classify is None:
      raise errors.UserError(
          f"config.eval.translation.classifier_workdir={workdir!r} holds a {run.config.family} run, not a "
          "classifier; train one with configs/classifier.py."
      )
    self._params = capability.params(run.state)

    def read(params, images):
      images = pixels.rescale(images, pixel_range, capability.pixel_range)
      return jax.numpy.argmax(capability.classify(params, images), axis=-1), capability.features(params, images)

    self._read = jax.jit(read)  # The weights are an argument, not constants compiled into the program.
    self.name = f"genjax classifier ({run.config.data.name}, {workdir}, step {run.step})"

  def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class read in each image `[N]` and the penultimate features `[N, D]`."""
    classes, features = self._read(self._params, images)
    return np.asarray(classes), np.asarray(features)
