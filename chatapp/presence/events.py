"""What the presence module tells the rest of the server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["online", "offline"]


class PresenceChanged(BaseModel):
    """A user went online or offline."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    status: Status
    last_active_at: int
