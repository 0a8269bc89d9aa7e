"""An async Python client for the chat server; also the harness of our own tests."""

from chatapp.client.http import ChatApiError, ChatClient, RawAnswer

__all__ = ["ChatApiError", "ChatClient", "RawAnswer"]
