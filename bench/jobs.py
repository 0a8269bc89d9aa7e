"""What the generator is asked to do for each scenario, at the run's sizes."""

from __future__ import annotations

from typing import Any

from bench.sizes import Sizes

# Beyond its own sizes, every generator job gets this long before it is stopped.
JOB_MARGIN_SECONDS = 180.0
# The scenarios that also run on the cluster (D and F are one process's memory and start).
CLUSTER_SCENARIOS = "ABCE"


def job(letter: str, s: Sizes, *, cluster: bool = False) -> tuple[str, dict[str, Any], float]:
    """The generator scenario, its parameters, and the seconds its phases take.

    The cluster gets the same job as the embedded server; B and C also wait,
    before and after their measured stretch, for PostgreSQL's counters to be
    exact (the embedded server has no such counters and does not wait).
    """
    settle = 2 * s.stats_settle_seconds if cluster else 0.0
    common = {"warmup_seconds": s.warmup_seconds, "text_chars": s.text_chars}
    if letter == "A":
        params = {"users": s.pair_users, "rates": s.rates, "seconds": s.latency_seconds, **common}
        return "latency", params, len(s.rates) * (s.latency_seconds + s.warmup_seconds + 5)
    if letter == "B":
        params = {
            "users": s.pair_users,
            "window": s.window,
            "seconds": s.throughput_seconds,
            "stats_settle_seconds": s.stats_settle_seconds,
            **common,
        }
        return "throughput", params, s.throughput_seconds + s.warmup_seconds + 10 + settle
    if letter == "C":
        params = {
            "members": s.group_members,
            "senders": s.group_senders,
            "rate": s.group_rate,
            "seconds": s.group_seconds,
            "window": s.group_window,
            "max_seconds": s.group_seconds / 2,
            "stats_settle_seconds": s.stats_settle_seconds,
            **common,
        }
        return "fanout", params, 1.5 * s.group_seconds + s.warmup_seconds + 10 + settle
    if letter == "D":
        params = {
            "users": s.idle_users,
            "steps": s.idle_steps,
            "idle_seconds": s.idle_seconds,
            "settle_seconds": s.idle_settle_seconds,
        }
        return "connections", params, len(s.idle_steps) * (s.idle_seconds + 2) + 120
    if letter == "E":
        params = {
            "users": s.storm_users,
            "devices": s.storm_devices,
            "rate": s.storm_rate,
            "before_seconds": s.storm_seconds,
            "after_seconds": s.storm_seconds,
            "idle_seconds": s.idle_seconds,
            "text_chars": s.text_chars,
        }
        return "reconnect", params, 91.0 + s.idle_seconds
    raise ValueError(f"no generator job for scenario {letter}")
