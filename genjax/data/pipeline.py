"""How raw training examples reach the device, in one global order that the step number fixes, and the host-side
reading of evaluation batches.

The order (`Stream`): epoch e visits the train split in a permutation seeded by (seed, e); the stream is the epochs
one after another, and train step s takes stream positions [s * k * B, (s + 1) * k * B) as its k stacked batches of
B. Every example appears once per epoch, and one process or many, one device or many, read the same examples at
every step. The input's only state is the step, so nothing of it is checkpointed and a resumed run continues
exactly. An unpaired split (`sources.UnpairedSplit`) has two sides that the stream visits each in its own order:
side A as above, side B in permutations seeded by (seed, e, 1) of its own epochs, so every example of each side
appears once per epoch of that side and the two orders are independent.

Examples are read by their spec (`read_examples`): exactly the spec's fields are stacked, and an example that holds
a field its spec does not declare, or lacks one it does, is refused by name.

Two paths deliver the same raw batches (uint8 images as stored; see `preprocess` for what happens to them on the
device), and a jitted train step takes either as its `feed`:
- `DeviceInput`: the split lives on the device and each step gathers its batch there (no host work per step);
  chosen by `config.data.on_device` when the split fits (see `open_train_input`). Per step nothing crosses from host
  to device: the step number (in the train state) fixes the batch. Once per epoch the host computes the next
  epoch's order and puts it on the device with the epoch's first step and offset, so the step's positions stay
  small integers (int32) however long the run.
- `HostInput`: each step's batch is read on the host, vectorised over the batch, in grain worker processes
  (`config.data.num_workers`, -1: one per spare core) or threads, and put on the device a few steps ahead by a
  background thread, so host work overlaps the step.

Everything here works on any random-access split (TFDS data sources, image folders, the 2-D mixtures, in-memory
lists).
"""

import dataclasses
import os
from collections.abc import Iterator, Sequence

import flax
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from genjax import errors
from genjax import sharding
from genjax.data import sources

# Bookkeeping arrays of a raw train batch: where each example stands in the stream (its random draws come from it).
EPOCH, POSITION = "epoch", "position"
# Bookkeeping arrays of a raw evaluation batch: each example's index in the split, and 1 for real examples, 0 for
# the padding of the last batch.
INDEX, MASK = "index", "mask"

ON_DEVICE_MODES = ("auto", "true", "false")
# "auto" puts a split on the device when its raw bytes are at most this share of one device's memory (the rest is
# for the model, its activations and the optimiser) and at most config.data.on_device_max_bytes.
_SHARE_OF_DEVICE_MEMORY = 0.25
# Prefetched global batches waiting for the step (host path).
_DEVICE_PREFETCH = 2


@dataclasses.dataclass(frozen=True)
class Stream:
  """A run's stream of training examples: the seed of its epochs' orders, and what one step takes from it,
  `batches_per_step` (k) batches of `global_batch_size` (B) examples."""

  seed: int
  batches_per_step: int
  global_batch_size: int

  @property
  def examples_per_step(self) -> int:
    return self.batches_per_step * self.global_batch_size

  def epoch_order(self, epoch: int, size: int, side: int = 0) -> np.ndarray:
    """The order `[size]` int32 in which epoch `epoch` visits a split of `size` examples (side `side` of an
    unpaired split: side 0 is any split's own order)."""
    seed = [self.seed, epoch, side] if side else [self.seed, epoch]
    return np.random.default_rng(seed).permutation(size).astype(np.int32)

  def positions(self, step: int, process_index: int = 0, process_count: int = 1) -> np.ndarray:
    """Stream positions `[k, B / process_count]` (int64) of a process's share of train step `step`."""
    local = local_batch_size(self.global_batch_size, process_count)
    first = step * self.examples_per_step + process_index * local
    return first + np.arange(self.batches_per_step)[:, None] * self.global_batch_size + np.arange(local)[None, :]


def local_batch_size(global_batch_size: int, process_count: int) -> int:
  if global_batch_size % process_count:
    raise errors.UserError(
        f"The global batch size {global_batch_size} does not divide evenly over {process_count} processes."
    )
  return global_batch_size // process_count


def read_examples(source: Sequence, indices: np.ndarray, spec: sources.ExampleSpec) -> dict[str, np.ndarray]:
  """The raw examples `source[indices]` stacked into arrays of `indices.shape + example shape`, one per field of
  `spec` (one read of the whole batch where the source offers it); labels and sizes as int32.

  Raises `UserError`, naming the fields, for an example that holds a field `spec` does not declare or lacks one it
  declares: a field is never dropped on the way to a trainer.
  """
  flat = [int(index) for index in indices.reshape(-1)]
  examples = source.__getitems__(flat) if hasattr(source, "__getitems__") else [source[index] for index in flat]
  declared = set(spec.fields)
  for example in examples:
    if set(example) != declared:
      undeclared, missing = sorted(set(example) - declared), sorted(declared - set(example))
      problems = [f"holds field(s) {undeclared} that the data's spec does not declare"] if undeclared else []
      problems += [f"lacks field(s) {missing} that the spec declares"] if missing else []
      raise errors.UserError(
          f"An example {' and '.join(problems)} (the spec's fields: {list(spec.fields)}). Declare every field in "
          "the source's ExampleSpec, or read a selection of fields (sources.SelectedSplit)."
      )
  arrays = {name: np.stack([np.asarray(example[name]) for example in examples]) for name in spec.fields}
  for name, field in spec.fields.items():
    if field.kind in (sources.Kind.LABEL, sources.Kind.SIZE):
      arrays[name] = arrays[name].astype(np.int32)
  return {name: array.reshape(*indices.shape, *array.shape[1:]) for name, array in arrays.items()}


def _sides(source: Sequence, spec: sources.ExampleSpec) -> tuple[tuple[Sequence, sources.ExampleSpec], ...]:
  """The parts of a split that the stream visits each in its own order, with the spec of their fields: an unpaired
  split's two sides, or the split itself."""
  if isinstance(source, sources.UnpairedSplit):
    return tuple((side, spec.only(names)) for side, names in zip(source.sides, source.side_fields))
  return ((source, spec),)


class StreamReader:
  """Reads a process's share of any train step's raw batch from a split of `spec`, with each example's epoch and
  position (picklable, for worker processes). By default the share of this process."""

  def __init__(
      self,
      source: Sequence,
      spec: sources.ExampleSpec,
      stream: Stream,
      process_index: int | None = None,
      process_count: int | None = None,
  ):
    self._sides = _sides(source, spec)
    self._stream = stream
    self._process_index = jax.process_index() if process_index is None else process_index
    self._process_count = jax.process_count() if process_count is None else process_count
    self._orders = [{} for _ in self._sides]

  def _order(self, side: int, epoch: int) -> np.ndarray:
    orders = self._orders[side]
    if epoch not in orders:
      # Steps ask for their epoch and the next: older orders are never needed again.
      orders = self._orders[side] = {kept: order for kept, order in orders.items() if kept >= epoch - 1}
      orders[epoch] = self._stream.epoch_order(epoch, len(self._sides[side][0]), side)
    return orders[epoch]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    positions = self._stream.positions(step, self._process_index, self._process_count)
    raw = {}
    for side, (split, spec) in enumerate(self._sides):
      epochs, within = np.divmod(positions, len(split))
      indices = np.empty_like(within)
      for epoch in np.unique(epochs):  # Two at most, unless a step outnumbers the split.
        in_epoch = epochs == epoch
        indices[in_epoch] = self._order(side, int(epoch))[within[in_epoch]]
      raw.update(read_examples(split, indices, spec))
      if side == 0:  # An example's place in the stream is its first side's.
        raw[EPOCH], raw[POSITION] = epochs.astype(np.int32), within.astype(np.int32)
    return raw


@flax.struct.dataclass
class HostFeed:
  """A train step's raw batch read on the host: global arrays `[k, B, ...]` sharded along B."""

  raw: dict[str, jax.Array]

  def raw_batch(self, step: jax.Array) -> dict[str, jax.Array]:
    del step  # Read for this step already.
    return self.raw


class HostInput:
  """Raw train batches read on the host from step `start_step` on, `HostFeed`s prefetched onto the device."""

  def __init__(
      self,
      data: sources.DataSource,
      data_config: ml_collections.ConfigDict,
      stream: Stream,
      batch_sharding: jax.sharding.NamedSharding,
      start_step: int,
  ):
    reader = StreamReader(data.train, data.spec, stream)
    # Steps are numbered from start_step; the stream has no end (the loop stops at total_steps).
    steps = grain.MapDataset.range(start_step, np.iinfo(np.int64).max).map(reader)
    num_workers = _num_workers(data_config.num_workers)
    if num_workers:
      batches = steps.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    else:
      # Threads: image decoding releases the GIL for much of its time.
      batches = steps.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
    to_device = lambda raw: HostFeed(sharding.to_global_batch(raw, batch_sharding))
    self._feeds = iter(
        grain.experimental.ThreadPrefetchIterDataset(batches.map(to_device), prefetch_buffer_size=_DEVICE_PREFETCH)
    )
    self.description = f"host ({num_workers} worker processes)" if num_workers else "host (threads)"

  def feed(self, step: int) -> HostFeed:
    del step  # The next one in order: steps are consumed one by one from start_step.
    return next(self._feeds)


def _num_workers(configured: int) -> int:
  """-1: a worker process per core beyond the two that the training process uses, at most 8."""
  if configured >= 0:
    return configured
  return max(0, min(8, (os.cpu_count() or 1) - 2))


def split_bytes(data: sources.DataSource) -> int:
  """The raw size of the train split on the device, every field counted (uint8 images and float32 points as
  stored, int32 labels and sizes). Images of different sizes are stored padded (`sources.PaddedSplit`), so the
  first example's size is every example's."""
  total = 0
  for split, spec in _sides(data.train, data.spec):
    if not len(split):
      continue
    first = split[0]
    example_bytes = 0
    for name, field in spec.fields.items():
      if field.kind in (sources.Kind.LABEL, sources.Kind.SIZE):
        example_bytes += 4 * int(np.prod(field.shape, dtype=np.int64))
      else:
        example_bytes += np.asarray(first[name]).nbytes
    total += len(split) * example_bytes
  return total


def device_memory_bytes(mesh: jax.sharding.Mesh) -> int | None:
  """The memory of one of this process's devices in the mesh, or None where the backend does not say (the CPU)."""
  stats = mesh.local_devices[0].memory_stats()
  return stats.get("bytes_limit") if stats else None


def fits(data: sources.DataSource, data_config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> bool:
  """Whether "auto" puts the train split on the device."""
  size, memory = split_bytes(data), device_memory_bytes(mesh)
  return size <= data_config.on_device_max_bytes and (memory is None or size <= _SHARE_OF_DEVICE_MEMORY * memory)


@flax.struct.dataclass
class DeviceSide:
  """One side of the train split on the device (a split has one, an unpaired split two).

  examples: the raw examples, `[N, ...]` per field, replicated.
  orders:   `[E, N]` int32: the visiting orders of `epoch` and of the epochs after it that a step can reach.
  epoch, first_position: int32 scalars; the feed's first step starts at `first_position` of `epoch`.
  """

  examples: dict[str, jax.Array]
  orders: jax.Array
  epoch: jax.Array
  first_position: jax.Array


@flax.struct.dataclass
class DeviceFeed:
  """The train split on the device and what a step from `first_step` (an int32 scalar) on needs to gather its
  batch from it."""

  sides: tuple[DeviceSide, ...]
  first_step: jax.Array
  batches_per_step: int = flax.struct.field(pytree_node=False)
  batch_size: int = flax.struct.field(pytree_node=False)

  def raw_batch(self, step: jax.Array) -> dict[str, jax.Array]:
    """The raw batch `[k, B, ...]` of `step` (traced), with its examples' epochs and positions."""
    offsets = jnp.arange(self.batches_per_step * self.batch_size, dtype=jnp.int32)
    shape = (self.batches_per_step, self.batch_size)
    raw = {}
    for index, side in enumerate(self.sides):
      size = side.orders.shape[1]
      stream = side.first_position + (step - self.first_step) * self.batches_per_step * self.batch_size + offsets
      later_epoch, position = jnp.divmod(stream, size)
      indices = side.orders[later_epoch, position]
      raw.update({key: values[indices].reshape(*shape, *values.shape[1:]) for key, values in side.examples.items()})
      if index == 0:  # An example's place in the stream is its first side's.
        raw[EPOCH] = (side.epoch + later_epoch).reshape(shape)
        raw[POSITION] = position.reshape(shape)
    return raw


class DeviceInput:
  """Feeds for any step, the split read and placed on the mesh once."""

  def __init__(self, data: sources.DataSource, stream: Stream, mesh: jax.sharding.Mesh):
    size, memory = split_bytes(data), device_memory_bytes(mesh)
    if memory is not None and size > memory:
      raise errors.UserError(
          f"config.data.on_device=true, but the train split of {data.name!r} takes {size / 2**30:.2f} GiB and a "
          f"device has {memory / 2**30:.2f} GiB; set config.data.on_device to auto or false (the host path)."
      )
    self._replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    self._stream = stream
    sides = _sides(data.train, data.spec)
    self._sizes = [len(split) for split, _ in sides]
    # A step that starts in an epoch reaches at most this many epochs (two, unless a step outnumbers the split).
    self._epochs_per_feed = [stream.examples_per_step // size + 2 for size in self._sizes]
    raw = [read_examples(split, np.arange(len(split)), spec) for split, spec in sides]
    self._examples = sharding.put(raw, self._replicated)
    self._feed, self._feed_epochs = None, None
    logging.info("The train split of %s is on the device: %.1f MiB per device.", data.name, size / 2**20)
    self.description = "on device"

  def feed(self, step: int) -> DeviceFeed:
    """The feed of any step (the one of its epochs, made when first asked for)."""
    first = step * self._stream.examples_per_step
    epochs = tuple(first // size for size in self._sizes)
    if epochs != self._feed_epochs:
      device_sides = []
      for side, (epoch, size, examples) in enumerate(zip(epochs, self._sizes, self._examples)):
        reached = range(epoch, epoch + self._epochs_per_feed[side])
        orders = np.stack([self._stream.epoch_order(e, size, side) for e in reached])
        scalars = [np.int32(value) for value in (epoch, first - epoch * size)]
        orders, epoch_on_device, first_position = sharding.put([orders, *scalars], self._replicated)
        device_sides.append(DeviceSide(examples, orders, epoch_on_device, first_position))
      first_step = sharding.put(np.int32(step), self._replicated)
      shape = (self._stream.batches_per_step, self._stream.global_batch_size)
      self._feed = DeviceFeed(tuple(device_sides), first_step, *shape)
      self._feed_epochs = epochs
    return self._feed


def open_train_input(
    data: sources.DataSource,
    data_config: ml_collections.ConfigDict,
    stream: Stream,
    batch_sharding: jax.sharding.NamedSharding,
    start_step: int,
):
  """The train input that `data_config.on_device` chooses: the split on the device when it is "true", or "auto"
  and the split fits (see `fits`); the host path otherwise, feeding from `start_step` on. Either has
  `feed(step)` -> a feed for the jitted step, and a `description`."""
  mode = str(data_config.on_device).lower()
  if mode not in ON_DEVICE_MODES:
    raise errors.UserError(
        f"config.data.on_device={data_config.on_device!r} is not one of {', '.join(ON_DEVICE_MODES)}."
    )
  mesh = batch_sharding.mesh
  if mode == "true" or (mode == "auto" and fits(data, data_config, mesh)):
    return DeviceInput(data, stream, mesh)
  return HostInput(data, data_config, stream, batch_sharding, start_step)


def eval_batches(
    source: Sequence,
    spec: sources.ExampleSpec,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """One pass over a split of `spec` in its fixed order: this process's share of each raw batch, with each
  example's `index` in the split and a `mask` (1 for real examples, 0 for padding).

  Every process yields the same number of batches, padding its share as needed, so a jitted step over the global
  batch never waits on a process that has run out of data. Global batch i holds examples [i * B, (i + 1) * B).
  """
  local = local_batch_size(global_batch_size, process_count)
  for start in range(0, len(source), global_batch_size):
    indices = np.arange(start + process_index * local, start + (process_index + 1) * local)
    real = indices < len(source)
    raw = read_examples(source, np.where(real, indices, 0), spec)
    raw[INDEX] = indices.astype(np.int32)
    raw[MASK] = real.astype(np.float32)
    yield raw
