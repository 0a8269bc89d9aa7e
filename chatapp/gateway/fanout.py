"""Bus subscribers that turn other modules' events into frames on live connections."""

from __future__ import annotations

from chatapp.accounts import DeviceRevoked
from chatapp.bus import Bus
from chatapp.conversations import Conversations
from chatapp.gateway import frames
from chatapp.gateway.connection import CLOSE_UNAUTHORIZED
from chatapp.gateway.events import TypingStarted
from chatapp.gateway.registry import ConnectionRegistry
from chatapp.messaging import MessageAccepted, MessageUpdated
from chatapp.messaging.updates import update_object
from chatapp.presence import PresenceChanged, PresenceTracker
from chatapp.social import (
    ChannelChanged,
    Friends,
    FriendshipChanged,
    ReadMarkerMoved,
    ReceiptShared,
    Social,
)


class FanOut:
    """Each event names everything delivery needs (members, seqs, the origin
    connection), so fan-out on any node reaches the sockets that node holds."""

    def __init__(
        self,
        registry: ConnectionRegistry,
        *,
        social: Social,
        conversations: Conversations,
        friends: Friends,
        presence: PresenceTracker,
    ) -> None:
        self._registry = registry
        self._social = social
        self._conversations = conversations
        self._friends = friends
        self._presence = presence

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(MessageAccepted, self.message_accepted, name="gateway.messages")
        bus.subscribe(MessageUpdated, self.message_updated, name="gateway.updates")
        bus.subscribe(ChannelChanged, self.channel_changed, name="gateway.channels")
        bus.subscribe(ReadMarkerMoved, self.read_marker_moved, name="gateway.reads")
        bus.subscribe(ReceiptShared, self.receipt_shared, name="gateway.receipts")
        bus.subscribe(TypingStarted, self.typing_started, name="gateway.typing")
        bus.subscribe(DeviceRevoked, self.device_revoked, name="gateway.revocations")
        bus.subscribe(PresenceChanged, self.presence_changed, name="gateway.presence")
        bus.subscribe(FriendshipChanged, self.friendship_changed, name="gateway.friendships")

    async def message_accepted(self, event: MessageAccepted) -> None:
        message_json = event.message_json or event.message.model_dump_json()
        origin = event.origin_connection
        of_user = self._registry.of_user
        for user_id, seq in event.inbox_seqs.items():
            frame: str | None = None
            for connection in of_user(user_id):
                if connection.id == origin:
                    connection.own(seq)  # it gets an ack instead
                    continue
                frame = frame or frames.message_frame(seq, message_json)
                connection.deliver(seq, frame)

    async def message_updated(self, event: MessageUpdated) -> None:
        """Every live connection of every member, the actor's included, gets the update."""
        update_json = frames.encode(update_object(event.update, event.present()))
        for user_id, seq in event.inbox_seqs.items():
            frame: str | None = None
            for connection in self._registry.of_user(user_id):
                frame = frame or frames.update_frame(seq, update_json)
                connection.deliver(seq, frame)

    async def channel_changed(self, event: ChannelChanged) -> None:
        channel = await self._social.get_channel(event.channel_id)
        if channel is None:
            return
        for user_id in event.user_ids:
            if not self._registry.has_user(user_id):
                continue
            view = await self._conversations.view(channel, user_id)
            frame = frames.encode(
                {"type": "channel", "event": event.event, "channel": view.model_dump()}
            )
            for connection in self._registry.of_user(user_id):
                connection.push(frame)

    async def read_marker_moved(self, event: ReadMarkerMoved) -> None:
        frame = frames.encode(
            {"type": "read", "channel_id": event.channel_id, "message_id": event.message_id}
        )
        for connection in self._registry.of_user(event.user_id):
            if connection.id != event.origin_connection:
                connection.push(frame)

    async def receipt_shared(self, event: ReceiptShared) -> None:
        """The viewers were chosen where the marker moved; each node tells the ones it holds."""
        frame = frames.encode(
            {
                "type": "receipt",
                "channel_id": event.channel_id,
                "user_id": event.user_id,
                "message_id": event.message_id,
            }
        )
        for viewer in event.viewer_ids:
            for connection in self._registry.of_user(viewer):
                connection.push(frame)

    async def typing_started(self, event: TypingStarted) -> None:
        frame = frames.encode(
            {"type": "typing", "channel_id": event.channel_id, "user_id": event.user_id}
        )
        for member in event.member_ids:
            if member == event.user_id:
                continue
            for connection in self._registry.of_user(member):
                connection.push(frame)

    async def presence_changed(self, event: PresenceChanged) -> None:
        frame = presence_frame(event.user_id, event.status, event.last_active_at)
        for friend in await self._friends.friends_of(event.user_id):
            for connection in self._registry.of_user(friend):
                connection.push(frame)

    async def friendship_changed(self, event: FriendshipChanged) -> None:
        """New friends see each other's presence at once, without waiting for a change."""
        if event.status != "accepted":
            return
        first, second = event.user_ids
        for viewer, subject in ((first, second), (second, first)):
            if not self._registry.has_user(viewer):
                continue
            (now,) = await self._presence.statuses([subject])
            frame = presence_frame(now.user_id, now.status, now.last_active_at)
            for connection in self._registry.of_user(viewer):
                connection.push(frame)

    async def device_revoked(self, event: DeviceRevoked) -> None:
        for connection in self._registry.of_device(event.user_id, event.device_id):
            connection.close(CLOSE_UNAUTHORIZED, "the device was logged out")


def presence_frame(user_id: int, status: str, last_active_at: int) -> str:
    return frames.encode(
        {"type": "presence", "user_id": user_id, "status": status, "last_active_at": last_active_at}
    )
