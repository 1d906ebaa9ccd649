"""The train split on the device: decoded once into uint8 arrays replicated over the mesh, and each step's batch
gathered there inside the jitted step, in the order of `pipeline` (so both paths give the same batches).

Per step nothing crosses from host to device: the step number (in the train state) fixes the batch. Once per epoch
the host computes the next epoch's order and puts it on the device with the epoch's first step and offset, so the
step's positions stay small integers (int32) however long the run.
"""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import errors
from genjax import sharding
from genjax.data import pipeline
from genjax.data import sources

# "auto" puts a split on the device when its raw bytes are at most this share of one device's memory (the rest is
# for the model, its activations and the optimiser) and at most config.data.on_device_max_bytes.
_SHARE_OF_DEVICE_MEMORY = 0.25


def split_bytes(data: sources.DataSource) -> int:
  """The raw size of the train split on the device: uint8 images (or float32 points) and int32 labels. Images of
  different sizes are stored padded (`sources.PaddedSplit`), so the first example's size is every example's."""
  image_bytes = np.asarray(data.train[0][data.spec.data_key]).size if data.train else 0
  example_bytes = image_bytes * (1 if data.spec.is_image else 4)
  return len(data.train) * (example_bytes + (4 if data.spec.has_labels else 0))


def device_memory_bytes(mesh: jax.sharding.Mesh) -> int | None:
  """The memory of one of this process's devices in the mesh, or None where the backend does not say (the CPU)."""
  stats = mesh.local_devices[0].memory_stats()
  return stats.get("bytes_limit") if stats else None


def fits(data: sources.DataSource, data_config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> bool:
  """Whether "auto" puts the train split on the device."""
  size, memory = split_bytes(data), device_memory_bytes(mesh)
  return size <= data_config.on_device_max_bytes and (memory is None or size <= _SHARE_OF_DEVICE_MEMORY * memory)


@flax.struct.dataclass
class DeviceFeed:
  """The train split on the device and what a step needs to gather its batch from it.

  examples:    the raw split, `[N, ...]` per key, replicated.
  orders:      `[E, N]` int32: the visiting orders of `epoch` and of the epochs after it that a step can reach.
  epoch, first_step, first_position: int32 scalars; step `first_step` starts at `first_position` of `epoch`.
  """

  examples: dict[str, jax.Array]
  orders: jax.Array
  epoch: jax.Array
  first_step: jax.Array
  first_position: jax.Array
  batches_per_step: int = flax.struct.field(pytree_node=False)
  batch_size: int = flax.struct.field(pytree_node=False)

  def raw_batch(self, step: jax.Array) -> dict[str, jax.Array]:
    """The raw batch `[k, B, ...]` of `step` (traced), with its examples' epochs and positions."""
    size = self.orders.shape[1]
    offsets = jnp.arange(self.batches_per_step * self.batch_size, dtype=jnp.int32)
    stream = self.first_position + (step - self.first_step) * self.batches_per_step * self.batch_size + offsets
    later_epoch, position = jnp.divmod(stream, size)
    indices = self.orders[later_epoch, position]
    shape = (self.batches_per_step, self.batch_size)
    raw = {key: values[indices].reshape(*shape, *values.shape[1:]) for key, values in self.examples.items()}
    raw[pipeline.EPOCH] = (self.epoch + later_epoch).reshape(shape)
    raw[pipeline.POSITION] = position.reshape(shape)
    return raw


class DeviceInput:
  """Feeds for any step, the split read and placed on the mesh once."""

  def __init__(self, data: sources.DataSource, stream: pipeline.Stream, mesh: jax.sharding.Mesh):
    size, memory = split_bytes(data), device_memory_bytes(mesh)
    if memory is not None and size > memory:
      raise errors.UserError(
          f"config.data.on_device=true, but the train split of {data.name!r} takes {size / 2**30:.2f} GiB and a "
          f"device has {memory / 2**30:.2f} GiB; set config.data.on_device to auto or false (the host path)."
      )
    self._replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    self._stream, self._size = stream, len(data.train)
    # A step that starts in an epoch reaches at most this many epochs (two, unless a step outnumbers the split).
    self._epochs_per_feed = stream.examples_per_step // self._size + 2
    raw = pipeline.read_examples(data.train, np.arange(self._size))
    self._examples = sharding.put(raw, self._replicated)
    self._feed, self._feed_epoch = None, None
    logging.info("The train split of %s is on the device: %.1f MiB per device.", data.name, size / 2**20)
    self.description = "on device"

  def feed(self, step: int) -> DeviceFeed:
    """The feed of any step (the one of its epoch, made when first asked for)."""
    first = step * self._stream.examples_per_step
    epoch = first // self._size
    if epoch != self._feed_epoch:
      epochs = range(epoch, epoch + self._epochs_per_feed)
      orders = np.stack([self._stream.epoch_order(e, self._size) for e in epochs])
      scalars = [np.int32(value) for value in (epoch, step, first - epoch * self._size)]
      orders, *scalars = sharding.put([orders, *scalars], self._replicated)
      shape = (self._stream.batches_per_step, self._stream.global_batch_size)
      self._feed = DeviceFeed(self._examples, orders, *scalars, *shape)
      self._feed_epoch = epoch
    return self._feed
