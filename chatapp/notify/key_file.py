"""The name of the file in the data folder that keeps the server's VAPID key.

Apart from `vapid`, which loads cryptography: a backup copies the file by
name, and a server without Web Push should not load a cipher library for it.
"""

from __future__ import annotations

from typing import Final

KEY_FILE: Final = "vapid_private.pem"
