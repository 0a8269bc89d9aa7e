"""Social: channels, membership, read markers, friendships and blocks.

The SQLite stores are in `chatapp.social.adapters`, which only the composition
root imports.
"""

from chatapp.social.block_store import BlockStore
from chatapp.social.blocks import Blocks
from chatapp.social.consent import Consent, GroupAddSettings
from chatapp.social.events import (
    ChannelChanged,
    FriendshipChanged,
    ReadMarkerMoved,
    ReceiptShared,
)
from chatapp.social.friend_store import Friendship, FriendStore
from chatapp.social.friends import Friends
from chatapp.social.models import (
    Channel,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)
from chatapp.social.receipts import Receipt, Receipts, ReceiptSharing
from chatapp.social.service import GROUP_LIMIT, Social, UserDirectory
from chatapp.social.store import ChannelStore, ChannelStoreError

__all__ = [
    "GROUP_LIMIT",
    "BlockStore",
    "Blocks",
    "Channel",
    "ChannelChanged",
    "ChannelLevels",
    "ChannelStore",
    "ChannelStoreError",
    "Consent",
    "FriendStore",
    "Friends",
    "Friendship",
    "FriendshipChanged",
    "GroupAddSettings",
    "MemberState",
    "Membership",
    "NotificationLevel",
    "ReadMarkerMoved",
    "Receipt",
    "ReceiptShared",
    "ReceiptSharing",
    "Receipts",
    "Social",
    "UserDirectory",
]
