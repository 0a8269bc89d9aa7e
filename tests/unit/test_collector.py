"""The serving process's collector settings: start-up objects frozen, collections spaced out."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from chatapp.bootstrap.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, settle_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_exists_and_spaces_collections() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    kept = [[index] for index in range(100)]

    settle_collector()

    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    assert YOUNG_THRESHOLD > 700  # CPython's default, which the module explains is too eager
