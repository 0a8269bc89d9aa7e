"""What the accounts module tells the rest of the server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeviceRevoked(BaseModel):
    """A device's token stopped working (logout or revocation); its connections must close."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
