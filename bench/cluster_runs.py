"""The driver's cluster part: whether it runs, its services, and one scenario on it.

Kept apart from `bench.driver` so that a run of the embedded server alone
never imports asyncpg or redis (`bench.cluster` is imported here, lazily).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.jobs import JOB_MARGIN_SECONDS, job
from bench.processes import Placement
from bench.session import Bench
from bench.sizes import Sizes

if TYPE_CHECKING:
    from bench.cluster import ClusterServices, ClusterUnderTest


def choose_mode(asked: str | None, *, quick: bool) -> tuple[str | None, str | None]:
    """The mode to run, and why the cluster part is skipped (None: it is not).

    Without `--mode`, a full run is embedded only and `--quick` runs both
    where PostgreSQL and Redis can be reached. A mode of None means the run
    cannot go on: the cluster was asked for, or required by
    `CLUSTER_TESTS_REQUIRED=1` (CI), and cannot run here.
    """
    wanted = asked or ("both" if quick else "embedded")
    if wanted == "embedded":
        return wanted, None
    why = _cluster_unavailable()
    if why is None:
        return wanted, None
    if asked is not None or os.environ.get("CLUSTER_TESTS_REQUIRED") == "1":
        return None, f"the cluster cannot run: {why}"
    return "embedded", f"cluster part skipped: {why}"


def _cluster_unavailable() -> str | None:
    try:
        from bench.cluster import unavailable
    except ImportError as exc:
        return f"the cluster drivers are not installed ({exc}); pip install -e '.[cluster]'"
    return unavailable()


def node_placement(bench: Bench, placement: str) -> Placement:
    """Where the nodes run: "spread" over every CPU, or "pinned" with the embedded server.

    The generator keeps the client side's CPU either way.
    """
    if placement == "spread":
        return bench.placement.spread()
    return bench.placement


def open_services(
    results: dict[str, Any], work_dir: Path, placement: Placement, where: str
) -> ClusterServices | None:
    """The run's PostgreSQL database and Redis, described in `results`; None if they failed."""
    from bench.cluster import ClusterServices

    try:
        services = ClusterServices(
            work_dir / "services",
            placement.server_cpus if where == "pinned" else placement.every_cpu,
        )
    except Exception as exc:
        results["errors"]["cluster services"] = f"{type(exc).__name__}: {exc}"
        _progress(f"  cluster services: failed: {exc}")
        return None
    results["meta"]["cluster"] = {"nodes": 3, "placement": where, **services.describe()}
    return services


def start_shared(
    results: dict[str, Any], bench: Bench, services: ClusterServices, placement: str
) -> ClusterUnderTest | None:
    """One cluster for every scenario of a `--quick` run; None (and an error) if it failed."""
    from bench.cluster import ClusterUnderTest

    folder = bench.folder("cluster-shared")
    try:
        return ClusterUnderTest(
            services, folder, node_placement(bench, placement), source=bench.source
        ).start()
    except Exception as exc:
        results["errors"]["cluster"] = f"{type(exc).__name__}: {exc}"
        _progress(f"  cluster: failed to start: {exc}")
        return None


def run_on_cluster(
    bench: Bench,
    services: ClusterServices,
    letter: str,
    sizes: Sizes,
    placement: str,
    running: ClusterUnderTest | None,
    bystanders: int = 0,
) -> dict[str, Any]:
    """Scenario `letter` on three nodes (and `bystanders` more): fresh ones, or `running`."""
    scenario, params, seconds = job(letter, sizes, cluster=True)
    return bench.drive_cluster(
        f"{letter}-cluster",
        services,
        scenario,
        params,
        timeout=seconds + JOB_MARGIN_SECONDS,
        placement=node_placement(bench, placement),
        running=running,
        bystanders=bystanders,
    )


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)
