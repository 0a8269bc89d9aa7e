"""Discovery: which chat server a client should connect to.

One node today, so the answer is this node's public WebSocket URL. With several
gateway nodes this is where the least-loaded one would be chosen.
"""

from __future__ import annotations


class Discovery:
    def __init__(self, ws_url: str) -> None:
        self._ws_url = ws_url

    def ws_url_for(self, user_id: int) -> str:
        return self._ws_url
