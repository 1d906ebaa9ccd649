"""Feature networks: the spaces in which FID, KID and precision/recall compare generated and real images.

- `classifier_network(workdir)`: a genjax classifier run (configs/classifier.py), the domain network for MNIST-like data,
  identified by its workdir, step and a hash of its weights;
- `inception_network(weights_path)`: the FID Inception-v3 with pytorch-fid's 2015-12-05 weights (`inception_weights` finds,
  verifies and loads them).

Each is a `FeatureNetwork` that maps images in any pixel range to features. The distances themselves are pure
functions in `genjax.metrics.feature_distances`.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from genjax import errors
from genjax import pixels
from genjax import runs
from genjax.feature_networks import inception_weights
from genjax.models import inception

NAMES = ("classifier", "inception")


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """`features(params, images [N, H, W, C] in pixel_range, pixel_range) -> [N, D]`, pure and deterministic.

  image_shape: the input shape the network needs, or None if it resizes any image itself.
  classify:    for a classifier, `(params, images, pixel_range) -> [N]` the class it reads in each image; else None.
  """

  name: str
  weights_sha256: str
  image_shape: tuple[int, ...] | None
  features: Callable[[Any, jax.Array, tuple[float, float]], jax.Array]
  params: Any
  classify: Callable[[Any, jax.Array, tuple[float, float]], jax.Array] | None = None


def params_sha256(params) -> str:
  """A hash of a parameter pytree's values (in its flattening order), recorded with the metrics it produced."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def classifier_network(workdir: str) -> FeatureNetwork:
  """The penultimate features of the genjax classifier run in `workdir` (at its latest checkpoint)."""
  run = runs.load(workdir)
  capability = run.experiment.trainer.features
  if capability is None:
    raise errors.UserError(
        f"--classifier_workdir={workdir!r} holds a {run.config.family} run, not a classifier; train one with "
        "configs/classifier.py."
    )

  def features(params, images, pixel_range):
    return capability.features(params, pixels.rescale(images, pixel_range, capability.pixel_range))

  def classify(params, images, pixel_range):
    logits = capability.classify(params, pixels.rescale(images, pixel_range, capability.pixel_range))
    return jax.numpy.argmax(logits, axis=-1)

  params = jax.device_get(capability.params(run.state))
  name = f"genjax classifier ({run.config.data.name}, {workdir}, step {run.step})"
  return FeatureNetwork(name, params_sha256(params), run.data.spec.data_shape, features, params, classify)


def inception_network(weights_path: str | None) -> FeatureNetwork:
  """The FID Inception-v3 (pool_3, 2048-d) with pytorch-fid's 2015-12-05 weights."""
  path = inception_weights.fid_inception_weights(weights_path, option_name="--inception_weights")
  variables = inception_weights.load_fid_inception_params(path)
  model = inception.FIDInceptionV3()

  def features(variables, images, pixel_range):
    return model.apply(variables, inception.fid_preprocess(images, pixel_range))

  name = "Inception-v3 FID 2015-12-05 (pytorch-fid weights)"
  return FeatureNetwork(name, inception_weights.FID_WEIGHTS_SHA256, None, features, variables)
