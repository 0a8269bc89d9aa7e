"""One scenario against one server: start it fresh, drive it from the generator, stop it."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bench.processes import Placement, ServerUnderTest, run_client_side
from bench.profiling import Profiler

if TYPE_CHECKING:
    from bench.cluster import ClusterServices, ClusterUnderTest


class Driven(Protocol):
    """What the generator is pointed at: one server, or a cluster's nodes."""

    def target(self) -> dict[str, Any]: ...


@dataclass
class Bench:
    """Where a run keeps its scratch files, how processes are placed, what else it records."""

    work_dir: Path
    placement: Placement
    profile_dir: Path | None = None
    source: Path | None = None
    """Another checkout whose `chatapp` the server runs (for before/after comparisons)."""
    label: str = "current"
    generator_source: Path | None = None
    """Another checkout whose `bench.loadgen` drives the server (`bench.ceiling --baseline`)."""

    def folder(self, name: str) -> Path:
        path = self.work_dir / self.label / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def server(self, kind: str, folder: Path, data_dir: Path | None = None) -> ServerUnderTest:
        return ServerUnderTest(
            kind,
            data_dir or folder / "data",
            folder / "server.log",
            self.placement,
            source=self.source if kind == "chat" else None,
        )

    def drive(
        self, name: str, kind: str, scenario: str, params: dict[str, Any], *, timeout: float
    ) -> dict[str, Any]:
        """A fresh server of `kind` on a fresh folder, the generator's `scenario` against it."""
        folder = self.folder(name)
        server = self.server(kind, folder).start()
        profiler = None
        if self.profile_dir is not None and kind == "chat":
            profiler = Profiler(server.pid, self.profile_dir, f"{name}-{self.label}")
        collector = None
        try:
            result = self.generate(folder, server, scenario, params, timeout=timeout)
            if kind == "chat":
                collector = collector_figures(server.url)
        finally:
            profile = profiler.stop() if profiler is not None else None
            exit_code = server.stop()
        result["server"] = {
            "ready_seconds": round(server.ready_after, 3),
            "exit_code": exit_code,
            **log_findings(server.log_path),
            **({"collector": collector} if collector is not None else {}),
        }
        if profile is not None:
            result["profile"] = profile
        return result

    def drive_cluster(
        self,
        name: str,
        services: ClusterServices,
        scenario: str,
        params: dict[str, Any],
        *,
        timeout: float,
        placement: Placement,
        running: ClusterUnderTest | None = None,
        bystanders: int = 0,
    ) -> dict[str, Any]:
        """Fresh nodes on a fresh schema and cluster name, the generator's `scenario` against
        them; `placement` says where the nodes run (the generator stays on the client side).

        `running` is a cluster started already, which is left running (`--quick` shares
        one between its scenarios, to stay within CI's minute).
        """
        from bench.cluster import ClusterUnderTest

        folder = self.folder(name)
        cluster = running or ClusterUnderTest(
            services, folder, placement, source=self.source, bystanders=bystanders
        )
        if running is None:
            cluster.start()
        profilers = []
        if self.profile_dir is not None:
            profilers = [
                Profiler(pid, self.profile_dir, f"{name}-{self.label}-n{index + 1}")
                for index, pid in enumerate(cluster.pids)
            ]
        try:
            result = self.generate(folder, cluster, scenario, params, timeout=timeout)
        finally:
            profiles = [profiler.stop() for profiler in profilers]
            exit_codes = cluster.stop() if running is None else [None] * len(cluster.nodes)
        result["server"] = {
            "nodes": [
                {
                    "ready_seconds": round(node.ready_after, 3),
                    "exit_code": code,
                    **log_findings(node.log_path),
                }
                for node, code in zip(cluster.nodes, exit_codes, strict=True)
            ],
        }
        if profiles:
            result["profile"] = {"nodes": profiles}
        return result

    def generate(
        self,
        folder: Path,
        server: Driven,
        scenario: str,
        params: dict[str, Any],
        *,
        timeout: float,
    ) -> dict[str, Any]:
        """Run the generator process against a server (or a cluster) that is already up."""
        job = {"scenario": scenario, "target": server.target(), "params": params}
        job_path, result_path = folder / f"{scenario}.job.json", folder / f"{scenario}.result.json"
        job_path.write_text(json.dumps(job, indent=2))
        started = time.monotonic()
        run_client_side(
            "bench.loadgen",
            [str(job_path), str(result_path)],
            self.placement,
            timeout=timeout,
            log_path=folder / "loadgen.log",
            source=self.generator_source,
        )
        result: dict[str, Any] = json.loads(result_path.read_text())
        result["wall_seconds"] = round(time.monotonic() - started, 2)
        return result


def collector_figures(url: str) -> dict[str, list[float]] | None:
    """The garbage collector's collections and pause seconds by generation, over the
    server's life so far, from its /metrics; None where it has none."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    figures: dict[str, list[float]] = {}
    for key, name in (
        ("collections", "chatapp_gc_collections"),
        ("seconds", "chatapp_gc_pause_seconds"),
    ):
        found = dict(re.findall(rf'^{name}_total{{generation="(\d)"}} (\S+)$', text, re.M))
        if set(found) != {"0", "1", "2"}:
            return None
        figures[key] = [float(found[str(generation)]) for generation in range(3)]
    return figures


def log_findings(log_path: Path) -> dict[str, Any]:
    """Warnings and errors the server logged: a benchmark that provokes them has found something."""
    counts: dict[str, int] = {}
    first: list[str] = []
    if not log_path.exists():
        return {"log_events": counts}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if line.strip():
                counts["unparsed_line"] = counts.get("unparsed_line", 0) + 1
                if len(first) < 3:
                    first.append(line[:300])
            continue
        level = str(record.get("level", "")).lower()
        if level in ("warning", "error", "critical", "exception"):
            key = f"{level}:{record.get('event', '?')}"
            counts[key] = counts.get(key, 0) + 1
            if len(first) < 3:
                first.append(line[:300])
    return {"log_events": counts, "log_examples": first}
