"""The "sample_quality" evaluation: FID, KID and precision/recall between N model images and N held-out real images,
in the feature space of a network (`config.eval.sample_quality.feature_network`: a genjax classifier run named by
`classifier_workdir`, or the FID Inception-v3).

The model's images come from whichever capability it has: a sampler's samples, a restorer's restorations of the
real images degraded as in training (scored against the clean originals), or a translator's translations (A to B)
of the eval split's first N inputs (scored against its first N targets, the B domain: translated horses against
real zebras). The real images are the first N (`config.eval.sample_quality.num_images`) of the eval split in its
fixed order (their "target" field for a translator), at full grey level (never binarised), so that every model of
a dataset is compared with the same real set. With `real_floor`, the first N training images are scored against
the same real set too (`real_floor_*`): what a model that reproduced the data distribution would score. For a
class-conditional sampler in a classifier's feature space, also `class_accuracy`: the share of samples that the
classifier reads as the class they were drawn for (what guidance trades FID for). The feature function is compiled
once, and the real features computed once, when the evaluator is built.
"""

import jax
import numpy as np

from genjax import errors
from genjax import feature_networks
from genjax import sampling
from genjax.data import sources
from genjax.evaluators import common
from genjax.metrics import feature_distances
from genjax.trainers import contract


def feature_network(options) -> feature_networks.FeatureNetwork:
  """The network that `config.eval.sample_quality` names."""
  if options.feature_network == "inception":
    return feature_networks.inception_network(options.inception_weights)
  if options.feature_network != "classifier":
    raise errors.UserError(
        f"config.eval.sample_quality.feature_network={options.feature_network!r} is not one of "
        f"{', '.join(feature_networks.NAMES)}."
    )
  if not options.classifier_workdir:
    raise errors.UserError(
        "FID, KID and precision/recall need a feature network: pass --classifier_workdir=RUN of a "
        "configs/classifier.py run on this kind of images (config.eval.sample_quality.classifier_workdir), or "
        "--feature_network=inception."
    )
  return feature_networks.classifier_network(options.classifier_workdir)


def real_images(
    context: common.Context, num_images: int, split: str = "eval", field: str | None = None
) -> np.ndarray:
  """The first `num_images` of a split in its fixed order, in the run's pixel range, never binarised: of the image
  field `field`, by default the one the model's images are compared with (a translator's targets, else the
  images)."""
  if field is None:
    field = sources.TARGET if context.experiment.trainer.translator is not None else sources.IMAGE
  data_config = context.config.data
  source = context.data.eval if split == "eval" else context.data.train
  if num_images > len(source):
    split_name = data_config.eval_split if split == "eval" else data_config.train_split
    raise errors.UserError(
        f"Asked for {num_images} real images, but the {data_config.name} split {split_name!r} has {len(source)}; "
        "lower --num_images."
    )
  return sampling.first_images(context.experiment, source, num_images, binarized=False, field=field)


class SampleQuality:

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    trainer, options = context.experiment.trainer, context.options_of("sample_quality")
    return common.requirements(
        (context.spec.is_image, f"compares images; {context.config.data.name!r} has none"),
        (
            trainer.sampler is not None or trainer.restorer is not None or trainer.translator is not None,
            f"needs images made by the model; a {context.config.family} model neither samples, restores nor "
            "translates",
        ),
        (
            trainer.sampler is not None or not context.config.data.patch_size,
            "compares a model's outputs with whole eval images of one size; this run trains on patches of images "
            "of any size (score it with the 'restoration' or 'translation' evaluation)",
        ),
        (
            # A translator is scored by the 'translation' evaluation in any case; FID of its outputs is asked for
            # by naming the feature space.
            trainer.translator is None or options.classifier_workdir or options.feature_network == "inception",
            "scores a translator's outputs in a feature space named for it (--classifier_workdir, or "
            "--feature_network=inception)",
        ),
    )

  def __init__(self, context: common.Context):
    options = context.options_of("sample_quality")
    self._context = context
    self._num_images = options.num_images or len(context.data.eval)
    self._network = feature_network(options)
    real = real_images(context, self._num_images)
    self._model_images = _model_images(context, real)
    if self._network.image_shape is not None and tuple(real.shape[1:]) != tuple(self._network.image_shape):
      raise errors.UserError(
          f"The feature network {self._network.name} takes {self._network.image_shape} images; this run's are "
          f"{real.shape[1:]}."
      )
    pixel_range = tuple(context.config.data.pixel_range)

    def features_in_run_range(params, images):
      return self._network.features(params, images, pixel_range)

    self._features = common.map_over_images(context, features_in_run_range)
    self._labels, self._classes = None, None
    if context.experiment.trainer.sampler is not None and self._network.classify is not None:
      self._labels = sampling.generated_labels(context.experiment, self._num_images, context.options.batch_size)
      classify = self._network.classify
      self._classes = common.map_over_images(context, lambda params, images: classify(params, images, pixel_range))
    self._real_features = self._features(self._network.params, real)
    self._floor = None
    if options.real_floor:
      training_images = real_images(context, self._num_images, "train")
      self._floor = _distances(self._real_features, self._features(self._network.params, training_images), context.seed)
    self.protocol = {
        "feature_network": self._network.name,
        "feature_weights_sha256": self._network.weights_sha256,
        "n_real": self._num_images,
        "n_fake": self._num_images,
        "real_split": (
            f"{context.config.data.name}/{context.config.data.eval_split} (first {self._num_images}, not binarised)"
        ),
        "resize": "bilinear to 299x299 (pytorch-fid)" if self._network.image_shape is None else "none",
        "model_images": _MODEL_IMAGES[_capability(context.experiment.trainer)],
        "seed": context.seed,
        **(context.experiment.trainer.sampler.protocol if context.experiment.trainer.sampler is not None else {}),
        "kid": "unbiased MMD^2, cubic kernel, 100 subsets of min(1000, N // 2) images",
        "precision_recall": "k = 3 nearest neighbours (Kynkaanniemi et al. 2019)",
    }
    if self._labels is not None:
      self.protocol["class_accuracy"] = "share of samples the feature classifier reads as the class drawn for"

  def run(self, state, step: int):
    del step
    fakes = self._model_images(state, self._num_images)
    metrics = _distances(self._real_features, self._features(self._network.params, fakes), self._context.seed)
    if self._labels is not None:
      metrics["class_accuracy"] = float(np.mean(self._classes(self._network.params, fakes) == self._labels))
    if self._floor is not None:
      metrics.update({f"real_floor_{name}": value for name, value in self._floor.items()})
    return metrics, {}


_MODEL_IMAGES = {
    "sampler": "samples",
    "restorer": "restorations of the degraded real images",
    "translator": "translations a_to_b of the eval inputs (the train state's generator)",
}


def _capability(trainer) -> str:
  return "sampler" if trainer.sampler is not None else "restorer" if trainer.restorer is not None else "translator"


def _model_images(context: common.Context, real: np.ndarray):
  """`(state, n) -> [n, H, W, C]` images of the model, from the capability it has: samples (batch i with
  `fold_in(key(seed), i)`), restorations of `real` degraded as in training (image i with `fold_in(key(seed), i)`),
  or translations of the first n eval inputs."""
  built, key, batch_size = context.experiment, jax.random.key(context.seed), context.options.batch_size
  capability = _capability(built.trainer)
  if capability == "sampler":
    return lambda state, num_images: sampling.generate(built, state, num_images, key, batch_size)
  if capability == "translator":
    return _translations(context, len(real))
  restorer = built.trainer.restorer

  def restore(state, images, keys):
    degraded, mask = jax.vmap(lambda image, image_key: restorer.degrade(image[None], image_key))(images, keys)
    return restorer.restore(state, degraded[:, 0], None if mask is None else mask[:, 0])

  jitted = jax.jit(restore, out_shardings=built.replicated)
  image_keys = jax.vmap(lambda index: jax.random.fold_in(key, index))(np.arange(len(real)))

  def restorations(state, num_images):
    return np.concatenate(
        [
            np.asarray(jitted(state, real[start : start + batch_size], image_keys[start : start + batch_size]))
            for start in range(0, num_images, batch_size)
        ]
    )

  return restorations


def _translations(context: common.Context, num_inputs: int):
  """`(state, n) -> [n, H, W, C]`: the first n eval inputs translated a_to_b, in batches, each mirrored at its bottom
  and right edges up to the generator's multiple and cut back (as translate.py does)."""
  built, batch_size = context.experiment, context.options.batch_size
  translator = built.trainer.translator
  inputs = real_images(context, num_inputs, field=sources.IMAGE)
  height, width = inputs.shape[1:3]
  padding = ((0, 0), (0, -height % translator.multiple), (0, -width % translator.multiple), (0, 0))
  inputs = np.pad(inputs, padding, "symmetric")
  translate = jax.jit(translator.translate, static_argnums=2, out_shardings=built.replicated)

  def translations(state, num_images):
    batches = [
        np.asarray(translate(state, inputs[start : start + batch_size], contract.A_TO_B))
        for start in range(0, num_images, batch_size)
    ]
    return np.concatenate(batches)[:, :height, :width]

  return translations


def _distances(real_features: np.ndarray, other_features: np.ndarray, seed: int) -> dict[str, float]:
  # Subsets of at most half the images: with subsets of all N (N <= 1000 here) every subset would be the same
  # and the standard deviation meaningless.
  subset_size = min(1000, len(real_features) // 2)
  kid_mean, kid_std = feature_distances.kernel_inception_distance(
      real_features, other_features, subset_size=subset_size, seed=seed
  )
  precision, recall = feature_distances.precision_recall(real_features, other_features)
  return {
      "fid": feature_distances.frechet_distance_from_features(real_features, other_features),
      "kid": kid_mean,
      "kid_std": kid_std,
      "precision": precision,
      "recall": recall,
  }
