"""Social: channels, membership and read markers (friendships come with presence)."""

from chatapp.social.events import ChannelChanged, FriendshipChanged, ReadMarkerMoved
from chatapp.social.friend_store import Friendship, SqliteFriendStore
from chatapp.social.friends import Friends
from chatapp.social.models import Channel, Membership
from chatapp.social.service import GROUP_LIMIT, Social, UserDirectory
from chatapp.social.sqlite_store import SqliteChannelStore
from chatapp.social.store import ChannelStore

__all__ = [
    "GROUP_LIMIT",
    "Channel",
    "ChannelChanged",
    "ChannelStore",
    "Friends",
    "Friendship",
    "FriendshipChanged",
    "Membership",
    "ReadMarkerMoved",
    "Social",
    "SqliteChannelStore",
    "SqliteFriendStore",
    "UserDirectory",
]
