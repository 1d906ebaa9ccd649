"""Devices and layouts: multi-host start-up, the device mesh, and the shardings of states and batches.

The batch's leading axis is split over the mesh axes in `config.mesh.batch_axes`. The train state is laid out by
`config.sharding.rules` (the big_vision pattern): an ordered list of (regex, rule) pairs; each state array takes the
rule of the first regex that fully matches its path ("params/Dense_0/kernel", "opt_state/0/mu/...",
"g_ema_params/...", "d_batch_stats/..."). Rules:

  replicate  a full copy on every device (data parallelism: the default, `((".*", "replicate"),)`);
  fsdp       sharded over the mesh axis `config.sharding.fsdp_axis` along the array's largest dimension that the
             axis size divides (fully sharded data parallelism, ZeRO-3): each device holds 1/n of the parameters,
             optimiser moments and weight averages, and XLA gathers them for the step. Arrays of fewer than
             `config.sharding.min_fsdp_size` elements, or with no dimension the axis divides, stay replicated.

Every sharding decision lives here, so a model-parallel layout is a change to this file.
"""

import math
import os
import re

import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from genjax import errors

# Set by the launch scripts (launch/): join a multi-process run whatever the config says.
DISTRIBUTED_ENV_VAR = "GENJAX_DISTRIBUTED"


def initialize_distributed(distributed_config: ml_collections.ConfigDict, environ=os.environ) -> None:
  """Joins a multi-process run when `config.distributed.initialize` or GENJAX_DISTRIBUTED=1 asks for it.

  Unset fields come from the cluster: under SLURM from srun's variables (`slurm_arguments`), on Cloud TPU from the
  TPU metadata (through JAX). The coordinator's host is exempted from HTTP proxies, through which gRPC would
  otherwise try, and hang, to reach it.
  """
  if not (distributed_config.initialize or environ.get(DISTRIBUTED_ENV_VAR) == "1"):
    return
  arguments = dict(
      coordinator_address=distributed_config.coordinator_address or None,
      num_processes=distributed_config.num_processes if distributed_config.num_processes > 0 else None,
      process_id=distributed_config.process_id if distributed_config.process_id >= 0 else None,
  )
  if "SLURM_JOB_ID" in environ and "SLURM_PROCID" in environ:
    arguments = {**slurm_arguments(environ), **{key: value for key, value in arguments.items() if value is not None}}
  if arguments["coordinator_address"]:
    _bypass_proxies(arguments["coordinator_address"].rsplit(":", 1)[0], environ)
  try:
    jax.distributed.initialize(**arguments)
  except ValueError as e:  # What JAX raises when neither the config nor a detected cluster says who is who.
    raise errors.UserError(
        f"Asked to join a multi-process run, but this process cannot tell how ({e}). On a TPU pod or under SLURM's "
        "srun this is detected; elsewhere set config.distributed.coordinator_address (host:port of process 0), "
        "num_processes and process_id, or run a single process (config.distributed.initialize false and "
        f"{DISTRIBUTED_ENV_VAR} unset)."
    ) from e


def slurm_arguments(environ) -> dict:
  """`jax.distributed.initialize`'s arguments for a process that srun started.

  - The coordinator is the step's first node, on a port of the job *and step* (JAX's own choice depends on the job
    only, so two steps of one job, such as sweep workers, would collide); JAX_COORDINATOR_PORT overrides it.
  - The local devices are the GPUs this task sees: all of them with one task per node or with `--gpus-per-task`
    (which hides the others), or the task's own GPU when the node's tasks share all of them (JAX would give every
    task only GPU SLURM_LOCALID, so a one-process-per-node job would use one GPU of each node). None without GPUs.
  """
  job, step = int(environ["SLURM_JOB_ID"]), int(environ.get("SLURM_STEP_ID", "0") or 0)
  port = environ.get("JAX_COORDINATOR_PORT") or str(49152 + (job * 64 + step) % 16384)
  return dict(
      coordinator_address=f"{_first_host(environ['SLURM_STEP_NODELIST'])}:{port}",
      num_processes=int(environ["SLURM_NTASKS"]),
      process_id=int(environ["SLURM_PROCID"]),
      local_device_ids=_slurm_local_device_ids(environ),
  )


def _first_host(node_list: str) -> str:
  """The first host of a SLURM node list: "node[003-005,9],gpu1" -> "node003"."""
  match = re.match(r"([^,\[]+)(?:\[([^\],\-]+))?", node_list)
  return match.group(1) + (match.group(2) or "")


def _slurm_local_device_ids(environ) -> list[int] | None:
  visible = environ.get("CUDA_VISIBLE_DEVICES")
  num_visible = len(visible.split(",")) if visible else int(environ.get("SLURM_GPUS_ON_NODE", "0") or 0)
  if not num_visible:
    return None
  tasks_here = environ.get("SLURM_NTASKS_PER_NODE") or environ.get("SLURM_STEP_TASKS_PER_NODE", "1")
  tasks_here = int(re.match(r"\d+", tasks_here).group())
  if tasks_here > 1 and num_visible == tasks_here:
    return [int(environ["SLURM_LOCALID"])]
  return list(range(num_visible))


def _bypass_proxies(host: str, environ) -> None:
  for variable in ("no_grpc_proxy", "no_proxy", "NO_PROXY"):
    hosts = [entry for entry in environ.get(variable, "").split(",") if entry]
    if host not in hosts:
      environ[variable] = ",".join([*hosts, host])


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


RULES = ("replicate", "fsdp")


def state_shardings(abstract_state, mesh: jax.sharding.Mesh, sharding_config: ml_collections.ConfigDict):
  """The sharding of every array of the train state, by `sharding_config.rules`. Raises `UserError` for an unknown
  rule or mesh axis, a regex that is not one, and a rule that matches no array (a typo that would silently leave
  the state replicated)."""
  return _shardings_by_rules(abstract_state, mesh, sharding_config, for_state=True)


def frozen_shardings(abstract_frozen, mesh: jax.sharding.Mesh, sharding_config: ml_collections.ConfigDict):
  """The sharding of frozen networks' weights (`{name: pytree}`, paths like 'vgg/conv1_1/kernel'), by the same
  rules as the state; arrays that no rule names are replicated, since the rules are written for the state."""
  return _shardings_by_rules(abstract_frozen, mesh, sharding_config, for_state=False)


def _shardings_by_rules(abstract_tree, mesh, sharding_config, for_state: bool):
  rules = []
  for pattern, rule in sharding_config.rules:
    if rule not in RULES:
      raise errors.UserError(f"config.sharding.rules names an unknown rule {rule!r}; rules are {', '.join(RULES)}.")
    try:
      rules.append((re.compile(pattern), rule))
    except re.error as e:
      raise errors.UserError(f"config.sharding.rules: {pattern!r} is not a regular expression ({e}).") from e
  axis = sharding_config.fsdp_axis
  if any(rule == "fsdp" for _, rule in rules) and axis not in mesh.shape:
    raise errors.UserError(
        f"config.sharding.fsdp_axis={axis!r} is not an axis of the mesh (config.mesh.axes={tuple(mesh.shape)})."
    )
  used = set()

  def leaf_sharding(path, leaf) -> NamedSharding:
    name = path_name(path)
    for index, (pattern, rule) in enumerate(rules):
      if pattern.fullmatch(name):
        used.add(index)
        if rule == "fsdp":
          return NamedSharding(mesh, _fsdp_spec(leaf.shape, mesh.shape[axis], axis, sharding_config.min_fsdp_size))
        return replicated(mesh)
    if not for_state:
      return replicated(mesh)
    raise errors.UserError(f"No rule of config.sharding.rules matches the state array {name!r}; end them with '.*'.")

  shardings = jax.tree.map_with_path(leaf_sharding, abstract_tree)
  unused = [sharding_config.rules[index][0] for index in range(len(rules)) if index not in used]
  if unused and for_state:
    raise errors.UserError(f"config.sharding.rules: {unused} match no state array (paths look like 'params/...').")
  return shardings


def _fsdp_spec(shape: tuple[int, ...], axis_size: int, axis: str, min_size: int) -> P:
  if math.prod(shape) < min_size:
    return P()
  dividing = [dim for dim in range(len(shape)) if shape[dim] % axis_size == 0]
  if not dividing:
    return P()
  largest = max(dividing, key=lambda dim: shape[dim])
  return P(*(axis if dim == largest else None for dim in range(len(shape))))


def path_name(path) -> str:
  """A state array's path as the rules see it: field, key and index names joined by "/"."""
  parts = []
  for entry in path:
    for attribute in ("name", "key", "idx"):
      if hasattr(entry, attribute):
        parts.append(str(getattr(entry, attribute)))
        break
  return "/".join(parts)


def bytes_per_device(abstract_state, shardings) -> int:
  """The bytes of the state that one device holds under `shardings`."""
  return sum(
      math.prod(sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
      for leaf, sharding in zip(jax.tree.leaves(abstract_state), jax.tree.leaves(shardings))
  )


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
