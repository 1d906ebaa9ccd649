"""Preprocessing on the device: raw examples (uint8 images as stored) -> what models see, inside jitted code.

Both input paths (the dataset on the device, or batches read on the host) deliver raw examples; this module turns
them into float32 pixels in `config.data.pixel_range`, binarised (`binarize`: none, dynamic, threshold) and, in
training, flipped and shifted (`random_flip`, `random_crop_padding`, reflect padding). Every image field of the
spec (an input and its target, say) is treated alike, and the geometric draws (flip, shift, patch corner) are made
once per example and shared by all its image fields, so a pair stays aligned pixel for pixel; dynamic binarisation
draws per field. Examples of 2-D points pass through unchanged.

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
  """The image options of `config.data` and the image fields they apply to, hashable (a static argument under
  jit)."""

  binarize: str
  pixel_range: tuple[float, float]
  random_flip: bool
  random_crop_padding: int
  channels: int = 0
  patch_size: int = 0
  image_fields: tuple[str, ...] = (sources.IMAGE,)

  @classmethod
  def from_config(cls, data_config: ml_collections.ConfigDict, spec: sources.ExampleSpec) -> "Options | None":
    """The options of an image config for data of `spec`; None for point data, which has none."""
    if not spec.is_image or "pixel_range" not in data_config:
      return None
    return cls(
        data_config.binarize,
        tuple(data_config.pixel_range),
        bool(data_config.random_flip),
        int(data_config.random_crop_padding),
        int(data_config.channels),
        int(data_config.patch_size),
        spec.image_fields,
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
    raw: the image fields `options.image_fields` uint8 `[..., H, W, C]` (one height and width per example), any
      other fields ("label" int32 `[...]`, "point" float32 `[..., D]`), and with patches (`options.patch_size`)
      the images' "size" `[..., 2]` inside their padding, which is consumed; fields other than images (labels,
      points, bookkeeping such as "mask") pass through.
    keys: one key per example, `[...]` (see `train_example_keys`, `eval_example_keys`).
    options: the image options (None for points).
    training: whether to augment (flip, crop); binarisation applies in training and evaluation alike.

  Returns:
    The batch with every image field float32 in `options.pixel_range`.
  """
  if options is None:
    return raw
  raw = dict(raw)
  # The fields present: all of the spec's in training, perhaps a selection in evaluation (the images alone).
  images = {name: raw.pop(name) for name in options.image_fields if name in raw}
  first = next(iter(images.values()))
  leading = first.shape[:-3]
  flat_images = {name: image.reshape(-1, *image.shape[-3:]) for name, image in images.items()}
  sizes = raw.pop(sources.SIZE, jnp.broadcast_to(jnp.array(first.shape[-3:-1]), (*leading, 2)))
  flat_sizes, flat_keys = sizes.reshape(-1, 2), keys.reshape(-1)
  one_example = lambda example, size, key: _one_example(example, size, key, options, training)
  processed = jax.vmap(one_example)(flat_images, flat_sizes, flat_keys)
  return {**raw, **{name: image.reshape(*leading, *image.shape[1:]) for name, image in processed.items()}}


# ITU-R BT.601 luma, as PIL's convert("L") computes it; the weights sum to 1, so a grey image stored in three equal
# channels gives its value back.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # NumPy: a JAX array here would start the backend on import.


def _one_example(
    images: dict[str, jax.Array], size: jax.Array, key: jax.Array, options: Options, training: bool
) -> dict[str, jax.Array]:
  """One example's image fields, with one draw of each geometric choice for all of them."""
  crop_key, flip_key, binarize_key, patch_key = jax.random.split(key, 4)
  corner = shift = flip = None
  if options.patch_size:
    # A random patch in training, the central one in evaluation, inside the images' own size.
    room = jnp.maximum(size - options.patch_size, 0)
    corner = jax.random.randint(patch_key, (2,), 0, room + 1) if training else room // 2
  if training and options.random_crop_padding:
    shift = jax.random.randint(crop_key, (2,), 0, 2 * options.random_crop_padding + 1)
  if training and options.random_flip:
    flip = jax.random.bernoulli(flip_key)
  # The first field keeps the example's own binarisation key (so a single image draws as it always has); the
  # others fold in their place in the spec.
  place = {name: index for index, name in enumerate(options.image_fields)}
  field_key = lambda name: jax.random.fold_in(binarize_key, place[name]) if place[name] else binarize_key
  return {name: _one_image(image, corner, shift, flip, field_key(name), options) for name, image in images.items()}


def _one_image(
    image: jax.Array,
    corner: jax.Array | None,
    shift: jax.Array | None,
    flip: jax.Array | None,
    binarize_key: jax.Array,
    options: Options,
) -> jax.Array:
  image = image.astype(jnp.float32) / 255.0
  if corner is not None:
    patch = (options.patch_size, options.patch_size, image.shape[-1])
    image = jax.lax.dynamic_slice(image, (corner[0], corner[1], 0), patch)
  if options.channels == 1 and image.shape[-1] == 3:
    image = (image @ _LUMA)[..., None]
  elif options.channels == 3 and image.shape[-1] == 1:
    image = jnp.repeat(image, 3, axis=-1)
  if shift is not None:
    pad = options.random_crop_padding
    height, width, channels = image.shape
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    image = jax.lax.dynamic_slice(padded, (shift[0], shift[1], 0), (height, width, channels))
  if flip is not None:
    image = jnp.where(flip, image[:, ::-1], image)
  if options.binarize == "dynamic":
    image = (jax.random.uniform(binarize_key, image.shape) < image).astype(jnp.float32)
  elif options.binarize == "threshold":
    image = (image > 0.5).astype(jnp.float32)
  return pixels.rescale(image, pixels.UNIT_RANGE, options.pixel_range)
