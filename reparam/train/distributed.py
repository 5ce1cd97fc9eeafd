"""Data parallelism and multi-host launch with JAX's own `jax.sharding` and `jax.distributed`.

No communication layer of our own: a `Mesh` with one axis, "data", over the devices; batches are
sharded on it and the parameters are replicated (or, with `shard_params=True`, each parameter's
largest axis that divides evenly is sharded on it, FSDP-style). XLA's partitioner (GSPMD) then
inserts the all-reduce of the gradients (or the all-gathers of sharded parameters) itself.

Single host, several devices (or fake CPU devices for testing):

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
        python -m experiments.vae_mnist train --quick --mesh data --devices 4 --workdir runs/dp4

Several hosts (or several processes on one host, CPU collectives through gloo): start the same
command on every process, with the coordinator's address (process 0's host and a free port):

    python -m experiments.vae_mnist --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0 \\
        train --mesh data --workdir /shared/run
    python -m experiments.vae_mnist --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1 \\
        train --mesh data --workdir /shared/run

Every process loads the same data and initial parameters (same seed), the mesh spans the
devices of all processes, and each process's devices compute their slice of every batch. The
workdir must be on a file system all processes see (orbax writes one checkpoint together);
process 0 alone writes metrics, plots and results.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
MESHES = ("none", "data")

PyTree = Any


# ---------------------------------------------------------------- launch
def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 120,
) -> bool:
    """Join a multi-process run through `jax.distributed.initialize`; a no-op without a coordinator.

    Must run before any other JAX call in the process. On CPU the cross-process collectives are
    gloo's (JAX's default CPU collectives).

    Args:
      coordinator: "host:port" of process 0 (which serves as the coordinator), or None for a
        single-process run.
      num_processes: how many processes take part (≥ 1).
      process_id: this process's index, 0 ≤ process_id < num_processes.
      timeout_s: seconds to wait for all processes to connect before failing.

    Returns:
      True if a multi-process run was joined.

    Raises:
      ValueError: incomplete or inconsistent arguments (the message names them).
    """
    where = "reparam.distributed.initialize"
    given = {"num_processes": num_processes, "process_id": process_id}
    if coordinator is None:
        extra = [f"`{name}`" for name, value in given.items() if value is not None]
        if extra:
            raise ValueError(f"{where}: {' and '.join(extra)} need `coordinator` (host:port)")
        return False
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{where}: `coordinator` must be host:port; got {coordinator!r}")
    if num_processes is None or process_id is None:
        raise ValueError(f"{where}: a `coordinator` needs `num_processes` and `process_id` too")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"{where}: need num_processes >= 1 and 0 <= process_id < num_processes; got "
            f"`num_processes`={num_processes}, `process_id`={process_id}"
        )
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout_s,
    )
    return True


def is_primary() -> bool:
    """True on the process that writes logs, plots and results (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def agree(*flags: bool) -> tuple[bool, ...]:
    """Process 0's values of `flags`, on every process (unchanged in a single-process run)."""
    if jax.process_count() == 1:
        return tuple(bool(f) for f in flags)
    from jax.experimental import multihost_utils

    values = multihost_utils.broadcast_one_to_all(np.asarray(flags, dtype=np.int32))
    return tuple(bool(v) for v in np.asarray(values))


def check_same_everywhere(tree: PyTree, what: str) -> None:
    """Raise if the processes of a multi-process run hold different `tree`s (a no-op otherwise).

    Replicated arrays are assembled from each process's own copy, so copies that differ (a
    different seed or data file on one host) would silently train on inconsistent replicas.

    Raises:
      ValueError: naming `what` and this process, when its copy differs from process 0's.
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    mine = np.frombuffer(bytes.fromhex(digest(tree)), dtype=np.uint8)
    first = np.asarray(multihost_utils.broadcast_one_to_all(mine))
    if not np.array_equal(mine, first):
        raise ValueError(
            f"reparam.distributed: the {what} of process {jax.process_index()} differs from "
            "process 0's; every process must start from the same seed, config and data"
        )


# ---------------------------------------------------------------- mesh and shardings
def make_mesh(num_devices: int | None = None, devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh ("data") over the first `num_devices` of `devices` (default: all, global).

    The axis is of the classic "auto" kind: shardings are constraints that XLA's partitioner
    propagates, so the same model code runs on one device or many.
    """
    devices = list(jax.devices() if devices is None else devices)
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"reparam.distributed.make_mesh: `num_devices` must be in 1..{len(devices)} (the "
            f"devices available; fake more CPU devices with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count=N); got {num_devices}"
        )
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError(
            "reparam.distributed.make_mesh: a multi-process mesh must span all "
            f"{len(devices)} devices; got `num_devices`={num_devices}"
        )
    return jax.make_mesh(
        (num_devices,),
        (DATA_AXIS,),
        axis_types=(jax.sharding.AxisType.Auto,),
        devices=devices[:num_devices],
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, ndim: int = 2, axis: int = 0) -> NamedSharding:
    """Axis `axis` of an `ndim`-dimensional array split over the data axis."""
    spec = [None] * ndim
    spec[axis] = DATA_AXIS
    return NamedSharding(mesh, P(*spec))


def param_spec(shape: tuple[int, ...], num_shards: int) -> P:
    """Where one parameter goes with shard_params=True: its largest axis that `num_shards` divides
    is split on the data axis (ties: the first such axis); scalars and indivisible arrays stay
    replicated."""
    divisible = [axis for axis, size in enumerate(shape) if size % num_shards == 0]
    if num_shards == 1 or not divisible:
        return P()
    axis = max(divisible, key=lambda a: (shape[a], -a))
    spec: list[str | None] = [None] * len(shape)
    spec[axis] = DATA_AXIS
    return P(*spec)


def state_shardings(tree: PyTree, mesh: Mesh, shard_params: bool = False) -> PyTree:
    """NamedShardings for every array leaf of `tree` (a TrainState, params, ...), from shapes
    alone, so the same function serves concrete arrays and tracers inside `jit`."""
    num_shards = mesh.shape[DATA_AXIS]

    def one(leaf: Any) -> NamedSharding:
        shape = tuple(np.shape(leaf))
        spec = param_spec(shape, num_shards) if shard_params else P()
        return NamedSharding(mesh, spec)

    return jax.tree.map(one, tree)


def shard_batch(tree: PyTree, mesh: Mesh | None, axis: int = 0) -> PyTree:
    """Inside `jit`: constrain axis `axis` of every leaf to be split over the data axis (each
    device computes its slice); a no-op without a mesh, so single-device code is unchanged."""
    if mesh is None:
        return tree
    shardings = jax.tree.map(lambda leaf: batch_sharding(mesh, np.ndim(leaf), axis), tree)
    return jax.lax.with_sharding_constraint(tree, shardings)


def keep_replicated(tree: PyTree, mesh: Mesh | None) -> PyTree:
    """Inside `jit`: constrain every leaf to be replicated over the mesh (no-op without one)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, jax.tree.map(lambda _: replicated(mesh), tree))


def check_divisible(where: str, name: str, size: int, mesh: Mesh | None) -> None:
    """Raise a clear ValueError unless `size` (of an axis to shard) splits evenly over the mesh."""
    if mesh is not None and size % mesh.shape[DATA_AXIS] != 0:
        raise ValueError(
            f"{where}: `{name}` {size} must be a multiple of the {mesh.shape[DATA_AXIS]} devices "
            "of the mesh's data axis (it is split over them)"
        )


def add_mesh_flags(parser: Any) -> None:
    """Add an experiment's `--mesh {none,data}` and `--devices N` to an argparse parser."""
    parser.add_argument("--mesh", choices=MESHES, help="data-parallel over a device mesh")
    parser.add_argument("--devices", type=int, help="devices of the data mesh (default: all)")


def mesh_overrides(mesh: str | None, devices: int | None) -> dict[str, Any]:
    """Config overrides (fields `mesh`, `devices`) for those flags; --devices alone implies
    --mesh data."""
    if devices is not None:
        return {"mesh": mesh or "data", "devices": devices}
    return {} if mesh is None else {"mesh": mesh}


def check_mesh_choice(where: str, mesh: str) -> None:
    """Raise a clear ValueError unless `mesh` is one of MESHES (an experiment config's field)."""
    if mesh not in MESHES:
        raise ValueError(f"{where}: `mesh` must be one of {MESHES}; got {mesh!r}")


def mesh_from_flags(mesh: str, devices: int | None, where: str) -> Mesh | None:
    """The mesh an experiment's `mesh` / `devices` config fields ask for: None for "none", a
    data mesh over `devices` (None: all) for "data"."""
    check_mesh_choice(where, mesh)
    if mesh == "none":
        if devices not in (None, 1):
            raise ValueError(f"{where}: `devices`={devices} needs `mesh`='data'")
        return None
    return make_mesh(devices)


def put(tree: PyTree, shardings: PyTree) -> PyTree:
    """Place host or device arrays as global arrays with the given shardings.

    Works in multi-process runs too: each process supplies the slices its own devices hold,
    cut from its (identical) local copy, through `jax.make_array_from_callback`.
    """

    def one(leaf: Any, sharding: NamedSharding) -> jax.Array:
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            return leaf
        if jax.process_count() == 1:
            return jax.device_put(leaf, sharding)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree, shardings)


def put_replicated(tree: PyTree, mesh: Mesh) -> PyTree:
    """`put` with every leaf replicated (e.g. the training set, which every device gathers its
    slice of each batch from)."""
    return put(tree, jax.tree.map(lambda _: replicated(mesh), tree))


def to_host(tree: PyTree) -> PyTree:
    """numpy copies of a pytree's arrays; sharded arrays of a multi-process run are gathered."""

    def one(leaf: Any) -> np.ndarray:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if leaf.is_fully_replicated:
                return np.asarray(leaf.addressable_data(0))
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(leaf)

    return jax.tree.map(one, tree)


def digest(tree: PyTree) -> str:
    """sha256 of a pytree's structure, shapes, dtypes and bytes (equal iff bit-identical)."""
    leaves, treedef = jax.tree.flatten(to_host(tree))
    hasher = hashlib.sha256(str(treedef).encode())
    for leaf in leaves:
        leaf = np.ascontiguousarray(leaf)
        hasher.update(f"{leaf.dtype}{leaf.shape}".encode())
        hasher.update(leaf.tobytes())
    return hasher.hexdigest()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (for a local coordinator in tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def describe() -> dict[str, Any]:
    """Processes and devices, for logs and results."""
    return {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "devices": [str(d) for d in jax.devices()],
        "local_devices": len(jax.local_devices()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


__all__ = [
    "DATA_AXIS",
    "MESHES",
    "add_mesh_flags",
    "agree",
    "barrier",
    "batch_sharding",
    "check_divisible",
    "check_mesh_choice",
    "check_same_everywhere",
    "describe",
    "digest",
    "free_port",
    "initialize",
    "is_primary",
    "keep_replicated",
    "make_mesh",
    "mesh_from_flags",
    "mesh_overrides",
    "param_spec",
    "put",
    "put_replicated",
    "replicated",
    "shard_batch",
    "state_shardings",
    "to_host",
]
