"""The web client, served at `/` by the same process (see `client_page`)."""

from chatapp.web.client_page import STATIC_DIR, add_web_client, content_security_policy

__all__ = ["STATIC_DIR", "add_web_client", "content_security_policy"]
