"""The wire contract: request and answer bodies shared by the server and `chatapp.client`."""

from chatapp.protocol.json_input import parse_json

__all__ = ["parse_json"]
