"""The Markdown report (docs/benchmarks.md) made from a run's results."""

from __future__ import annotations

from typing import Any

from bench.report_cluster import cluster_sections
from bench.report_scenarios import scenario_sections
from bench.report_sections import baseline_section, ceiling_section

Results = dict[str, Any]


def render_report(results: Results) -> str:
    meta = results["meta"]
    parts = [
        "# Benchmarks",
        "",
        "Made by `.venv/bin/python -m bench --mode both`, which starts the server as its own "
        "process on a "
        "fresh data folder for every scenario, drives it over real WebSockets from a separate "
        "load-generator process, and writes this file and `bench/results/latest.json`. "
        "`python -m bench --quick` runs every scenario at tiny sizes in seconds (for CI; its "
        "numbers mean nothing and it writes `bench/results/quick.*` instead); "
        "`--profile` also samples the server with py-spy (see `bench/results/profiles/`).",
        *_modes_paragraph(meta),
        "",
        _run_line(meta),
        "",
        *_machine_table(meta),
        "",
        "## Targets",
        "",
        *_targets_table(results),
        "",
        *_noise(results),
        *_problems(results),
        *ceiling_section(results),
        *scenario_sections(results),
        *cluster_sections(results),
        *baseline_section(results),
        *_method(),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _run_line(meta: Results) -> str:
    machine = meta["machine"]
    tree = " plus uncommitted changes to the server" if machine["work_tree_changed"] else ""
    quick = " **Quick sizes: these numbers mean nothing.**" if meta["quick"] else ""
    return (
        f"Measured {meta['started_at']} on commit `{machine['commit']}`{tree}, "
        f"in {meta['seconds']:.0f} s. Command: `{meta['command']}`.{quick}"
    )


def _machine_table(meta: Results) -> list[str]:
    machine = meta["machine"]
    libraries = machine["libraries"]
    load = ", ".join(f"{value:.2f}" for value in meta["load_average_at_start"])
    rows = [
        ("cores", f"{machine['cores']} ({machine['cpu_model']})"),
        ("memory", f"{machine['memory_gib']} GiB"),
        ("kernel", machine["kernel"]),
        ("Python", f"{machine['python']} ({machine['python_implementation']})"),
        ("aiohttp", libraries["aiohttp"]),
        ("plyvel (LevelDB)", f"{libraries['plyvel']} (LevelDB {machine['leveldb']})"),
        ("pydantic", libraries["pydantic"]),
        ("uvloop", libraries["uvloop"]),
        ("placement", meta["placement"]),
        *_cluster_rows(meta),
        ("open files per process", f"{meta['open_files_limit']:,}"),
        ("load average at start", load),
        (
            "server settings",
            "the test settings: argon2id at 1 pass and 1 MiB (login cost is not what is "
            "measured), rate limits lifted; everything else at its default (fsync on every "
            "write batch, heartbeat every 5 s)",
        ),
    ]
    return ["| machine | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in rows)]


def _modes_paragraph(meta: Results) -> list[str]:
    cluster = meta.get("cluster") or {}
    if cluster.get("skipped"):
        why = str(cluster["skipped"]).removeprefix("cluster part skipped: ")
        return ["", f"The cluster part did not run: {why}."]
    if not cluster:
        return []
    return [
        "",
        "`--mode both` also runs A, B, C and E against three "
        "`chatapp serve` nodes on PostgreSQL and Redis, with the same generator jobs; a fresh "
        "schema and cluster name for each scenario. The embedded server's turn and the "
        "cluster's come one after the other for each scenario, so their ratios are from one "
        "run on one machine. What bounds the cluster on this machine, and what its per-message "
        "costs mean for many nodes, is in `docs/scaling.md`.",
    ]


def _cluster_rows(meta: Results) -> list[tuple[str, str]]:
    cluster = meta.get("cluster") or {}
    libraries = meta["machine"]["libraries"]
    if not cluster or cluster.get("skipped"):
        return []
    where = (
        "the three nodes and Redis on any CPU, the generator and helpers on its own"
        if cluster.get("placement") == "spread"
        else "the three nodes and Redis pinned with the server"
    )
    return [
        ("cluster", f"{cluster['nodes']} nodes; {where}"),
        (
            "PostgreSQL",
            f"{cluster.get('postgres_version', '?')}, shared with other programs on this "
            f"machine; {cluster.get('database', '?')}",
        ),
        ("Redis", f"{cluster.get('redis_version', '?')}, {cluster.get('redis', '?')}"),
        (
            "asyncpg / redis-py",
            f"{libraries.get('asyncpg', '?')} / {libraries.get('redis', '?')}",
        ),
    ]


def _targets_table(results: Results) -> list[str]:
    both = any(row.get("mode") == "cluster" for row in results["targets"])
    lines = [
        "| server | scenario | what | target | measured | verdict |"
        if both
        else "| scenario | what | target | measured | verdict |",
        "| --- | --- | --- | --- | --- | --- |" if both else "| --- | --- | --- | --- | --- |",
    ]
    for row in results["targets"]:
        measured = row["measured"]
        shown = "—" if measured is None else f"{_number(measured)} {row['unit']}"
        verdict = row["verdict"]
        if row.get("met") is True:
            verdict = "**met**"
        server = ("3 nodes" if row.get("mode") == "cluster" else "embedded") if both else ""
        lines.append(
            ("| " + server + " " if both else "")
            + f"| {row['scenario']} | {row['what']} | {row['target']} | {shown} | {verdict} |"
        )
    return lines


def _cpu_windows(value: Any) -> list[Results]:
    if isinstance(value, dict):
        found = [value] if "other_cpu" in value else []
        for item in value.values():
            found += _cpu_windows(item)
        return found
    if isinstance(value, list):
        return [window for item in value for window in _cpu_windows(item)]
    return []


def _noise(results: Results) -> list[str]:
    others = [
        window["other_cpu"]
        for window in _cpu_windows(results["scenarios"]) + _cpu_windows(results.get("cluster"))
    ]
    if not others:
        return []
    mean = sum(others) / len(others)
    return [
        f"While scenarios were measured, other programs (and kernel network work charged to "
        f"neither process) used on average {100 * mean:.0f}% of a CPU, at most "
        f"{100 * max(others):.0f}%; the machine has {results['meta']['machine']['cores']}. "
        "Phases with a high `other CPU` in the tables below were measured on a shared machine.",
        "",
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _problems(results: Results) -> list[str]:
    lines: list[str] = []
    for problem in results["problems"]:
        lines.append(f"- **Problem:** {problem}")
    for name, error in results["errors"].items():
        lines.append(f"- **Failed to run:** {name}: `{error}`")
    return [*lines, ""] if lines else []


def _method() -> list[str]:
    return [
        "## How it is measured",
        "",
        "- Server and generator are separate processes; with two CPUs or more the server is "
        "pinned to one CPU (its threads too: LevelDB writes, password hashing) and the "
        "generator and helpers to another. Server CPU and RSS come from `/proc/<pid>/stat` "
        "and `/proc/<pid>/status`; `other` CPU is the machine's busy time less the two "
        "processes (other programs, and kernel network work not charged to either).",
        "- Latency is from the generator writing the `send` frame to the recipient's "
        "connection reading the `message` frame, both in the generator process: each text "
        "starts with `t=<perf_counter_ns>;`. It includes the generator's own scheduling; the "
        "echo relay's numbers show that floor.",
        "- Lost: an acknowledged message some member's connection never received: after "
        "sending stops, the generator waits until everything owed has arrived, or until 5 s "
        "(10 s in E) pass with nothing arriving, 60 s at most; a server that is behind is "
        "late, not lossy. Duplicated: a message a connection received twice. "
        "Unacknowledged: a send with neither `ack` nor `error`.",
        "- Fixed rates are open loop: sends are made when due, whatever the answers. "
        '"As fast as acks allow" keeps a bounded number of sends unacknowledged per sender.',
        "- The generator ceiling: the same generator jobs against `bench/echo_server.py`, a "
        "relay with no storage, no accounts and no checks, pinned like the server. A server "
        "number close to the echo relay's is bounded by the generator, not the server.",
        "- Before each part the driver waits up to 5 s for the machine to go idle (other "
        "programs below 0.2 CPU); `machine_before` in the JSON says how busy it still was.",
        "- Every loop is bounded in count and time; all traffic is on 127.0.0.1.",
        "- The cluster (`--mode cluster` or `both`): three `python -m chatapp serve` nodes "
        "with `CHATAPP_DATABASE_URL`, `CHATAPP_REDIS_URL`, `CHATAPP_NODE_ID` and "
        "`CHATAPP_CLUSTER_NAME`, at the same test settings, started together on a fresh "
        "schema of a database the run makes for itself, and a fresh cluster name; afterwards "
        "the nodes are stopped, the keys deleted and the schema dropped. The generator "
        "connects link `i` to node `i mod 3` and makes its HTTP calls to the nodes in turn; "
        "every send and receipt names its connection's node, so deliveries across nodes are "
        "counted and timed apart. PostgreSQL publishes a backend's counters up to 10 s "
        "late, so B and C wait 10.5 s before and after their measured stretch on the "
        "cluster.",
        "",
    ]
