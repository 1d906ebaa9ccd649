"""Preprocessing on the device: raw examples (uint8 images as stored) -> what models see, inside jitted code.

Both input paths (the dataset on the device, or batches read on the host) deliver raw examples; this module turns
them into float32 pixels in `config.data.pixel_range`, binarised (`binarize`: none, dynamic, threshold) and, in
training, flipped and shifted (`random_flip`, `random_crop_padding`, reflect padding). Examples of 2-D points pass
through unchanged.

Every random choice of an example comes from its own key, derived from where it stands in the data stream (its
epoch and its position in that epoch's order; for evaluation, its index in the split), never from the batch it
lands in. A batch therefore preprocesses the same on 1 device or 8, in 1 process or N, read on the host or gathered
on the device, and a resumed run draws exactly what an unbroken run draws.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import pixels
from genjax.data import sources


@dataclasses.dataclass(frozen=True)
class Options:
  """The image options of `config.data`, hashable (a static argument under jit)."""

  binarize: str
  pixel_range: tuple[float, float]
  random_flip: bool
  random_crop_padding: int
  channels: int = 0
  patch_size: int = 0

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict) -> "Options | None":
    """The options of an image config; None for point data, which has none."""
    if "pixel_range" not in data_config:
      return None
    return cls(
        data_config.binarize,
        tuple(data_config.pixel_range),
        bool(data_config.random_flip),
        int(data_config.random_crop_padding),
        int(data_config.channels),
        int(data_config.patch_size),
    )


def train_example_keys(key: jax.Array, epochs: jax.Array, positions: jax.Array) -> jax.Array:
  """One key per training example: `fold_in(fold_in(key, epoch), position in the epoch's order)`."""
  fold = jax.vmap(lambda epoch, position: jax.random.fold_in(jax.random.fold_in(key, epoch), position))
  return fold(epochs.reshape(-1), positions.reshape(-1)).reshape(epochs.shape)


def eval_example_keys(key: jax.Array, indices: jax.Array) -> jax.Array:
  """One key per evaluation example: `fold_in(key, its index in the split)` (a fixed draw of the split)."""
  return jax.vmap(lambda index: jax.random.fold_in(key, index))(indices.reshape(-1)).reshape(indices.shape)


def apply(raw: dict[str, jax.Array], keys: jax.Array, options: Options | None, training: bool) -> dict[str, jax.Array]:
  """Preprocesses a batch of raw examples with any leading batch axes (`[B, ...]` or `[k, B, ...]`).

  Args:
    raw: "image" uint8 `[..., H, W, C]` (or "point" float32 `[..., D]`), "label" int32 `[...]` if labelled, and
      with patches (`options.patch_size`) each image's "size" `[..., 2]` inside its padding, which is consumed;
      other keys (bookkeeping such as "mask") pass through.
    keys: one key per example, `[...]` (see `train_example_keys`, `eval_example_keys`).
    options: the image options (None for points).
    training: whether to augment (flip, crop); binarisation applies in training and evaluation alike.

  Returns:
    The batch with "image" float32 in `options.pixel_range`.
  """
  if sources.IMAGE not in raw:
    return raw
  raw = dict(raw)
  images = raw.pop(sources.IMAGE)
  leading = images.shape[:-3]
  flat_images = images.reshape(-1, *images.shape[-3:])
  sizes = raw.pop(sources.SIZE, jnp.broadcast_to(jnp.array(images.shape[-3:-1]), (*leading, 2)))
  flat_sizes, flat_keys = sizes.reshape(-1, 2), keys.reshape(-1)
  one_image = lambda image, size, key: _one_image(image, size, key, options, training)
  processed = jax.vmap(one_image)(flat_images, flat_sizes, flat_keys)
  return {**raw, sources.IMAGE: processed.reshape(*leading, *processed.shape[1:])}


# ITU-R BT.601 luma, as PIL's convert("L") computes it; the weights sum to 1, so a grey image stored in three equal
# channels gives its value back.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # NumPy: a JAX array here would start the backend on import.


def _one_image(image: jax.Array, size: jax.Array, key: jax.Array, options: Options, training: bool) -> jax.Array:
  crop_key, flip_key, binarize_key, patch_key = jax.random.split(key, 4)
  image = image.astype(jnp.float32) / 255.0
  if options.patch_size:
    # A random patch in training, the central one in evaluation, inside the image's own size.
    room = jnp.maximum(size - options.patch_size, 0)
    corner = jax.random.randint(patch_key, (2,), 0, room + 1) if training else room // 2
    patch = (options.patch_size, options.patch_size, image.shape[-1])
    image = jax.lax.dynamic_slice(image, (corner[0], corner[1], 0), patch)
  if options.channels == 1 and image.shape[-1] == 3:
    image = (image @ _LUMA)[..., None]
  elif options.channels == 3 and image.shape[-1] == 1:
    image = jnp.repeat(image, 3, axis=-1)
  if training and options.random_crop_padding:
    pad = options.random_crop_padding
    height, width, channels = image.shape
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    top, left = jax.random.randint(crop_key, (2,), 0, 2 * pad + 1)
    image = jax.lax.dynamic_slice(padded, (top, left, 0), (height, width, channels))
  if training and options.random_flip:
    image = jnp.where(jax.random.bernoulli(flip_key), image[:, ::-1], image)
  if options.binarize == "dynamic":
    image = (jax.random.uniform(binarize_key, image.shape) < image).astype(jnp.float32)
  elif options.binarize == "threshold":
    image = (image > 0.5).astype(jnp.float32)
  return pixels.rescale(image, pixels.UNIT_RANGE, options.pixel_range)
