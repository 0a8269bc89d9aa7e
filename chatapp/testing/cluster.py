"""Several `chatapp serve` processes joined in one cluster: for end-to-end cluster tests.

    async with local_cluster(tmp_path, nodes=("n1", "n2", "n3")) as cluster:
        alice = await cluster.user("alice", "n1")
        socket = await RawSocket.open(cluster.ws_url("n2"), alice.token or "")

Each cluster gets a fresh PostgreSQL schema (passed to the nodes as
`?search_path=`) and a fresh `CHATAPP_CLUSTER_NAME`; on exit the nodes are
stopped, the schema is dropped and the cluster's Redis keys are deleted.
PostgreSQL and Redis come from `cluster_services`, which skips the test (or
fails it in CI) when they are absent.

Imported on purpose only (not from `chatapp.testing`): it loads asyncpg and redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from chatapp.client import ChatClient
from chatapp.cluster.connection import open_redis
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.reset import forget_cluster
from chatapp.testing.cluster_services import fresh_name, postgres_url, redis_url
from chatapp.testing.process import ServerProcess
from chatapp.testing.server import DEFAULT_PASSWORD, TEST_SETTINGS

# Short enough that presence and registry expiry can be watched within a test.
FAST_CLUSTER_SETTINGS: dict[str, str] = {
    "CHATAPP_PRESENCE_TIMEOUT_MS": "2000",
    "CHATAPP_HEARTBEAT_INTERVAL_MS": "500",
}


def with_search_path(url: str, schema: str) -> str:
    """`url` with `search_path=schema` added to its query."""
    return f"{url}{'&' if urlsplit(url).query else '?'}search_path={schema}"


class LocalCluster:
    """Nodes of one cluster on this machine, each a `ServerProcess` with its own port and folder."""

    def __init__(
        self,
        base_dir: Path,
        *,
        database_url: str,
        redis_url: str,
        name: str,
        settings: Mapping[str, str] | None = None,
        node_settings: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.database_url = database_url
        self.redis_url = redis_url
        self.name = name
        self.keys = ClusterKeys(name)
        self.settings = {**FAST_CLUSTER_SETTINGS, **(settings or {})}
        self.node_settings = node_settings or {}
        self.nodes: dict[str, ServerProcess] = {}
        self._clients: list[ChatClient] = []

    # -- nodes -------------------------------------------------------------------------

    def env(self, node_id: str | None = None) -> dict[str, str]:
        """The cluster's settings as environment variables (with `CHATAPP_NODE_ID` if given).

        `settings` (given to the constructor) go over `FAST_CLUSTER_SETTINGS`, and the node's
        own `node_settings` over those.
        """
        env = {
            **self.settings,
            **self.node_settings.get(node_id or "", {}),
            "CHATAPP_DATABASE_URL": self.database_url,
            "CHATAPP_REDIS_URL": self.redis_url,
            "CHATAPP_CLUSTER_NAME": self.name,
        }
        if node_id is not None:
            env["CHATAPP_NODE_ID"] = node_id
        return env

    def process_env(self, node_id: str | None = None) -> dict[str, str]:
        """A process's whole environment: this one's, the test settings and the cluster's."""
        test_settings = {
            f"CHATAPP_{key.upper()}": str(value) for key, value in TEST_SETTINGS.items()
        }
        return {**os.environ, **test_settings, **self.env(node_id)}

    def data_dir(self, node_id: str) -> Path:
        return self.base_dir / node_id

    async def start(self, *node_ids: str, timeout: float = 30.0) -> list[ServerProcess]:
        """Start these nodes together and wait until every one is ready."""
        started = []
        for node_id in node_ids:
            if node_id in self.nodes:
                raise ValueError(f"node {node_id} was started already")
            node = ServerProcess(self.data_dir(node_id), env=self.env(node_id))
            self.nodes[node_id] = node
            started.append(node.start(wait_ready=0))
        await asyncio.gather(*(asyncio.to_thread(node.wait_ready, timeout) for node in started))
        return started

    def __getitem__(self, node_id: str) -> ServerProcess:
        return self.nodes[node_id]

    def url(self, node_id: str) -> str:
        return self.nodes[node_id].url

    def ws_url(self, node_id: str) -> str:
        """The node's own WebSocket URL (as it registers it: made from its host and port)."""
        return "ws" + self.nodes[node_id].url.removeprefix("http") + "/ws"

    def node_of(self, ws_url: str) -> str | None:
        """The node whose WebSocket URL this is."""
        return next((node_id for node_id in self.nodes if self.ws_url(node_id) == ws_url), None)

    def logs(self) -> str:
        """Every node's log, each under its name: for assertion messages."""
        return "\n".join(f"--- {node_id} ---\n{node.log()}" for node_id, node in self.nodes.items())

    def stop(
        self, node_ids: Iterable[str] | None = None, *, grace: float = 3.0
    ) -> dict[str, int | None]:
        """SIGTERM these nodes (all by default) together; SIGKILL those still running after
        `grace` seconds. Each node's exit code, None for one that had to be killed.
        """
        wanted = self.nodes if node_ids is None else {n: self.nodes[n] for n in node_ids}
        running = {
            node_id: node.process
            for node_id, node in wanted.items()
            if node.process is not None and node.process.poll() is None
        }
        for process in running.values():
            process.terminate()
        deadline = time.monotonic() + grace
        codes: dict[str, int | None] = {}
        for node_id, process in running.items():
            try:
                codes[node_id] = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes[node_id] = None
        return codes

    # -- commands ------------------------------------------------------------------------

    async def run_cli(
        self, *args: str, stdin: str = "", timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """`python -m chatapp ARGS` with the cluster's settings and a data folder of its own."""
        data_dir = self.base_dir / "cli-data"
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "chatapp", *args, "--data-dir", str(data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.process_env(),
        )

    # -- clients -------------------------------------------------------------------------

    def client(self, node_id: str, token: str | None = None) -> ChatClient:
        """An HTTP client of this node, closed with the cluster."""
        client = ChatClient(self.url(node_id), token=token)
        self._clients.append(client)
        return client

    async def user(
        self, username: str, node_id: str, password: str = DEFAULT_PASSWORD
    ) -> ChatClient:
        """Sign up on `node_id` and log in there: a client of that node, as the first device."""
        client = self.client(node_id)
        await client.signup(username, password)
        await client.login(username, password)
        return client

    async def device(
        self, username: str, node_id: str, password: str = DEFAULT_PASSWORD
    ) -> ChatClient:
        """Another device of an existing user, logged in on `node_id`."""
        client = self.client(node_id)
        await client.login(username, password)
        return client

    def clients_of(self, client: ChatClient, node_ids: Iterable[str]) -> dict[str, ChatClient]:
        """The same device (its token) as a client of each of these nodes."""
        return {node_id: self.client(node_id, client.token) for node_id in node_ids}

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()


@contextlib.asynccontextmanager
async def local_cluster(
    base_dir: Path,
    *,
    nodes: Iterable[str] = ("n1", "n2", "n3"),
    settings: Mapping[str, str] | None = None,
    node_settings: Mapping[str, Mapping[str, str]] | None = None,
    database_via: Callable[[str], str] | None = None,
    redis_via: Callable[[str], str] | None = None,
) -> AsyncIterator[LocalCluster]:
    """A cluster on a fresh schema and cluster name, its nodes started; everything removed after.

    `database_via` and `redis_via` rewrite the URLs the nodes are given (e.g.
    `TcpProxy.through`, so that a test can cut the nodes off a service).
    """
    database, redis = postgres_url(), redis_url()
    schema = fresh_name("chatapp_e2e")
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        cluster = LocalCluster(
            base_dir,
            database_url=with_search_path((database_via or str)(database), schema),
            redis_url=(redis_via or str)(redis),
            name=fresh_name("e2e"),
            settings=settings,
            node_settings=node_settings,
        )
        try:
            await cluster.start(*nodes)
            yield cluster
        finally:
            await cluster.close_clients()
            await asyncio.to_thread(cluster.stop)
            client = open_redis(redis)
            try:
                await forget_cluster(client, cluster.keys)
            finally:
                await client.aclose()
    finally:
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()
