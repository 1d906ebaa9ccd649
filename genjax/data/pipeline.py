"""How raw training examples reach the device, in one global order that the step number fixes, and the host-side
reading of evaluation batches.

The order (`Stream`): epoch e visits the train split in a permutation seeded by (seed, e); the stream is the epochs one after
another, and train step s takes stream positions [s * k * B, (s + 1) * k * B) as its k stacked batches of B. Every
example appears once per epoch, and one process or many, one device or many, read the same examples at every
step. The input's only state is the step, so nothing of it is checkpointed and a resumed run continues exactly.

Two paths deliver the same raw batches (uint8 images as stored; see `preprocess` for what happens to them on the
device), and a jitted train step takes either as its `feed`:
- `on_device.DeviceInput`: the split lives on the device and each step gathers its batch there (no host work per
  step); chosen by `config.data.on_device` when the split fits (see `open_train_input`);
- `HostInput`: each step's batch is read on the host, vectorised over the batch, in grain worker processes
  (`config.data.num_workers`, -1: one per spare core) or threads, and put on the device a few steps ahead by a
  background thread, so host work overlaps the step.

Everything here works on any random-access split (TFDS data sources, the 2-D mixtures, in-memory lists).
"""

import dataclasses
import os
from collections.abc import Iterator, Sequence

import flax
import grain
import jax
import ml_collections
import numpy as np

from genjax import errors
from genjax import sharding
from genjax.data import sources

# Bookkeeping arrays of a raw train batch: where each example stands in the stream (its random draws come from it).
EPOCH, POSITION = "epoch", "position"
# Bookkeeping arrays of a raw evaluation batch: each example's index in the split, and 1 for real examples, 0 for
# the padding of the last batch.
INDEX, MASK = "index", "mask"

ON_DEVICE_MODES = ("auto", "true", "false")
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

  def epoch_order(self, epoch: int, size: int) -> np.ndarray:
    """The order `[size]` int32 in which epoch `epoch` visits a split of `size` examples."""
    return np.random.default_rng([self.seed, epoch]).permutation(size).astype(np.int32)

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


def read_examples(source: Sequence, indices: np.ndarray) -> dict[str, np.ndarray]:
  """The raw examples `source[indices]` stacked into arrays of `indices.shape + example shape` (one read of the
  whole batch where the source offers it)."""
  flat = [int(index) for index in indices.reshape(-1)]
  examples = source.__getitems__(flat) if hasattr(source, "__getitems__") else [source[index] for index in flat]
  keys = [key for key in (sources.IMAGE, sources.POINT, sources.LABEL, sources.SIZE) if key in examples[0]]
  arrays = {key: np.stack([np.asarray(example[key]) for example in examples]) for key in keys}
  if sources.LABEL in arrays:
    arrays[sources.LABEL] = arrays[sources.LABEL].astype(np.int32)
  return {key: array.reshape(*indices.shape, *array.shape[1:]) for key, array in arrays.items()}


class StreamReader:
  """Reads a process's share of any train step's raw batch from a split, with each example's epoch and position
  (picklable, for worker processes). By default the share of this process."""

  def __init__(
      self, source: Sequence, stream: Stream, process_index: int | None = None, process_count: int | None = None
  ):
    self._source = source
    self._stream = stream
    self._process_index = jax.process_index() if process_index is None else process_index
    self._process_count = jax.process_count() if process_count is None else process_count
    self._orders = {}

  def _order(self, epoch: int) -> np.ndarray:
    if epoch not in self._orders:
      # Steps ask for their epoch and the next: older orders are never needed again.
      self._orders = {kept: order for kept, order in self._orders.items() if kept >= epoch - 1}
      self._orders[epoch] = self._stream.epoch_order(epoch, len(self._source))
    return self._orders[epoch]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    positions = self._stream.positions(step, self._process_index, self._process_count)
    epochs, within = np.divmod(positions, len(self._source))
    indices = np.empty_like(within)
    for epoch in np.unique(epochs):  # Two at most, unless a step outnumbers the split.
      in_epoch = epochs == epoch
      indices[in_epoch] = self._order(int(epoch))[within[in_epoch]]
    raw = read_examples(self._source, indices)
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
      source: Sequence,
      data_config: ml_collections.ConfigDict,
      stream: Stream,
      batch_sharding: jax.sharding.NamedSharding,
      start_step: int,
  ):
    reader = StreamReader(source, stream)
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


def open_train_input(
    data: sources.DataSource,
    data_config: ml_collections.ConfigDict,
    stream: Stream,
    batch_sharding: jax.sharding.NamedSharding,
    start_step: int,
):
  """The train input that `data_config.on_device` chooses: the split on the device when it is "true", or "auto"
  and the split fits (see `on_device.fits`); the host path otherwise, feeding from `start_step` on. Either has
  `feed(step)` -> a feed for the jitted step, and a `description`."""
  from genjax.data import on_device  # The device path imports this module's order.

  mode = str(data_config.on_device).lower()
  if mode not in ON_DEVICE_MODES:
    raise errors.UserError(
        f"config.data.on_device={data_config.on_device!r} is not one of {', '.join(ON_DEVICE_MODES)}."
    )
  mesh = batch_sharding.mesh
  if mode == "true" or (mode == "auto" and on_device.fits(data, data_config, mesh)):
    return on_device.DeviceInput(data, stream, mesh)
  return HostInput(data.train, data_config, stream, batch_sharding, start_step)


def eval_batches(
    source: Sequence,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """One pass over a split in its fixed order: this process's share of each raw batch, with each example's
  `index` in the split and a `mask` (1 for real examples, 0 for padding).

  Every process yields the same number of batches, padding its share as needed, so a jitted step over the global
  batch never waits on a process that has run out of data. Global batch i holds examples [i * B, (i + 1) * B).
  """
  local = local_batch_size(global_batch_size, process_count)
  for start in range(0, len(source), global_batch_size):
    indices = np.arange(start + process_index * local, start + (process_index + 1) * local)
    real = indices < len(source)
    raw = read_examples(source, np.where(real, indices, 0))
    raw[INDEX] = indices.astype(np.int32)
    raw[MASK] = real.astype(np.float32)
    yield raw
