"""What every provider may be built with, besides the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from chatapp.clock import Clock

if TYPE_CHECKING:
    # Only Web Push uses the key, and only its module loads cryptography.
    from cryptography.hazmat.primitives.asymmetric import ec


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
