"""Scoring a restored run (`runs.Run`) on held-out data, with the protocol that produced each number.

- Generators (GAN, VAE decoder): FID, KID and precision/recall between N generated and N held-out real images, in the
  feature space of a network: a genjax-trained classifier (the domain network for MNIST-like data) or the FID
  Inception-v3. The real images are the first N of the eval split in its fixed order, at full grey level (never
  binarised), so that every model of a dataset is compared with the same real set.
- VAE: the negative ELBO and the importance-weighted bound on -log p(x), in nats per image and bits per dimension.
- AE and VAE: reconstruction MSE, PSNR and SSIM over the eval split.

Feature extraction runs jitted with the batch sharded over the run's mesh; batches are padded to the global batch
size and the padding dropped, so N need not divide the device count.
"""

import dataclasses
import hashlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax import errors
from genjax import runs
from genjax import sampling
from genjax import sharding
from genjax.data import catalog
from genjax.data import pipeline
from genjax.metrics import feature_distances


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """A feature network as evaluation uses it: `features(images [N, H, W, C] in pixel_range) -> [N, D]`."""

  name: str
  weights_sha256: str
  image_shape: tuple[int, ...] | None  # The input shape it needs, or None if it resizes any image itself.
  features: Callable[[jax.Array, tuple[float, float]], jax.Array]


def params_sha256(params) -> str:
  """A hash of a parameter pytree's values (in its flattening order), recorded with the metrics it produced."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def map_batches(
    run: runs.Run, fn: Callable, params, images: np.ndarray, batch_size: int, key: jax.Array | None = None
) -> np.ndarray:
  """`fn(params, batch)` (or `fn(params, batch, fold_in(key, batch_index))` with a key) over `images`, in batches
  sharded over the run's mesh and padded to `batch_size`; returns the outputs of the real images only."""
  batch_sharding = sharding.batch_sharding(run.mesh, run.config.mesh)
  replicated = sharding.replicated(run.mesh)
  sharding.check_batch_size(batch_size, run.mesh, run.config.mesh, "--batch_size")
  in_shardings = (replicated, batch_sharding) + ((replicated,) if key is not None else ())
  apply = jax.jit(fn, in_shardings=in_shardings, out_shardings=replicated)
  outputs = []
  for index, start in enumerate(range(0, len(images), batch_size)):
    batch = images[start : start + batch_size]
    padding = batch_size - len(batch)
    padded = np.concatenate([batch, np.zeros((padding, *batch.shape[1:]), batch.dtype)]) if padding else batch
    arguments = (params, jax.device_put(padded, batch_sharding))
    arguments += (jax.random.fold_in(key, index),) if key is not None else ()
    outputs.append(np.asarray(apply(*arguments))[: len(batch)])
  return np.concatenate(outputs)


def real_images(run: runs.Run, num_images: int, split: str | None = None) -> np.ndarray:
  """The first `num_images` of `split` (the eval split by default) in its fixed order, in the run's pixel range,
  never binarised."""
  data_config = run.config.data.copy_and_resolve_references()
  data_config.binarize = "none"
  split = split or data_config.eval_split
  source = (
      run.eval_source
      if split == data_config.eval_split
      else catalog.open_split(data_config.name, split, data_config.data_dir, data_config.download)
  )
  if num_images > len(source):
    raise errors.UserError(
        f"Asked for {num_images} real images, but the {data_config.name} split {split!r} has {len(source)}; lower "
        "--num_images."
    )
  batch = next(pipeline.eval_batches(source, data_config, num_images, run.config.seed))
  return batch["image"][:num_images]


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


def sample_quality(
    run: runs.Run,
    network: FeatureNetwork,
    num_images: int,
    seed: int,
    batch_size: int,
    params,
    real_floor: bool = False,
) -> tuple[dict[str, float], dict]:
  """FID, KID (mean and standard deviation over subsets) and precision/recall (k = 3) of `num_images` samples
  against as many real images, and the protocol that fixes them.

  With `real_floor`, the same metrics of the first `num_images` training images against the same held-out images
  come too (`real_floor_fid`, ...): what a model that reproduced the data distribution would score.
  """
  real = real_images(run, num_images)
  if network.image_shape is not None and tuple(real.shape[1:]) != tuple(network.image_shape):
    raise errors.UserError(
        f"The feature network {network.name} takes {network.image_shape} images; this run's are {real.shape[1:]}."
    )
  fakes = sampling.generate(run, num_images, jax.random.key(seed), batch_size)
  pixel_range = tuple(run.config.data.pixel_range)
  features = lambda params, images: network.features(params, images, pixel_range)
  real_features = map_batches(run, features, params, real, batch_size)
  metrics = _distances(real_features, map_batches(run, features, params, fakes, batch_size), seed)
  if real_floor:
    train_images = real_images(run, num_images, run.config.data.train_split)
    floor = _distances(real_features, map_batches(run, features, params, train_images, batch_size), seed)
    metrics.update({f"real_floor_{name}": value for name, value in floor.items()})
  protocol = {
      "feature_network": network.name,
      "feature_weights_sha256": network.weights_sha256,
      "n_real": num_images,
      "n_fake": num_images,
      "real_split": f"{run.config.data.name}/{run.config.data.eval_split} (first {num_images}, not binarised)",
      "resize": "bilinear to 299x299 (pytorch-fid)" if network.image_shape is None else "none",
      "seed": seed,
      "kid": "unbiased MMD^2, cubic kernel, 100 subsets of min(1000, N // 2) images",
      "precision_recall": "k = 3 nearest neighbours (Kynkaanniemi et al. 2019)",
  }
  return metrics, protocol


def reconstruction_quality(run: runs.Run, batch_size: int) -> dict[str, float]:
  """Mean squared error, PSNR (dB) and SSIM of the reconstructions of the whole eval split (per-image values
  averaged; PSNR of an exact reconstruction is capped, see `image_quality`)."""
  from genjax.metrics import image_quality

  pixel_range = tuple(run.config.data.pixel_range)
  reconstruct = run.trainer.reconstruct

  def per_image(state, images):
    reconstructions = reconstruct(state, images)
    return jnp.stack(
        [
            image_quality.mean_squared_error(images, reconstructions),
            image_quality.psnr(images, reconstructions, pixel_range),
            image_quality.ssim(images, reconstructions, pixel_range),
        ],
        axis=-1,
    )

  values = map_batches(run, per_image, run.state, _eval_split(run), batch_size)
  return dict(zip(("mse", "psnr", "ssim"), map(float, values.mean(axis=0))))


def _eval_split(run: runs.Run) -> np.ndarray:
  """The whole eval split as the model saw it in training's evaluation (binarised with its fixed eval draw)."""
  batch = next(pipeline.eval_batches(run.eval_source, run.config.data, len(run.eval_source), run.config.seed))
  return batch["image"]


def likelihood_bounds(run: runs.Run, num_samples: int, batch_size: int, seed: int) -> dict[str, float]:
  """A VAE's negative ELBO and `num_samples`-sample importance-weighted bound on -log p(x), in nats per image and
  bits per dimension, averaged over the eval split as the model sees it (with its fixed eval binarisation)."""
  from genjax.trainers import vae

  if num_samples < 1:
    raise errors.UserError(f"--iwae_samples={num_samples} must be at least 1.")
  bounds = vae.make_likelihood_evaluator(run.config, run.example_shapes)
  names = ("neg_elbo_nats", "neg_elbo_bits_per_dim", "iwae_nats", "iwae_bits_per_dim")

  def per_image(state, images, key):
    values = bounds(state.params, images, key, num_samples)
    return jnp.stack([values[name] for name in names], axis=-1)

  values = map_batches(run, per_image, run.state, _eval_split(run), batch_size, jax.random.key(seed))
  return dict(zip(names, map(float, values.mean(axis=0))))


def classifier_network(workdir: str) -> tuple[FeatureNetwork, dict]:
  """The penultimate features of a genjax classifier run (configs/classifier.py), and its parameters."""
  from genjax.trainers import classifier

  classifier_run = runs.load(workdir)
  if classifier_run.config.family != "classifier":
    raise errors.UserError(
        f"--classifier_workdir={workdir!r} holds a {classifier_run.config.family} run, not a classifier; train one "
        "with configs/classifier.py."
    )
  features_of = classifier.feature_fn(classifier_run.config, classifier_run.example_shapes)
  classifier_range = tuple(classifier_run.config.data.pixel_range)

  def features(params, images, pixel_range):
    return features_of(params, _rescale(images, pixel_range, classifier_range))

  params = classifier_run.state.params
  name = f"genjax classifier ({classifier_run.config.data.name}, {workdir}, step {classifier_run.step})"
  network = FeatureNetwork(name, params_sha256(params), classifier_run.example_shapes["image"], features)
  return network, jax.device_get(params)


def inception_network(weights_path: str | None) -> tuple[FeatureNetwork, dict]:
  """The FID Inception-v3 (pool_3, 2048-d) with pytorch-fid's 2015-12-05 weights, and its variables."""
  from genjax.metrics import inception_weights
  from genjax.models import inception

  path = inception_weights.fid_inception_weights(weights_path, option_name="--inception_weights")
  variables = inception_weights.load_fid_inception_params(path)
  model = inception.FIDInceptionV3()

  def features(variables, images, pixel_range):
    return model.apply(variables, inception.fid_preprocess(images, pixel_range))

  sha256 = inception_weights.FID_WEIGHTS_SHA256
  return FeatureNetwork("Inception-v3 FID 2015-12-05 (pytorch-fid weights)", sha256, None, features), variables


def _rescale(images: jax.Array, source_range, target_range) -> jax.Array:
  (source_low, source_high), (target_low, target_high) = source_range, target_range
  return (images - source_low) / (source_high - source_low) * (target_high - target_low) + target_low


_METRIC_DESCRIPTIONS = {
    "fid": "FID (lower is better)",
    "kid": "KID, unbiased MMD^2 (lower is better)",
    "kid_std": "KID standard deviation over subsets",
    "precision": "precision: samples inside the real manifold",
    "recall": "recall: real images inside the sample manifold",
    "neg_elbo_nats": "negative ELBO, nats per image",
    "neg_elbo_bits_per_dim": "negative ELBO, bits per dimension",
    "iwae_nats": "importance-weighted bound on -log p(x), nats per image",
    "iwae_bits_per_dim": "importance-weighted bound on -log p(x), bits per dimension",
    "mse": "reconstruction mean squared error per pixel",
    "psnr": "reconstruction PSNR, dB",
    "ssim": "reconstruction SSIM",
}


def summary_markdown(run: runs.Run, metrics: dict[str, float], protocol: dict) -> str:
  """A short human-readable report of `metrics` and `protocol`."""
  lines = [f"# Evaluation of {run.workdir} at step {run.step}", "", f"{run.config.family} model.", ""]
  lines += ["| metric | value |", "|---|---|"]
  lines += [f"| {_METRIC_DESCRIPTIONS.get(name, name)} | {value:.6g} |" for name, value in metrics.items()]
  lines += ["", "## Protocol", ""]
  lines += [f"- {name}: {value}" for name, value in protocol.items()]
  return "\n".join(lines) + "\n"
