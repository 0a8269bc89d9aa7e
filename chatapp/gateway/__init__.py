"""The WebSocket gateway: connections, the hello/sync handshake, delivery to devices.

Importing the package loads only its events; the server side (aiohttp) is in
`chatapp.gateway.server`, which the composition root imports.
"""

from chatapp.gateway.events import TypingStarted

__all__ = ["TypingStarted"]
