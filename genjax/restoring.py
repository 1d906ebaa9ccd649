"""A trained image-to-image network (a restorer, a translator) applied to whole images of any size: padding to what
the network needs, and tiles with overlap for large images, so that memory stays bounded whatever the image.

Every image is padded by `margin` pixels on each side by mirroring (and on the bottom and right up to the tile
grid); each tile of `tile` x `tile` input pixels goes through the network, and only its core, without the `margin`
on each side, is kept. The cores cover the image exactly once. An image that fits in one tile is one such tile of
its own size. So whole-image and tiled outputs agree exactly wherever the network's receptive field reaches no
further than `margin` pixels (DnCNN, the sub-pixel network), and up to the far-reaching context of a U-Net
otherwise; a network that normalises each image by its own statistics (instance normalisation: CycleGAN's
generators) normalises each tile by the tile's. Tiles start at multiples of the network's `multiple`, so pooling
stays aligned.
"""

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np

# restore.py reads images of up to 400 million pixels (20000 x 20000), above Pillow's decompression-bomb bound of
# about 179 million: large images are what tiling is for. Such an image takes 4.8 GB as float32 RGB, as much again
# mirrored and padded, and scale^2 times as much restored.
MAX_PIXELS = 400_000_000


@dataclasses.dataclass(frozen=True)
class Tiling:
  """`tile`: a tile's side in input pixels; `margin`: the context kept around each tile's core (the overlap of
  neighbouring tiles is twice it); `batch_size`: tiles restored at once."""

  tile: int = 256
  margin: int = 16
  batch_size: int = 8

  def aligned(self, multiple: int) -> "Tiling":
    """This tiling with its sides rounded up to multiples of `multiple`, the core at least one `multiple`."""
    margin = math.ceil(self.margin / multiple) * multiple
    tile = max(math.ceil(self.tile / multiple) * multiple, 2 * margin + multiple)
    return dataclasses.replace(self, tile=tile, margin=margin)


def apply_tiled(
    apply: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    image: np.ndarray,
    tiling: Tiling,
    multiple: int,
    scale: int = 1,
    mask: np.ndarray | None = None,
) -> np.ndarray:
  """The network's output for the whole of `image [H, W, C]` (a restorer's input floats in [0, 1], a translator's
  in its pixel range; `mask [H, W, 1]`, 1 where missing, for inpainting): `[scale * H, scale * W, C]`, not clipped.

  `apply(tiles [N, T, T, C], masks [N, T, T, 1] or None) -> [N, scale * T, scale * T, C]` runs the network on a
  batch of tiles of one size; `multiple` is what the network needs tile sides to be a multiple of.
  """
  tiling = tiling.aligned(multiple)
  height, width = image.shape[:2]
  margin = tiling.margin
  # One tile of the image's own (padded) size when it fits, else the configured tiles.
  tile_height = _fitted(height, margin, multiple) if height + 2 * margin <= tiling.tile else tiling.tile
  tile_width = _fitted(width, margin, multiple) if width + 2 * margin <= tiling.tile else tiling.tile
  rows, row_stride = _starts(height, tile_height, margin)
  columns, column_stride = _starts(width, tile_width, margin)
  padded_height, padded_width = rows[-1] + tile_height, columns[-1] + tile_width
  pad = ((margin, padded_height - height - margin), (margin, padded_width - width - margin), (0, 0))
  padded = np.pad(image, pad, mode="symmetric")
  padded_mask = None if mask is None else np.pad(mask, pad, mode="symmetric")
  corners = [(top, left) for top in rows for left in columns]
  output_image = np.zeros((scale * padded_height, scale * padded_width, image.shape[-1]), np.float32)
  for start in range(0, len(corners), tiling.batch_size):
    chunk = corners[start : start + tiling.batch_size]
    tiles = np.stack([padded[top : top + tile_height, left : left + tile_width] for top, left in chunk])
    tile_masks = None
    if padded_mask is not None:
      tile_masks = np.stack([padded_mask[top : top + tile_height, left : left + tile_width] for top, left in chunk])
    outputs = apply(*_full_batch(tiles, tile_masks, min(tiling.batch_size, len(corners))))
    for (top, left), output in zip(chunk, np.asarray(outputs)):
      core = output[scale * margin : scale * (margin + row_stride), scale * margin : scale * (margin + column_stride)]
      output_image[scale * top : scale * (top + row_stride), scale * left : scale * (left + column_stride)] = core
  return output_image[: scale * height, : scale * width]


def _fitted(side: int, margin: int, multiple: int) -> int:
  return math.ceil((side + 2 * margin) / multiple) * multiple


def _starts(side: int, tile: int, margin: int) -> tuple[list[int], int]:
  """The tiles' starts along one axis (in padded coordinates) and their stride, the core's length."""
  stride = tile - 2 * margin
  return [index * stride for index in range(math.ceil(side / stride))], stride


def _full_batch(tiles: np.ndarray, masks: np.ndarray | None, batch_size: int):
  """Pads a last, short batch with copies of its first tile, so that every call has one shape (one compilation)."""
  missing = batch_size - len(tiles)
  if missing > 0:
    tiles = np.concatenate([tiles, np.repeat(tiles[:1], missing, axis=0)])
    masks = None if masks is None else np.concatenate([masks, np.repeat(masks[:1], missing, axis=0)])
  return tiles, masks


def jitted_restore(built) -> Callable:
  """The run's `restore(state, tiles, masks)` on its mesh (see `_tiles_on_mesh`)."""
  return _tiles_on_mesh(built, jax.jit(built.trainer.restorer.restore, out_shardings=built.replicated))


def jitted_translate(built, direction: str) -> Callable:
  """The run's translation in `direction` as `translate(state, tiles, masks=None)` on its mesh (see
  `_tiles_on_mesh`)."""
  translate = jax.jit(built.trainer.translator.translate, static_argnums=2, out_shardings=built.replicated)
  return _tiles_on_mesh(built, lambda state, tiles, masks: translate(state, tiles, direction))


def _tiles_on_mesh(built, function: Callable) -> Callable:
  """`function(state, tiles, masks)` with the tiles (and masks) batch-sharded when the batch divides over the
  devices, else replicated; the result replicated."""
  devices = built.mesh.devices.size
  shards = devices // built.batch_sharding.shard_shape((devices,))[0]

  def run(state, tiles, masks=None):
    placement = built.batch_sharding if len(tiles) % shards == 0 else built.replicated
    tiles = jax.device_put(tiles, placement)
    masks = None if masks is None else jax.device_put(masks, placement)
    return function(state, tiles, masks)

  return run
