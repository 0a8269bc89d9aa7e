"""The browser's side of Web Push, for tests: a subscription's keys, decryption, VAPID checks.

Written from the RFCs with `cryptography` alone, so it checks the server's
Web Push independently of the library that produced it:

    subscription = BrowserSubscription(endpoint=receiver.url("/wp/1"))
    await client.set_push_target(device_id, "webpush", subscription.target())
    push = await receiver.next()
    claims = subscription.verify_vapid(push.headers["Authorization"], public_key=key)
    payload = subscription.decrypt(push.body)
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class BrowserSubscription:
    """A PushSubscription as a browser makes one: a P-256 key pair and an auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._auth = os.urandom(16)

    def target(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives, to register as the push target."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(self._public), "auth": b64url_encode(self._auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        """Open an aes128gcm body (RFC 8188) encrypted for this subscription (RFC 8291)."""
        salt, record_size, id_length = body[:16], int.from_bytes(body[16:20]), body[20]
        sender_public = body[21 : 21 + id_length]
        records = body[21 + id_length :]
        if len(records) > record_size:
            raise ValueError("more than one record; notifications fit in one")
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        shared = self._key.exchange(ec.ECDH(), sender)
        key_info = b"WebPush: info\x00" + self._public + sender_public
        ikm = _hkdf(salt=self._auth, ikm=shared, info=key_info, length=32)
        content_key = _hkdf(salt=salt, ikm=ikm, info=b"Content-Encoding: aes128gcm\x00", length=16)
        nonce = _hkdf(salt=salt, ikm=ikm, info=b"Content-Encoding: nonce\x00", length=12)
        padded = AESGCM(content_key).decrypt(nonce, records, None)
        # The last record ends with the delimiter 0x02, then zero padding.
        end = padded.rstrip(b"\x00")
        if not end.endswith(b"\x02"):
            raise ValueError("the record does not end with the last-record delimiter")
        return end[:-1]

    @staticmethod
    def verify_vapid(authorization: str, *, public_key: str) -> dict[str, Any]:
        """Check a `vapid t=<JWT>, k=<key>` header (RFC 8292); the JWT's claims.

        `public_key` is the server's key as `GET /push/config` gives it; the
        header must carry that key and the JWT must be signed (ES256) with it.
        """
        scheme, _, parameters = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"not a vapid authorization: {scheme!r}")
        fields = dict(part.strip().split("=", 1) for part in parameters.split(","))
        if fields["k"] != public_key:
            raise ValueError("the header carries another key")
        header, claims, signature = fields["t"].split(".")
        if json.loads(b64url_decode(header)) != {"typ": "JWT", "alg": "ES256"}:
            raise ValueError("not an ES256 JWT")
        raw = b64url_decode(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        verifier = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(public_key)
        )
        # Raises InvalidSignature when the token was not signed with this key.
        verifier.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        decoded: dict[str, Any] = json.loads(b64url_decode(claims))
        return decoded


def _hkdf(*, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
