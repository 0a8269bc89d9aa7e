"""The wire contract: request and answer bodies shared by the server and `chatapp.client`."""
