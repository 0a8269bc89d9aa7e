"""Requests over the control socket: work only the running server can do, answered when done."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chatapp.bus import InProcessBus
from chatapp.bus.control_socket import (
    ControlSocket,
    RequestRefused,
    ask_running_server,
    relay_to_running_server,
    server_listens,
)
from chatapp.events import event_codec
from chatapp.social import FriendshipChanged


async def test_a_request_is_answered_when_its_work_is_done(tmp_path: Path) -> None:
    """The answer comes when the handler returns, however long it takes; a refusal says why;
    a request the server does not know is refused by name; events pass as before."""
    bus = InProcessBus()
    seen: list[object] = []

    async def heard(event: FriendshipChanged) -> None:
        seen.append(event)

    bus.subscribe(FriendshipChanged, heard, name="test")
    await bus.start()

    async def slow(request: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {"echo": request["value"]}

    async def picky(request: dict[str, Any]) -> dict[str, Any]:
        raise RequestRefused("not today")

    control = ControlSocket(tmp_path, bus, event_codec(), requests={"slow": slow, "picky": picky})
    await control.start()
    try:
        assert await server_listens(tmp_path)
        answer = await ask_running_server(tmp_path, {"request": "slow", "value": 7})
        assert answer == {"ok": True, "echo": 7}
        assert await ask_running_server(tmp_path, {"request": "picky"}) == {
            "ok": False,
            "error": "not today",
        }
        unknown = await ask_running_server(tmp_path, {"request": "nothing"})
        assert unknown is not None
        assert unknown["ok"] is False
        assert "'nothing'" in unknown["error"]
        event = FriendshipChanged(user_ids=(1, 2), status="accepted", requested_by=1)
        assert await relay_to_running_server(tmp_path, [event], event_codec())
        await bus.drain()
        assert seen == [event]
    finally:
        await control.close()
        await bus.close()
    assert not await server_listens(tmp_path)
    assert await ask_running_server(tmp_path, {"request": "slow", "value": 1}) is None
