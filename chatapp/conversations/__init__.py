"""Conversations: a user's view of their channels, from social's and messaging's data."""

from chatapp.conversations.service import Conversations

__all__ = ["Conversations"]
