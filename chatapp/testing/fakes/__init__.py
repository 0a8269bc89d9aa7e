"""Fakes of chatapp's own protocols, for unit tests here and in projects that use chatapp.

Hand-written, in memory and fast; each behaves as the real engine behind its
protocol does (ids, idempotency, uniqueness, what a revoked device may do) and
can be told to fail with its store's error (`failing`, `fail_next`, see
`CanFail`). No `unittest.mock`: a test on fakes runs the real modules.

    modules = build_modules_on_fakes()
    alice = await modules.sign_up("alice")
    ...
    await modules.bus.deliver()
"""

from chatapp.clock import ManualClock
from chatapp.testing.fakes.blocks import FakeBlockStore
from chatapp.testing.fakes.bus import RecordingBus
from chatapp.testing.fakes.channels import FakeChannelStore
from chatapp.testing.fakes.failures import CanFail
from chatapp.testing.fakes.frame_socket import FakeSocket
from chatapp.testing.fakes.friends import FakeFriendStore
from chatapp.testing.fakes.messages import FakeMessageStore
from chatapp.testing.fakes.modules import FAKE_PASSWORD, ModulesOnFakes, build_modules_on_fakes
from chatapp.testing.fakes.operators import FakeAuditLog, FakeInviteStore
from chatapp.testing.fakes.passwords import FakePasswordHasher
from chatapp.testing.fakes.presence import FakePresenceStore
from chatapp.testing.fakes.push_targets import FakePushTargetStore
from chatapp.testing.fakes.search import FakeSearchIndex
from chatapp.testing.fakes.users import FakeUserStore

__all__ = [
    "FAKE_PASSWORD",
    "CanFail",
    "FakeAuditLog",
    "FakeBlockStore",
    "FakeChannelStore",
    "FakeFriendStore",
    "FakeInviteStore",
    "FakeMessageStore",
    "FakePasswordHasher",
    "FakePresenceStore",
    "FakePushTargetStore",
    "FakeSearchIndex",
    "FakeSocket",
    "FakeUserStore",
    "ManualClock",
    "ModulesOnFakes",
    "RecordingBus",
    "build_modules_on_fakes",
]
