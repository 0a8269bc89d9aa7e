"""The Python HTTP client's channel and message methods against a real server."""

from __future__ import annotations

from chatapp.testing import RunningServer


async def test_client_methods_cover_channels_messages_and_sync(chat_server: RunningServer) -> None:
    """Each ChatClient method reaches its endpoint and parses the protocol's answer."""
    alice, bob, carol = await chat_server.users(3)
    pair = await alice.open_direct(bob.user_id)
    assert pair.kind == "direct"
    team = await alice.create_group("team", [bob.user_id])
    assert (await alice.rename_channel(team.channel_id, "crew")).name == "crew"
    assert carol.user_id in (await alice.add_member(team.channel_id, carol.user_id)).members
    await carol.remove_member(team.channel_id, carol.user_id)
    sent = await alice.send_message(pair.channel_id, "hello", client_msg_id="c-1")
    again = await alice.send_message(pair.channel_id, "hello", client_msg_id="c-1")
    assert (sent.seq, sent.message) == (again.seq, again.message)
    await alice.send_message(pair.channel_id, "second")
    page = await bob.messages(pair.channel_id, limit=1)
    assert ([m.text for m in page.messages], page.has_more) == (["second"], True)
    older = await bob.messages(pair.channel_id, before=page.messages[0].message_id)
    assert [m.text for m in older.messages] == ["hello"]
    await bob.mark_read(pair.channel_id, 2)
    assert (await bob.channel(pair.channel_id)).unread_count == 0
    assert [c.channel_id for c in await bob.channels()] == [pair.channel_id, team.channel_id]
    synced = await bob.sync(since=0, limit=1)
    assert (synced.next_since, synced.has_more) == (1, True)
