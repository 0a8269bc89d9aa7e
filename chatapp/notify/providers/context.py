"""What every provider may be built with, besides the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from chatapp.clock import Clock


@dataclass(frozen=True)
class ProviderContext:
    session: aiohttp.ClientSession
    """The HTTP client for URLs the operator configured (the webhook)."""
    target_session: aiohttp.ClientSession
    """The HTTP client for URLs users register: public addresses only (see guard.py)."""
    clock: Clock
    data_dir: Path
    """Where a provider keeps what it makes for itself (the VAPID key)."""
    vapid_key: ec.EllipticCurvePrivateKey | None = None
    """The Web Push key when it is kept elsewhere (a cluster's database); else the file's."""
