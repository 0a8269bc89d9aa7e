"""The server's VAPID key (RFC 8292): made on first start, kept in the data folder."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatapp.errors import StartupRefused
from chatapp.notify.key_file import KEY_FILE


class VapidKeyError(StartupRefused):
    """The key file cannot be used or made; the message names it, in one line.

    A server whose Web Push key is unusable must not start: a new key would
    silently orphan every subscription, so it refuses instead.
    """


def load_or_create_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key in `data_dir/vapid_private.pem`, created there if missing.

    Browsers tie each push subscription to this key, so it must outlive
    restarts: a new key would silently orphan every Web Push subscription.
    """
    path = data_dir / KEY_FILE
    if path.exists():
        return _load(path)
    try:
        return _create(data_dir, path)
    except OSError as exc:
        raise VapidKeyError(f"{path}: the VAPID key cannot be written ({exc})") from None


def new_key_pem() -> bytes:
    """A new P-256 key as unencrypted PKCS#8 PEM."""
    return key_pem(ec.generate_private_key(ec.SECP256R1()))


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_from_pem(pem: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    """The key in `pem`; `VapidKeyError` naming `where` when it is not a P-256 key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VapidKeyError(
            f"{where}: the VAPID key is not a readable, unencrypted PEM private key ({reason});"
            " restore it from a backup (a new key would orphan every Web Push subscription)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError(f"{where}: not a P-256 (prime256v1) EC key")
    return key


def _create(data_dir: Path, path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key_pem(key)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then renamed: a crash never leaves half a key.
    partial = path.with_suffix(".pem.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    return key


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as browsers take it for `applicationServerKey`.

    URL-safe base64 without padding of the uncompressed P-256 point.
    """
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def _load(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise VapidKeyError(
            f"{path}: the VAPID key is not a readable, unencrypted PEM private key ({exc});"
            " restore it from a backup (a new key would orphan every Web Push subscription)"
        ) from None
    return key_from_pem(pem, str(path))
