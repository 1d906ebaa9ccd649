"""Devices and layouts: multi-host start-up, the device mesh, and the shardings of states and batches.

Data parallel by default: the batch's leading axis is split over the mesh axes in `config.mesh.batch_axes` and the
train state is replicated. Every sharding decision lives here, so a model-parallel layout is a change to this file.
"""

import math

import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from genjax import errors


def initialize_distributed(distributed_config: ml_collections.ConfigDict) -> None:
  """Joins a multi-process run when configured; TPU pods and SLURM jobs fill in the unset fields themselves."""
  if not distributed_config.initialize:
    return
  try:
    jax.distributed.initialize(
        coordinator_address=distributed_config.coordinator_address or None,
        num_processes=distributed_config.num_processes if distributed_config.num_processes > 0 else None,
        process_id=distributed_config.process_id if distributed_config.process_id >= 0 else None,
    )
  except ValueError as e:  # What JAX raises when neither the config nor a detected cluster says who is who.
    raise errors.UserError(
        f"config.distributed.initialize=true, but this process cannot tell how to join the run ({e}). On a TPU pod "
        "or under SLURM's srun this is detected; elsewhere set config.distributed.coordinator_address (host:port of "
        "process 0), num_processes and process_id, or leave initialize false for a single process."
    ) from e


def make_mesh(mesh_config: ml_collections.ConfigDict, devices=None) -> jax.sharding.Mesh:
  """A mesh over `devices` (all devices by default) with `mesh_config.shape`; one -1 entry takes the rest."""
  devices = list(jax.devices() if devices is None else devices)
  shape = list(mesh_config.shape)
  axes = tuple(mesh_config.axes)
  if len(shape) != len(axes):
    raise errors.UserError(f"config.mesh.shape={tuple(shape)} and config.mesh.axes={axes} differ in length.")
  if shape.count(-1) > 1:
    raise errors.UserError(f"config.mesh.shape={tuple(shape)} may contain at most one -1.")
  if -1 in shape:
    known = math.prod(size for size in shape if size != -1)
    shape[shape.index(-1)] = len(devices) // known if known and len(devices) % known == 0 else 0
  if math.prod(shape) != len(devices):
    raise errors.UserError(
        f"config.mesh.shape={tuple(mesh_config.shape)} does not fit the {len(devices)} available devices."
    )
  unknown_batch_axes = set(mesh_config.batch_axes) - set(axes)
  if unknown_batch_axes:
    raise errors.UserError(f"config.mesh.batch_axes names axes not in config.mesh.axes: {sorted(unknown_batch_axes)}.")
  # Explicit axis types: jax.make_mesh and Mesh default differently across JAX versions. Auto lets XLA propagate
  # shardings inside the step from the in/out shardings we give.
  return jax.make_mesh(tuple(shape), axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes), devices=devices)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def state_shardings(abstract_state, mesh: jax.sharding.Mesh):
  """Shardings for every leaf of the train state: replicated (data parallelism)."""
  return jax.tree.map(lambda _: replicated(mesh), abstract_state)


def batch_sharding(mesh: jax.sharding.Mesh, mesh_config: ml_collections.ConfigDict) -> NamedSharding:
  """Splits a batch `[B, ...]` along B over the batch axes; applies to every array of a batch dict."""
  return NamedSharding(mesh, P(tuple(mesh_config.batch_axes)))


def stacked_batch_sharding(mesh: jax.sharding.Mesh, mesh_config: ml_collections.ConfigDict) -> NamedSharding:
  """Splits stacked batches `[k, B, ...]` (the k batches of one train step) along B over the batch axes."""
  return NamedSharding(mesh, P(None, tuple(mesh_config.batch_axes)))


def check_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh, mesh_config, name: str) -> None:
  shards = math.prod(mesh.shape[axis] for axis in mesh_config.batch_axes)
  if global_batch_size % shards:
    raise errors.UserError(
        f"{name}={global_batch_size} must be divisible by the {shards} batch shards of the mesh "
        f"(axes {tuple(mesh_config.batch_axes)})."
    )


def put(tree, sharding: NamedSharding):
  """Host values (NumPy arrays, scalars) that every process holds in full -> global arrays laid out by `sharding`.
  Unlike `jax.device_put`, this works when the mesh spans several processes: each process places its own shards.
  It is an explicit transfer, allowed under the training loop's transfer guard."""
  with jax.transfer_guard_host_to_device("allow"):
    return jax.tree.map(
        lambda value: jax.make_array_from_callback(np.shape(value), sharding, lambda index: np.asarray(value)[index]),
        tree,
    )


def to_global_batch(local_batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Assembles each process's share of a batch into global arrays laid out by `sharding`."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)
