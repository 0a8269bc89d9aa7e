"""Who may add a user to a group (protocol additions §5): `PATCH /me {group_adds}`.

With `friends`, only the user's accepted friends may name them when making a
group or add them to one; anyone else gets 403 `forbidden`, and nothing is
made or changed. The module runs on a two-node cluster too
(tests/e2e/conftest.py), so a setting changed through one node holds on the
other at once.
"""

from __future__ import annotations

from chatapp.client import ChatClient
from chatapp.testing import RunningServer
from tests.e2e.refusals import refused


async def befriend(a: ChatClient, b: ChatClient) -> None:
    await a.request("POST", "/api/v1/friends", {"user_id": b.user_id})
    await b.request("POST", "/api/v1/friends", {"user_id": a.user_id})


async def test_the_setting_is_shown_on_me_alone_and_checked(chat_server: RunningServer) -> None:
    """`group_adds` is `everyone` for a new user, shown by GET and PATCH /me and by no other
    user object; PATCH sets `friends` or `everyone`, leaves it alone when absent or null, and
    refuses any other value with 400 `bad_request`."""
    alice, bob = await chat_server.users(2)
    assert (await alice.request("GET", "/api/v1/me"))["user"]["group_adds"] == "everyone"
    answer = await alice.request("PATCH", "/api/v1/me", {"group_adds": "friends"})
    assert answer["user"]["group_adds"] == "friends"
    assert (await alice.me()).group_adds == "friends"
    assert (await alice.update_me(about="hi")).group_adds == "friends"
    assert (await alice.request("PATCH", "/api/v1/me", {"group_adds": None}))["user"][
        "group_adds"
    ] == "friends"
    shown = (await bob.request("GET", f"/api/v1/users/{alice.user_id}"))["user"]
    assert "group_adds" not in shown
    assert (await bob.request("GET", "/api/v1/me"))["user"]["group_adds"] == "everyone"
    name = (await alice.me()).username
    login = await chat_server.client().request(
        "POST", "/api/v1/auth/login", {"username": name, "password": "correct horse battery"}
    )
    assert "group_adds" not in login["user"]
    for value in ("nobody", "Friends", "", 1, True, ["friends"]):
        assert await refused(alice.request("PATCH", "/api/v1/me", {"group_adds": value})) == (
            400,
            "bad_request",
        ), value
    assert (await alice.update_me(group_adds="everyone")).group_adds == "everyone"


async def test_only_friends_may_add_a_user_who_says_so(chat_server: RunningServer) -> None:
    """With `friends`, a group naming the user by someone who is not their friend is refused
    whole (403 `forbidden`, no group for anyone), as is adding them; a friend may do both, a
    pending request is not friendship, and back at `everyone` anyone may again."""
    alice, bob, carol, dave = await chat_server.users(4)
    await alice.update_me(group_adds="friends")
    await befriend(alice, bob)
    await carol.request("POST", "/api/v1/friends", {"user_id": alice.user_id})  # pending

    for stranger in (carol, dave):
        assert await refused(stranger.create_group("with alice", [alice.user_id, bob.user_id])) == (
            403,
            "forbidden",
        )
    for client in (alice, bob, carol, dave):
        assert await client.channels() == []
    group = await carol.create_group("carol's", [dave.user_id])
    assert await refused(carol.add_member(group.channel_id, alice.user_id)) == (403, "forbidden")
    assert (await dave.channel(group.channel_id)).members == sorted([carol.user_id, dave.user_id])

    made = await bob.create_group("bob's", [alice.user_id, dave.user_id])
    assert alice.user_id in made.members
    other = await bob.create_group("bob's other", [])
    added = await bob.add_member(other.channel_id, alice.user_id)
    assert alice.user_id in added.members

    await alice.update_me(group_adds="everyone")
    assert alice.user_id in (await carol.add_member(group.channel_id, alice.user_id)).members


async def test_a_block_is_said_before_the_setting(chat_server: RunningServer) -> None:
    """A user who blocks the actor and lets only friends add them: the refusal is 403
    `blocked`, as for anyone who blocks the actor."""
    alice, bob = await chat_server.users(2)
    await alice.update_me(group_adds="friends")
    await alice.block(bob.user_id)
    assert await refused(bob.create_group("g", [alice.user_id])) == (403, "blocked")
