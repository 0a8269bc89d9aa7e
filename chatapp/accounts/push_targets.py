"""Push targets: where each device wants its notifications sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, JsonValue


class PushTarget(BaseModel):
    """One device's registration: a provider's name and that provider's target JSON."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
    provider: str
    target: JsonValue


class PushTargetStore(Protocol):
    """At most one push target per device, only ever for a live device."""

    async def set_target(
        self, *, user_id: int, device_id: int, provider: str, target: JsonValue, updated_at: int
    ) -> bool:
        """Set (or replace) the device's target; False when it is not a live device of the user."""
        ...

    async def remove_target(self, device_id: int) -> None:
        """Forget the device's target, if it has one."""
        ...

    async def targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        """The targets of these users' live devices."""
        ...
