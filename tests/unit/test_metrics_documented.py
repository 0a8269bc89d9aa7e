"""docs/operations.md lists every metric the server registers, so the manual stays true."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chatapp.observability import Metrics

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@dataclass(frozen=True)
class _Figures:
    sent: int = 0
    received: int = 0
    backlog: int = 0


@dataclass(frozen=True)
class _Collector:
    collections: tuple[int, int, int] = (0, 0, 0)
    seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)


def exposed_names(metrics: Metrics) -> set[str]:
    """Each metric family as a scrape names it: a counter by its `_total` series."""
    names = set()
    for family in metrics.registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def documented_names() -> set[str]:
    """The metrics in the first column of the manual's "Metrics" table."""
    section = OPERATIONS.read_text(encoding="utf-8").split("\n## Metrics\n", 1)[1]
    return set(re.findall(r"^\| `(chatapp_[a-z_]+)` \|", section, flags=re.MULTILINE))


def test_every_registered_metric_is_in_the_operations_manual() -> None:
    """Every family the server's registry exposes (the bus's included) has a row in the
    Metrics table of docs/operations.md, and the table names none that does not exist."""
    metrics = Metrics()
    metrics.watch_bus(_Figures)
    metrics.watch_collector(_Collector())
    registered = exposed_names(metrics)
    assert len(registered) >= 12
    documented = documented_names()
    assert registered - documented == set(), "registered but not in docs/operations.md"
    assert documented - registered == set(), "in docs/operations.md but not registered"


def test_the_names_are_those_a_scrape_shows() -> None:
    """The names checked are the series names in /metrics' text (counters end in _total)."""
    metrics = Metrics()
    metrics.watch_bus(_Figures)
    metrics.watch_collector(_Collector())
    text = metrics.render().decode()
    for name in exposed_names(metrics):
        assert re.search(rf"^# TYPE {re.escape(name.removesuffix('_total'))}", text, re.M)
        assert name in text


def test_only_the_metrics_object_makes_metrics() -> None:
    """No module outside chatapp.observability imports the Prometheus client: a metric made
    elsewhere would escape the registry, the table and the check above."""
    package = Path(__file__).resolve().parents[2] / "chatapp"
    importers = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(from|import) prometheus_client", path.read_text(), re.M)
    }
    assert importers
    assert all(name.startswith("observability/") for name in importers), importers
