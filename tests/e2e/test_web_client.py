"""The web client in a real browser: Debian's Chromium, driven by Playwright.

Each test starts the real server in this process and opens the page as people
would. The main scenario reaches the server through a TCP proxy, so the test
can cut the page's WebSocket for real. Screenshots go to `artifacts/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    async_playwright,
    expect,
)

from chatapp.demo import seed_demo
from chatapp.testing import RunningServer, TcpProxy, free_port, run_server

CHROMIUM = Path(os.environ.get("CHATAPP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LEAVE_QUESTION = "Leave this group? You will no longer see its messages."

expect.set_options(timeout=10_000)


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Proxied:
    server: RunningServer
    proxy: TcpProxy

    @property
    def url(self) -> str:
        """The address people use: the proxy's, which the server announces as its own."""
        return f"http://127.0.0.1:{self.proxy.port}"


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Proxied]:
    """A server behind a TCP proxy that is its public URL, so the page's sockets go through it."""
    port = free_port()
    async with TcpProxy(port) as proxy:
        public_url = f"http://127.0.0.1:{proxy.port}"
        async with run_server(
            tmp_path / "chat-data", port=port, public_url=public_url, heartbeat_interval_ms=1000
        ) as server:
            yield Proxied(server, proxy)


class Person:
    """One person at one browser: a context of its own, so storage is not shared."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str, username: str):
        self.context = context
        self.page = page
        self.base_url = base_url
        self.username = username
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self._answers: set[asyncio.Future[None]] = set()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(
        cls, browser: Browser, base_url: str, username: str, viewport: dict[str, int] = DESKTOP
    ) -> Person:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        page = await context.new_page()
        return cls(context, page, base_url, username)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        # Confirmations (leave, remove) are answered yes; nothing else should appear.
        answer = dialog.accept() if dialog.type == "confirm" else dialog.dismiss()
        task = asyncio.ensure_future(answer)
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def sign_up(self) -> None:
        await self.page.goto(f"{self.base_url}/#/signup")
        await self.page.get_by_label("Username").fill(self.username)
        await self.page.get_by_label("Password").fill(PASSWORD)
        await self.page.get_by_role("button", name="Create account").click()
        await self.wait_online()

    async def log_in(self) -> None:
        await self.page.goto(f"{self.base_url}/")
        await self.page.get_by_label("Username").fill(self.username)
        await self.page.get_by_label("Password").fill(PASSWORD)
        await self.page.get_by_role("button", name="Log in").click()
        await self.wait_online()

    async def wait_online(self) -> None:
        await expect(self.page.locator(".connection")).to_have_attribute("data-state", "online")

    async def open_friends(self) -> None:
        await self.page.get_by_role("link", name=re.compile("^Friends")).click()
        await expect(self.page.get_by_role("heading", name="Friends", exact=True)).to_be_visible()

    def friend(self, username: str, section: str = "friends-title") -> Locator:
        return self.page.locator(f"[aria-labelledby={section}] [data-username='{username}']")

    async def open_channel(self, title: str) -> None:
        await self.page.locator(".channel-item", has_text=title).click()
        await expect(self.page.locator(".chat-title")).to_have_text(title)

    async def send(self, text: str) -> None:
        composer = self.page.locator(".composer-text")
        await composer.fill(text)
        await composer.press("Enter")

    async def expect_messages(self, texts: list[str]) -> None:
        await expect(self.page.locator(".chat .message .text")).to_have_text(texts)

    async def expect_all_sent(self) -> None:
        await expect(self.page.locator(".chat .message.pending")).to_have_count(0)

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=ARTIFACTS / name)

    async def session_token(self) -> str:
        session = json.loads(await self.page.evaluate("localStorage.getItem('chatapp.session')"))
        token: str = session["token"]
        return token

    async def close(self) -> None:
        assert not self.errors, self.errors
        await self.context.close()


async def test_friends_chat_in_groups_survive_reloads_and_cut_sockets(
    browser: Browser, proxied: Proxied
) -> None:
    """Two befriend and chat both ways, a third joins a group; reloads and cuts lose nothing."""
    alice = await Person.open(browser, proxied.url, "alice")
    bob = await Person.open(browser, proxied.url, "bob")
    await alice.sign_up()
    await bob.sign_up()

    # Friends: a request out, accepted in, and each sees the other online.
    await alice.open_friends()
    await alice.page.get_by_label("Username to add as a friend").fill("bob")
    await alice.page.get_by_role("button", name="Send request").click()
    await expect(alice.page.get_by_text("Request sent to bob.")).to_be_visible()
    await expect(alice.friend("bob", "outgoing-title")).to_be_visible()
    await bob.open_friends()
    await bob.page.get_by_role("button", name="Accept alice").click()
    await expect(bob.friend("alice").locator(".presence.online")).to_be_visible()
    await expect(alice.friend("bob").locator(".presence.online")).to_be_visible()

    # One-to-one, both ways, in order; a sent message is pending, then sent.
    await alice.friend("bob").get_by_role("button", name="Message bob").click()
    await expect(alice.page.locator(".chat-title")).to_have_text("bob")
    await alice.send("Hi Bob")
    first = alice.page.locator(".message", has_text="Hi Bob")
    await expect(first).to_have_class(re.compile(r"\bsent\b"))
    unread = bob.page.locator(".channel-item", has_text="alice")
    await expect(unread.locator(".unread-badge")).to_have_text("1")
    await expect(unread.locator(".channel-preview")).to_have_text("Hi Bob")
    await bob.open_channel("alice")
    await bob.expect_messages(["Hi Bob"])
    await expect(unread.locator(".unread-badge")).to_have_count(0)
    await alice.page.locator(".composer-text").press_sequentially("typing")
    await expect(bob.page.locator(".typing")).to_have_text("alice is typing…")
    await alice.page.locator(".composer-text").fill("")
    await bob.page.locator(".composer-text").fill("line one")
    await bob.page.locator(".composer-text").press("Shift+Enter")
    await bob.page.locator(".composer-text").press_sequentially("line two")
    await bob.page.locator(".composer-text").press("Enter")
    await alice.expect_messages(["Hi Bob", "line one\nline two"])
    for text in ("one", "two", "three"):
        await alice.send(text)
    await bob.send("four")
    direct = ["Hi Bob", "line one\nline two", "one", "two", "three", "four"]
    await alice.expect_messages(direct)
    await bob.expect_messages(direct)
    await alice.expect_all_sent()

    # The read marker moved on the server as bob saw the messages.
    bob_api = await proxied.server.device("bob", PASSWORD)
    [channel] = await bob_api.channels()
    for _ in range(50):
        if (await bob_api.channel(channel.channel_id)).unread_count == 0:
            break
        await asyncio.sleep(0.1)
    assert (await bob_api.channel(channel.channel_id)).unread_count == 0

    # A third person on a phone joins a group; all three see every message.
    carol = await Person.open(browser, proxied.url, "carol", PHONE)
    await carol.sign_up()
    await alice.page.get_by_role("link", name=re.compile("^Chats")).click()
    await alice.page.get_by_role("button", name="New group").click()
    await alice.page.get_by_label("Group name").fill("Launch")
    await alice.page.get_by_label("Members").fill("bob, carol")
    await alice.page.get_by_role("button", name="Create group").click()
    await expect(alice.page.locator(".chat-title")).to_have_text("Launch")
    await alice.send("Welcome, both of you")
    await bob.open_channel("Launch")
    await carol.open_channel("Launch")
    await bob.send("Thanks!")
    await bob.expect_messages(["Welcome, both of you", "Thanks!"])
    await carol.send("Glad to be here")
    group = ["Welcome, both of you", "Thanks!", "Glad to be here"]
    for person in (alice, bob, carol):
        await person.expect_messages(group)

    # The owner renames the group, removes a member and adds her back.
    await alice.page.get_by_role("button", name="Members").click()
    members = alice.page.locator("dialog")
    await members.get_by_label("Group name").fill("Launch team")
    await members.get_by_role("button", name="Rename").click()
    await expect(bob.page.locator(".chat-title")).to_have_text("Launch team")
    await members.get_by_role("button", name="Remove carol from the group").click()
    await expect(carol.page.locator(".channel-item", has_text="Launch")).to_have_count(0)
    await members.get_by_label("Add a member").fill("carol")
    await members.get_by_role("button", name="Add", exact=True).click()
    await expect(members.locator(".person")).to_have_count(3)
    await members.get_by_role("button", name="Close").click()
    await carol.open_channel("Launch team")
    await carol.expect_messages(group)

    # A reload keeps the session, the open chat and its history.
    await bob.page.reload()
    await bob.wait_online()
    await expect(bob.page.locator(".chat-title")).to_have_text("Launch team")
    await bob.expect_messages(group)
    await expect(bob.page.locator(".channel-item")).to_have_count(2)

    # Cut every connection for real: each page shows it, then reconnects and resyncs.
    assert proxied.proxy.cut(refuse_for=2.0) >= 3
    await expect(alice.page.locator(".connection")).to_have_attribute("data-state", "offline")
    await alice.send("sent while cut")
    await expect(alice.page.locator(".message.pending", has_text="sent while cut")).to_be_visible()
    group_id = (await bob_api.channels())[0].channel_id
    # Bob's other device, which talks to the server directly, posts meanwhile.
    await bob_api.send_message(group_id, "posted during the cut")
    # Stored when the page reconnects, so after the message posted meanwhile.
    group += ["posted during the cut", "sent while cut"]
    for person in (alice, bob, carol):
        await person.wait_online()
        await person.expect_messages(group)
    await alice.expect_all_sent()

    # The server's answers stop arriving: each page notices the silence by its
    # heartbeats, reconnects and catches up; the send whose ack was lost is
    # stored once and shown as sent.
    proxied.proxy.mute_server()
    await alice.send("answer lost")
    await expect(alice.page.locator(".message.pending", has_text="answer lost")).to_be_visible()
    group.append("answer lost")
    for person in (alice, bob, carol):
        await person.expect_messages(group)
    await alice.expect_all_sent()
    stored = await bob_api.messages(group_id)
    assert [message.text for message in stored.messages] == group
    await expect(carol.page.locator(".toast")).to_have_count(0)
    await alice.screenshot("web-client-desktop.png")
    await carol.screenshot("web-client-phone.png")

    # Leaving: carol leaves, and the others see two members.
    await carol.page.get_by_role("button", name="Members").click()
    await carol.page.get_by_role("button", name="Leave group").click()
    await expect(carol.page.locator(".channel-item")).to_have_count(0)
    await expect(alice.page.locator(".chat-subtitle")).to_have_text(re.compile("^2 members"))

    for person in (alice, bob, carol):
        assert person.dialogs in (
            [],
            ["confirm: Leave this group? You will no longer see its messages."],
        )
        await person.close()


async def test_user_text_is_text_and_the_page_forbids_inline_script(
    browser: Browser, chat_server: RunningServer
) -> None:
    """Markup in messages and names shows as text; the CSP blocks inline script; logout revokes."""
    mallory = await chat_server.user("mallory")
    victim = await chat_server.user("victim", PASSWORD)
    await mallory.update_me(display_name="<b>Mallory</b>")
    channel = await mallory.open_direct(victim.user_id)
    attack = "<img src=x onerror=alert(1)>"
    await mallory.send_message(channel.channel_id, attack)
    await mallory.send_message(channel.channel_id, "<script>window.pwned = 1</script>")

    person = await Person.open(browser, chat_server.url, "victim")
    response = await person.page.goto(f"{chat_server.url}/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    await person.log_in()

    # From the keyboard: the chat opens with the composer focused, and Enter sends.
    await person.page.locator(".channel-item", has_text="<b>Mallory</b>").focus()
    await person.page.keyboard.press("Enter")
    await expect(person.page.locator(".chat-title")).to_have_text("<b>Mallory</b>")
    await expect(person.page.locator(".composer-text")).to_be_focused()
    await person.page.keyboard.type("<i>typed</i>")
    await person.page.keyboard.press("Enter")
    await person.expect_messages([attack, "<script>window.pwned = 1</script>", "<i>typed</i>"])
    await expect(person.page.locator(".message-list img")).to_have_count(0)
    await expect(person.page.locator(".message-list script")).to_have_count(0)
    # An inline script put into the page by any means does not run.
    ran = await person.page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener(
                "securitypolicyviolation", () => resolve(window.pwned ?? "blocked"));
            const script = document.createElement("script");
            script.textContent = "window.pwned = 'ran'";
            document.body.append(script);
        })"""
    )
    assert ran == "blocked"
    assert await person.page.evaluate("window.pwned") is None
    assert person.dialogs == []

    # The limit is shown before sending: one character too many disables Send.
    composer = person.page.locator(".composer-text")
    await composer.fill("x" * 100_001)
    await expect(person.page.locator(".limit")).to_contain_text("1 too many")
    await expect(person.page.get_by_role("button", name="Send message")).to_be_disabled()
    await composer.fill("x" * 100_000)
    await expect(person.page.locator(".limit")).to_have_text("100,000 / 100,000 characters")
    await expect(person.page.get_by_role("button", name="Send message")).to_be_enabled()
    await composer.fill("")

    # The device was named after the browser; logging out revokes its token.
    token = await person.session_token()
    [device] = [d for d in await chat_server.client(token).devices() if d.current]
    assert re.fullmatch(r"\w+ on Linux", device.name), device.name
    await person.page.get_by_role("button", name="Account menu").click()
    await person.page.get_by_role("button", name="Log out").click()
    await expect(person.page.get_by_role("button", name="Log in")).to_be_visible()
    answer = await chat_server.client(token).raw_request("GET", "/api/v1/me")
    assert answer.status == 401
    await person.close()


NOTIFICATION_SPY = """
window.__notifications = [];
window.__hidden = false;
for (const [name, value] of [["hidden", () => window.__hidden],
                             ["visibilityState", () => (window.__hidden ? "hidden" : "visible")]]) {
  Object.defineProperty(Document.prototype, name, { get: value, configurable: true });
}
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: options?.body ?? "" });
  }
};
"""


async def test_hidden_tab_notifies_new_messages_once_allowed(
    browser: Browser, chat_server: RunningServer
) -> None:
    """After the person allows it, a message arriving while the tab is hidden notifies them."""
    friend = await chat_server.user("friend")
    await chat_server.user("reader", PASSWORD)
    reader_id = (await friend.find_users("reader"))[0].user_id
    channel = await friend.open_direct(reader_id)

    person = await Person.open(browser, chat_server.url, "reader")
    await person.context.add_init_script(NOTIFICATION_SPY)
    await person.log_in()
    await person.page.get_by_role("button", name="Account menu").click()
    enable = person.page.get_by_role("button", name="Enable notifications")
    await expect(enable).to_be_visible()
    await person.context.grant_permissions(["notifications"])
    await enable.click()
    await expect(enable).to_be_hidden()

    await friend.send_message(channel.channel_id, "seen in the open tab")
    await expect(person.page.locator(".channel-preview")).to_have_text("seen in the open tab")
    await person.page.evaluate("window.__hidden = true")
    await friend.send_message(channel.channel_id, "while you were away")
    await expect(person.page.locator(".channel-preview")).to_have_text("while you were away")
    notifications = await person.page.evaluate("window.__notifications")
    assert notifications == [{"title": "friend", "body": "while you were away"}]
    await person.close()


async def test_history_pages_in_as_the_reader_scrolls_up(
    browser: Browser, chat_server: RunningServer
) -> None:
    """A long chat opens on its newest page; scrolling up pages in older ones, in order."""
    writer = await chat_server.user("writer")
    reader = await chat_server.user("reader", PASSWORD)
    channel = await writer.open_direct(reader.user_id)
    for number in range(1, 131):
        await writer.send_message(channel.channel_id, f"message {number}")
    await reader.mark_read(channel.channel_id, 130)

    person = await Person.open(browser, chat_server.url, "reader")
    await person.log_in()
    await person.open_channel("writer")
    texts = person.page.locator(".chat .message .text")
    await expect(texts).to_have_count(50)
    await expect(texts.last).to_have_text("message 130")
    await expect(texts.last).to_be_in_viewport()
    scroller = person.page.locator(".messages")
    for shown in (100, 130):
        await scroller.evaluate("element => { element.scrollTop = 0; }")
        await expect(texts).to_have_count(shown)
    await person.expect_messages([f"message {number}" for number in range(1, 131)])
    await expect(person.page.locator(".history-status")).to_have_text(
        "This is the beginning of the conversation."
    )
    await person.close()


async def test_demo_data_shows_a_living_chat(browser: Browser, chat_server: RunningServer) -> None:
    """The --demo seed, run twice, gives one set of users, friends, a group and history."""
    for _ in range(2):
        logins = await seed_demo(chat_server.services)
    alice = await Person.open(browser, chat_server.url, "alice")
    await alice.page.goto(f"{chat_server.url}/")
    await alice.page.get_by_label("Username").fill(logins[0].username)
    await alice.page.get_by_label("Password").fill(logins[0].password)
    await alice.page.get_by_role("button", name="Log in").click()
    await alice.wait_online()
    names = alice.page.locator(".channel-name")
    await expect(names).to_have_count(3)
    # Seeded within a millisecond or two, so the most-recent-first order may tie.
    assert sorted(await names.all_inner_texts()) == ["Bob Okafor", "Carol Nguyen", "Launch team"]
    await expect(alice.page.get_by_role("link", name=re.compile("^Friends"))).to_contain_text("1")
    await alice.open_channel("Launch team")
    await expect(alice.page.locator(".chat .message")).to_have_count(5)
    await expect(alice.page.locator(".unread-divider")).to_be_visible()
    # Seen, so read: the open chat's unread count goes.
    await expect(alice.page.locator("[aria-current=page] .unread-badge")).to_have_count(0)
    await alice.screenshot("web-client-demo.png")
    await alice.close()


async def test_the_page_files_are_served_with_their_headers_and_nothing_else(
    chat_server: RunningServer,
) -> None:
    """Static files get the CSP and their types; other paths are 404; the API is untouched."""
    client = chat_server.client()
    module = await client.raw_request("GET", "/static/app.js")
    assert module.status == 200
    assert module.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "script-src 'self'" in module.headers["Content-Security-Policy"]
    assert module.headers["X-Content-Type-Options"] == "nosniff"
    page = await client.raw_request("GET", "/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js">' in page.text
    for path in ("/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/nothing.js"):
        assert (await client.raw_request("GET", path)).status == 404, path
    forged = await client.raw_request("GET", "/", headers={"Host": "evil;script-src *"})
    assert "evil" not in forged.headers["Content-Security-Policy"]
    health = await client.raw_request("GET", "/healthz")
    assert "Content-Security-Policy" not in health.headers
