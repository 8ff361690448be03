"""A throwaway Ray cluster on loopback, for the Ray test and benchmark: a head that runs no
tasks (0 CPUs) and worker nodes of one CPU each, each its own raylet, as on separate machines.

Every node listens on 127.0.0.1 only: a Ray cluster has no authentication of its own here, so
nothing else on the network may reach it. ``ray start`` cannot do that (it rewrites
127.0.0.1 to the host's address, and refuses to add a node to a cluster held on loopback), so
the nodes are started with ``ray.cluster_utils.Cluster``, Ray's helper for multi-node tests,
as children of this process (they die with it: Ray sets PR_SET_PDEATHSIG), while Ray's address
lookups in this process are held on loopback. Its temp directory (with the "current cluster"
file Ray writes) is private and its ports are free ones, and the end stops this cluster's own
processes only: several may run at once (two checkouts' tests, a benchmark beside a test).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every node on loopback; small object stores: the shared inputs are a few hundred kB to a
#: few MB.
NODE: dict[str, Any] = {"node_ip_address": "127.0.0.1", "object_store_memory": 100_000_000}
#: For this process and the nodes it starts, while the cluster runs: no usage report; no token
#: authentication (a ~/.ray/auth_token left by any local `ray.init()`, which Ray 2.60 writes,
#: made the head want a token the worker nodes did not send); addresses kept on loopback (Ray's
#: switch for platforms without multi-node clusters, the one that leaves 127.0.0.1 as it is).
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


@dataclass(frozen=True)
class LocalCluster:
    address: str  # 127.0.0.1:port of the head's GCS (ray.init(address=...))
    nodes: Any  # the ray.cluster_utils.Cluster

    def add_worker(self, cpus: int = 1) -> None:
        self.nodes.add_node(num_cpus=cpus, **NODE)
        self.nodes.wait_for_nodes()


@contextmanager
def local_cluster(workers: int) -> Iterator[LocalCluster]:
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths have a length limit
    (Path(temp) / "ray").mkdir()  # RAY_TMPDIR/ray: the sessions and the address file
    saved_env = {key: os.environ.get(key) for key in (*ENV, "RAY_TMPDIR")}
    os.environ.update(ENV, RAY_TMPDIR=temp)
    # ray read the switch when it was imported: the driver's own lookups need it set here.
    saved_switch = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    nodes = None
    try:
        nodes = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "include_dashboard": False, **NODE},
        )
        cluster = LocalCluster(nodes.address, nodes)
        for _ in range(workers):
            cluster.add_worker()
        yield cluster
    finally:
        ray.shutdown()
        if nodes is not None:
            nodes.shutdown()  # this cluster's node processes (their workers die with them)
        ray_constants.ENABLE_RAY_CLUSTER = saved_switch
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)
