"""`python run.py --demo`: a few users, friendships, a group and some history.

Seeded through the real modules once the server's stores are open, so a first
look at the web client shows a living chat. Every step is idempotent: users
are created only when missing, friend requests and direct channels are
naturally repeatable, the group is found by name, and each message has a fixed
`client_msg_id`, which the server stores at most once.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from chatapp.config import Settings
from chatapp.services import SERVICES, Services

log = structlog.get_logger(__name__)

DEMO_PASSWORD = "demo-password"
DEMO_USERS = {
    "alice": "Alice Martin",
    "bob": "Bob Okafor",
    "carol": "Carol Nguyen",
    "dave": "Dave Kowalski",
}
# Accepted friendships; dave has only asked alice so far.
DEMO_FRIENDS = [("alice", "bob"), ("alice", "carol"), ("bob", "carol")]
DEMO_REQUESTS = [("dave", "alice")]
DEMO_ADMIN = "alice"
"""The demo user the start-up lines show how to make an admin (the demo makes no admin itself)."""
DEMO_GROUP = "Launch team"
DEMO_GROUP_OWNER = "alice"
DEMO_GROUP_MEMBERS = ["bob", "carol", "dave"]

# (channel, sender, text): "group" or the other user of alice's direct chat.
DEMO_HISTORY = [
    ("bob", "bob", "Morning! Did the release notes go out?"),
    ("bob", "alice", "Yes, an hour ago. The changelog is in the repo too."),
    ("bob", "bob", "Great. I'll tell the people waiting on the import fix."),
    ("group", "alice", "Welcome to the launch team, everyone!"),
    ("group", "carol", "Hi all! I put the checklist in the shared folder."),
    ("group", "dave", "Load test finished: no message lost across 3 restarts."),
    ("group", "bob", "Nice. Shall we go live on Thursday?"),
    ("group", "carol", "Thursday works for me.\nI'll write the announcement tomorrow."),
    ("carol", "carol", "Can you review the announcement draft later?"),
    ("bob", "bob", "Lunch at 12:30?"),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    display_name: str
    password: str


async def seed_demo(services: Services) -> list[DemoLogin]:
    """Create the demo data unless it is there already; the logins to print."""
    ids = {name: await _user_id(services, name, shown) for name, shown in DEMO_USERS.items()}
    for first, second in DEMO_FRIENDS:
        await services.friends.request(ids[first], ids[second])
        await services.friends.request(ids[second], ids[first])
    for asker, asked in DEMO_REQUESTS:
        if not await services.friends.are_friends(ids[asker], ids[asked]):
            await services.friends.request(ids[asker], ids[asked])
    group_id = await _group_id(services, ids)
    alice = ids["alice"]
    for number, (where, sender, text) in enumerate(DEMO_HISTORY, start=1):
        if where == "group":
            channel_id = group_id
        else:
            channel, _ = await services.social.open_direct(alice, ids[where])
            channel_id = channel.channel_id
        await services.messaging.accept(ids[sender], channel_id, f"demo-{number}", text)
    log.info("demo_seeded", users=len(ids), group_id=group_id)
    return [DemoLogin(name, shown, DEMO_PASSWORD) for name, shown in DEMO_USERS.items()]


async def _user_id(services: Services, username: str, display_name: str) -> int:
    for user in await services.accounts.find_users(username):
        if user.username == username:
            return user.user_id
    user = await services.accounts.signup(username, DEMO_PASSWORD, display_name, address="demo")
    return user.user_id


async def _group_id(services: Services, ids: dict[str, int]) -> int:
    owner = ids[DEMO_GROUP_OWNER]
    for membership in await services.social.memberships(owner):
        channel = membership.channel
        if channel.kind == "group" and channel.name == DEMO_GROUP:
            return channel.channel_id
    members = [ids[name] for name in DEMO_GROUP_MEMBERS]
    channel = await services.social.create_group(owner, DEMO_GROUP, members)
    return channel.channel_id


def print_logins(logins: list[DemoLogin], url: str, *, admin_command: str) -> None:
    print(f"\nDemo data is ready. Open {url}/ and log in as any of:", flush=True)
    for login in logins:
        print(f"  {login.username:<8} password: {login.password}   ({login.display_name})")
    print("Two browsers (or a private window) let you chat with yourself.")
    print(f"Make {DEMO_ADMIN} an admin (also while this runs): {admin_command}\n", flush=True)


async def seed_on_startup(app: web.Application) -> None:
    """An `on_startup` hook: runs after the stores are open, before the port listens."""
    services = app[SERVICES]
    logins = await seed_demo(services)
    settings = services.settings
    print_logins(
        logins,
        _browser_url(settings.base_url),
        admin_command=grant_admin_command(DEMO_ADMIN, settings.data_dir),
    )


def grant_admin_command(username: str, data_dir: Path) -> str:
    """The command that makes `username` an admin, as this interpreter runs it from here."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):  # an interpreter outside this folder stays absolute
        python = python.relative_to(Path.cwd())
    words = [str(python), "-m", "chatapp", "grant-admin", username]
    if data_dir != Settings.model_fields["data_dir"].default:
        words += ["--data-dir", str(data_dir)]
    return shlex.join(words)


def _browser_url(base_url: str) -> str:
    # A server listening on every address is reached locally at 127.0.0.1.
    return base_url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
