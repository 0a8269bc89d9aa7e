"""The cluster the benchmark drives: `chatapp serve` nodes on PostgreSQL and Redis.

PostgreSQL is the one the cluster tests use (`CLUSTER_TESTS_DATABASE_URL`,
by default 127.0.0.1:5432), shared with whatever else runs there. The run
makes a database of its own (from `template0`, dropped at the end), so that
`pg_stat_database`'s row for it counts the cluster's transactions and rows
alone, and each scenario gets a fresh schema in it. Where the role may not
create databases, the scenarios' schemas go into the given database and the
counters are marked shared.

Redis is a `redis-server` of the run's own on a free port, without
persistence, when one is on PATH (its `INFO` then counts the cluster
alone); otherwise the cluster tests' Redis, whose counters are marked
shared. Every scenario has a fresh cluster name (the Redis key prefix) and
its keys are deleted afterwards.

Imported only when a run includes the cluster: it loads asyncpg and redis.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

from bench.processes import Placement, ServerUnderTest, pinned_to
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.reset import forget_cluster
from chatapp.testing.cluster import with_search_path
from chatapp.testing.cluster_services import POSTGRES_URL, REDIS_URL, reachable
from chatapp.testing.server import free_port

NODE_IDS = ("n1", "n2", "n3")
T = TypeVar("T")


def unavailable() -> str | None:
    """Why the cluster cannot run here, or None when PostgreSQL and Redis can be reached."""
    why = reachable(POSTGRES_URL, 5432)
    if why is not None:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({why})"
    if shutil.which("redis-server") is None:
        why = reachable(REDIS_URL, 6379)
        if why is not None:
            return f"Redis at {REDIS_URL} is not reachable and no redis-server is on PATH ({why})"
    return None


def _run(work: Callable[[], Any]) -> Any:
    return asyncio.run(work())


class PrivateRedis:
    """`redis-server` on a free port, no persistence, placed like the nodes."""

    def __init__(self, work_dir: Path, cpus: frozenset[int] | None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        work_dir.mkdir(parents=True, exist_ok=True)
        self._log = work_dir / "redis.log"
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxclients",
                    "10000",
                    "--dir",
                    str(work_dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(cpus),
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        async def ping() -> bool:
            client = Redis.from_url(self.url)
            try:
                return bool(await client.ping())
            except Exception:  # not listening yet, or still loading
                return False
            finally:
                await client.aclose()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self._log}")
            if asyncio.run(ping()):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server not ready after {timeout:.0f} s; see {self._log}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class ClusterServices:
    """PostgreSQL and Redis for one run: a database (or a schema each) and a Redis."""

    def __init__(self, work_dir: Path, redis_cpus: frozenset[int] | None) -> None:
        self.admin_url = POSTGRES_URL
        self._redis: PrivateRedis | None = None
        if shutil.which("redis-server") is not None:
            self._redis = PrivateRedis(work_dir / "redis", redis_cpus)
        self.redis_url = self._redis.url if self._redis is not None else REDIS_URL
        self.database = f"chatapp_bench_{secrets.token_hex(4)}"
        try:
            _run(lambda: self._admin(f'CREATE DATABASE "{self.database}" TEMPLATE template0'))
            self.database_shared = False
        except asyncpg.InsufficientPrivilegeError:
            self.database = urlsplit(POSTGRES_URL).path.lstrip("/") or "postgres"
            self.database_shared = True

    @property
    def redis_private(self) -> bool:
        return self._redis is not None

    def describe(self) -> dict[str, Any]:
        return {
            "postgres": _without_password(POSTGRES_URL),
            "postgres_version": _run(self._server_version),
            "database": "shared: " + self.database
            if self.database_shared
            else "a database of the run's own",
            "redis": "a redis-server of the run's own"
            if self._redis is not None
            else f"shared: {_without_password(REDIS_URL)}",
            "redis_version": _run(self._redis_version),
        }

    def database_url(self, schema: str | None = None) -> str:
        parts = urlsplit(self.admin_url)
        url = urlunsplit(parts._replace(path=f"/{self.database}", query=""))
        return with_search_path(url, schema) if schema else url

    async def _admin(self, statement: str, database_url: str | None = None) -> None:
        connection = await asyncpg.connect(database_url or self.admin_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def _server_version(self) -> str:
        connection = await asyncpg.connect(self.admin_url)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    async def _redis_version(self) -> str:
        client = Redis.from_url(self.redis_url)
        try:
            info = await client.info("server")
            return str(info.get("redis_version", "?"))
        finally:
            await client.aclose()

    def create_schema(self, schema: str) -> None:
        _run(lambda: self._admin(f'CREATE SCHEMA "{schema}"', self.database_url()))

    def drop_schema(self, schema: str) -> None:
        _run(lambda: self._admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', self.database_url()))

    def forget(self, keys: ClusterKeys) -> None:
        async def forget() -> None:
            client = Redis.from_url(self.redis_url)
            try:
                await forget_cluster(client, keys)
            finally:
                await client.aclose()

        _run(forget)

    def close(self) -> None:
        try:
            if not self.database_shared:
                _run(lambda: self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        finally:
            if self._redis is not None:
                self._redis.stop()


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class ClusterUnderTest:
    """The nodes of one scenario: a fresh schema and cluster name, started together."""

    services: ClusterServices
    folder: Path
    placement: Placement
    source: Path | None = None
    bystanders: int = 0
    """Nodes more that the generator never connects to: what hearing every event costs."""

    def __post_init__(self) -> None:
        suffix = secrets.token_hex(4)
        self.schema = f"bench_{suffix}"
        self.keys = ClusterKeys(f"bench_{suffix}")
        self.nodes: list[ServerUnderTest] = []

    def start(self) -> ClusterUnderTest:
        self.services.create_schema(self.schema)
        node_ids = [*NODE_IDS, *(f"b{index + 1}" for index in range(self.bystanders))]
        for node_id in node_ids:
            env = {
                "CHATAPP_DATABASE_URL": self.services.database_url(self.schema),
                "CHATAPP_REDIS_URL": self.services.redis_url,
                "CHATAPP_NODE_ID": node_id,
                "CHATAPP_CLUSTER_NAME": self.keys.cluster,
            }
            self.nodes.append(
                ServerUnderTest(
                    "chat",
                    self.folder / node_id,
                    self.folder / f"{node_id}.log",
                    self.placement,
                    source=self.source,
                    env=env,
                )
            )
        try:
            _together([node.start for node in self.nodes])
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes]

    def target(self) -> dict[str, Any]:
        serving = self.nodes[: len(NODE_IDS)]
        return {
            "kind": "chat",
            "urls": [node.url for node in serving],
            "ws_urls": [node.ws_url for node in serving],
            "pids": [node.pid for node in serving],
            "bystander_pids": [node.pid for node in self.nodes[len(NODE_IDS) :]],
            "services": {
                "admin_url": self.services.admin_url,
                "database_url": self.services.database_url(self.schema),
                "database": self.services.database,
                "database_shared": self.services.database_shared,
                "schema": self.schema,
                "redis_url": self.services.redis_url,
                "redis_private": self.services.redis_private,
            },
        }

    def stop(self) -> list[int | None]:
        """Stop the nodes together, then forget the cluster's keys and drop its schema."""
        try:
            return _together([node.stop for node in self.nodes if node.process is not None])
        finally:
            try:
                self.services.forget(self.keys)
            finally:
                self.services.drop_schema(self.schema)


def _together(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls at once, each in a thread; their answers, or the first failure."""
    if not calls:
        return []
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]
