"""Run a real chat server inside tests: ours and other projects'.

With chatapp installed, pytest loads the `chat_server` fixture automatically:

    async def test_my_bot(chat_server):
        alice = await chat_server.user("alice")
        ...

Fakes of the server's own protocols (stores, bus, clock, socket) for fast unit
tests are in `chatapp.testing.fakes` and re-exported here.
"""

from chatapp.testing.browser_push import BrowserSubscription
from chatapp.testing.fakes import (
    CanFail,
    FakeAuditLog,
    FakeChannelStore,
    FakeFriendStore,
    FakeInviteStore,
    FakeMessageStore,
    FakePasswordHasher,
    FakePresenceStore,
    FakePushTargetStore,
    FakeSocket,
    FakeUserStore,
    ManualClock,
    ModulesOnFakes,
    RecordingBus,
    build_modules_on_fakes,
)
from chatapp.testing.process import ServerProcess, wait_until_ready
from chatapp.testing.proxy import TcpProxy
from chatapp.testing.push_receiver import PushReceiver, ReceivedPush
from chatapp.testing.raw_socket import RawSocket
from chatapp.testing.server import RunningServer, free_port, run_server

__all__ = [
    "BrowserSubscription",
    "CanFail",
    "FakeAuditLog",
    "FakeChannelStore",
    "FakeFriendStore",
    "FakeInviteStore",
    "FakeMessageStore",
    "FakePasswordHasher",
    "FakePresenceStore",
    "FakePushTargetStore",
    "FakeSocket",
    "FakeUserStore",
    "ManualClock",
    "ModulesOnFakes",
    "PushReceiver",
    "RawSocket",
    "ReceivedPush",
    "RecordingBus",
    "RunningServer",
    "ServerProcess",
    "TcpProxy",
    "build_modules_on_fakes",
    "free_port",
    "run_server",
    "wait_until_ready",
]
