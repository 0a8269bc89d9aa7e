"""Search, notification levels, blocks, settings and the installed app in the web client.

Real Chromium pages against a real server. Screenshots go to `artifacts/`
(`web-search.png`, `web-profile.png`, `web-settings.png`).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import BrowserSubscription, PushReceiver, RunningServer, run_server
from tests.e2e.test_web_client import (  # noqa: F401 (fixtures)
    PASSWORD,
    PHONE,
    Person,
    browser,
    chromium,
)

pytestmark = pytest.mark.slow


async def befriend(a: ChatClient, b: ChatClient) -> None:
    """Make two API users friends (a request and its acceptance)."""
    await a.request("POST", "/api/v1/friends", {"user_id": b.user_id})
    await b.request("POST", "/api/v1/friends", {"user_id": a.user_id})


async def open_settings(person: Person) -> None:
    await person.page.get_by_role("button", name=re.compile("account menu")).click()
    await person.page.get_by_role("link", name="Settings").click()
    await expect(person.page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()


async def test_search_finds_messages_pages_and_jumps_to_one_in_older_history(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    """A prefix finds the message, highlighted as text (markup in it stays text); more
    results come a page at a time; a click opens the chat with history paged back to it."""
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    cid = channel.channel_id
    await bob_api.send_message(cid, "before one")
    await bob_api.send_message(cid, "before two")
    target = await bob_api.send_message(cid, "The secret word is pineapple, tell nobody")
    await alice_api.send_message(cid, "<img src=x onerror=alert(1)> pineapple <b>juice</b>")
    for number in range(120):
        await bob_api.send_message(cid, f"filler number {number}")
    await chat_server.settle()

    alice = await Person.open(browser, chat_server.url, "alice")
    await alice.log_in()
    await alice.page.get_by_role("link", name="Search").click()
    box = alice.page.get_by_label("Search messages")
    await expect(box).to_be_focused()
    await box.fill("pineap")
    await box.press("Enter")
    results = alice.page.locator(".search-result")
    await expect(results).to_have_count(2)
    await expect(alice.page.locator(".search-status")).to_have_text("2 messages found.")
    newest = results.nth(0)
    await expect(newest.locator(".result-channel")).to_have_text("bob")
    await expect(newest.locator(".result-sender")).to_have_text("You")
    await expect(newest.locator(".result-text")).to_have_text(
        "<img src=x onerror=alert(1)> pineapple <b>juice</b>"
    )
    await expect(alice.page.locator(".search-results img, .search-results b")).to_have_count(0)
    older = results.nth(1)
    await expect(older.locator(".result-sender")).to_have_text("bob")
    await expect(older.locator("mark")).to_have_text(["pineapple"])
    await expect(older.locator("time")).not_to_be_empty()
    await alice.screenshot("web-search.png")

    # Pages: 20 at a time, `next_before` for the rest.
    await box.fill("filler")
    await box.press("Enter")
    await expect(results).to_have_count(20)
    await expect(results.first.locator(".result-text")).to_have_text("filler number 119")
    more = alice.page.get_by_role("button", name="Show older results")
    await more.click()
    await expect(results).to_have_count(40)
    await expect(results.nth(20).locator(".result-text")).to_have_text("filler number 99")

    # A click jumps to the message, paging back through 120 newer ones.
    await box.fill("secret pineapple")
    await box.press("Enter")
    await expect(results).to_have_count(1)
    await results.first.click()
    await expect(alice.page).to_have_url(re.compile(f"#/chats/{cid}/{target.message.message_id}$"))
    await expect(alice.page.locator(".chat-title")).to_have_text("bob")
    line = alice.page.locator(f".message[data-message-id='{target.message.message_id}']")
    await expect(line).to_be_in_viewport()
    await expect(line).to_be_focused()
    texts = alice.page.locator(".chat .message .text")
    await expect(texts.filter(has_text="before two")).to_have_count(1)
    await expect(texts.filter(has_text="filler number 0")).to_have_count(1)
    await expect(texts.filter(has_text="filler number 119")).to_have_count(1)

    # Back to search: the last results are still there.
    await alice.page.go_back()
    await expect(results).to_have_count(1)
    await alice.close()


async def test_a_muted_channel_shows_so_and_the_server_keeps_the_level(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    await bob_api.send_message(channel.channel_id, "hi")
    alice = await Person.open(browser, chat_server.url, "alice")
    await alice.log_in()
    await alice.open_channel("bob")
    options = alice.page.get_by_role("button", name="Chat options")
    await options.click()
    menu = alice.page.get_by_role("menu", name="Chat options")
    await expect(menu.get_by_role("menuitemradio", name="All messages")).to_have_attribute(
        "aria-checked", "true"
    )
    await menu.get_by_role("menuitemradio", name="Nothing (muted)").click()
    row = alice.page.locator(f".channel-item[data-channel-id='{channel.channel_id}']")
    await expect(row.get_by_role("img", name="muted")).to_be_visible()
    await expect(alice.page.locator(".chat-level").get_by_role("img", name="muted")).to_be_visible()
    await expect(options).to_be_focused()
    (listed,) = await alice_api.channels()
    assert listed.notification_level == "none"

    # After a reload the server's level is shown, and the menu marks it.
    await alice.page.reload()
    await alice.wait_online()
    await expect(row.get_by_role("img", name="muted")).to_be_visible()
    await alice.open_channel("bob")
    await options.press("Enter")
    await expect(menu.get_by_role("menuitemradio", name="Nothing (muted)")).to_be_focused()
    await expect(menu.get_by_role("menuitemradio", name="Nothing (muted)")).to_have_attribute(
        "aria-checked", "true"
    )
    await alice.page.keyboard.press("ArrowUp")
    await alice.page.keyboard.press("Enter")  # Mentions only
    await expect(row.get_by_role("img", name="mentions only")).to_be_visible()
    (listed,) = await alice_api.channels()
    assert listed.notification_level == "mentions"
    await alice.close()


async def test_block_from_a_profile_stops_the_direct_chat_and_unblock_restores_it(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    carol_api = await chat_server.user("carol", PASSWORD)
    await befriend(alice_api, bob_api)
    await bob_api.update_me(about="Plays <b>bass</b> on weekends")
    group = await alice_api.create_group("Band", [bob_api.user_id, carol_api.user_id])
    await bob_api.send_message(group.channel_id, "practice at eight")
    direct = await alice_api.open_direct(bob_api.user_id)

    alice = await Person.open(browser, chat_server.url, "alice")
    await alice.log_in()
    # From a friend entry.
    await alice.open_friends()
    await alice.page.get_by_role("button", name="Profile of bob").click()
    profile = alice.page.get_by_role("dialog", name="Profile: bob")
    await expect(profile).to_contain_text("Plays <b>bass</b> on weekends")
    await profile.get_by_role("button", name="Close").click()

    # From a sender's name in a group.
    await alice.open_channel("Band")
    await alice.page.locator(".message .sender", has_text="bob").click()
    await expect(profile).to_be_visible()
    await alice.screenshot("web-profile.png")
    await profile.get_by_role("button", name="Block bob").click()
    confirm = alice.page.get_by_role("dialog", name="Block bob?")
    await confirm.get_by_role("button", name="Block").click()
    await expect(profile.get_by_role("button", name="Unblock bob")).to_be_visible()
    await expect(profile.get_by_role("status")).to_contain_text("You block bob")
    await profile.get_by_role("button", name="Close").click()

    with pytest.raises(ChatApiError) as refused:
        await bob_api.send_message(direct.channel_id, "can you hear me?")
    assert (refused.value.status, refused.value.code) == (403, "blocked")
    assert [user.user_id for user in await alice_api.blocks()] == [bob_api.user_id]

    # The direct chat says so, and a send from this side is refused too.
    direct_row = alice.page.locator(f".channel-item[data-channel-id='{direct.channel_id}']")
    await direct_row.click()
    note = alice.page.locator(".blocked-note")
    await expect(note).to_contain_text("You blocked bob")
    await alice.send("are you there?")
    await expect(alice.page.locator(".message.failed")).to_contain_text("Not sent")

    # Settings lists the block; Unblock there lifts it everywhere.
    await open_settings(alice)
    blocked = alice.page.locator(".blocked-list [data-username='bob']")
    await expect(blocked).to_be_visible()
    await alice.page.get_by_role("button", name="Unblock bob").click()
    await expect(blocked).to_have_count(0)
    await expect(alice.page.locator(".blocked-list")).to_contain_text("You block no one.")
    assert await alice_api.blocks() == []
    sent = await bob_api.send_message(direct.channel_id, "back again")
    assert sent.message.text == "back again"
    await direct_row.click()
    await expect(note).to_be_hidden()
    await alice.page.get_by_role("button", name="Retry").click()
    await alice.expect_all_sent()
    await alice.close()


async def test_settings_edit_profile_receipts_group_adds_and_devices(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    phone_login = await chat_server.client().login("alice", PASSWORD, "Alice's phone")
    alice = await Person.open(browser, chat_server.url, "alice")
    await alice.log_in()
    await open_settings(alice)
    page = alice.page

    await page.get_by_label("Display name").fill("Alice Liddell")
    await page.get_by_label("About").fill("Down the <i>rabbit</i> hole")
    await page.get_by_role("button", name="Save profile").click()
    await expect(page.get_by_text("Profile saved.")).to_be_visible()
    await expect(page.locator(".me-name")).to_have_text("Alice Liddell")

    receipts = page.get_by_label("Share read receipts")
    await expect(receipts).to_be_checked()
    await receipts.uncheck()
    await expect(page.get_by_text("Read receipts are off.")).to_be_visible()
    await page.get_by_label("Only my friends").check()
    await expect(page.get_by_text("Saved: only my friends may add you to groups.")).to_be_visible()
    me = await alice_api.me()
    assert (me.display_name, me.about) == ("Alice Liddell", "Down the <i>rabbit</i> hole")
    assert (me.share_read_receipts, me.group_adds) == (False, "friends")

    devices = page.locator(".devices .device")
    await expect(devices).to_have_count(3)
    this_one = devices.filter(has=page.locator(".tag", has_text="This device"))
    await expect(this_one).to_have_count(1)
    await page.get_by_role("button", name="Sign out Alice's phone").click()
    await (
        page.get_by_role("dialog", name="Sign out Alice's phone?")
        .get_by_role("button", name="Sign out")
        .click()
    )
    await expect(devices).to_have_count(2)
    assert phone_login.device_id not in [device.device_id for device in await alice_api.devices()]
    await page.locator(".settings-page").evaluate("(element) => element.scrollTo(0, 0)")
    await alice.screenshot("web-settings.png")

    # After a reload the settings show what the server keeps; a phone's width fits.
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await page.reload()
    await alice.wait_online()
    await expect(page.get_by_label("Display name")).to_have_value("Alice Liddell")
    await expect(page.get_by_label("Share read receipts")).not_to_be_checked()
    await expect(page.get_by_label("Only my friends")).to_be_checked()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await alice.screenshot("web-settings-phone.png")
    await alice.close()


async def test_manifest_icons_and_the_offline_shell(browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The manifest is valid JSON with reachable icons; the service worker registers at the
    root, and with the server gone the page still loads from its copy and says it is offline."""
    async with run_server(tmp_path / "d") as server:
        await server.user("alice", PASSWORD)
        alice = await Person.open(browser, server.url, "alice")
        page = alice.page
        answer = await page.request.get(f"{server.url}/static/manifest.webmanifest")
        assert answer.headers["content-type"] == "application/manifest+json"
        manifest = json.loads(await answer.text())
        assert (manifest["name"], manifest["start_url"], manifest["display"]) == (
            "chatapp",
            "/#/chats",
            "standalone",
        )
        sizes = {icon["sizes"] for icon in manifest["icons"]}
        assert {"192x192", "512x512"} <= sizes
        for icon in manifest["icons"]:
            got = await page.request.get(server.url + icon["src"])
            assert got.ok, icon
            assert got.headers["content-type"] == icon["type"]
        worker = await page.request.get(f"{server.url}/sw.js")
        assert worker.headers["content-type"].startswith("text/javascript")
        assert "script-src 'self'" in worker.headers["content-security-policy"]

        await alice.log_in()
        scope = await page.evaluate(
            "navigator.serviceWorker.ready.then((registration) => registration.scope)"
        )
        assert scope == f"{server.url}/"
        await page.wait_for_function("navigator.serviceWorker.controller !== null")
    # The server is stopped, and the browser offline too.
    await alice.context.set_offline(True)
    await page.reload()
    await expect(page.locator(".offline-notice")).to_have_text("You are offline. Retrying…")
    await expect(page.locator("link[rel=manifest]")).to_have_count(1)
    await alice.close()


PUSH_SETTINGS: dict[str, Any] = {
    "push_providers": ["webpush"],
    "push_allow_http_targets": True,
    "push_allow_private_targets": True,
    "push_collapse_window_ms": 0,
}

# Chromium's real pushManager.subscribe needs the browser vendor's push service
# on the internet. In its place the page gets a subscription the test made: a
# real P-256 key pair whose endpoint is a local receiver, so the server's
# encrypted, VAPID-signed delivery can be opened and checked here.
FAKE_SUBSCRIBE = """
(target) => {
  const encode = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  let current = null;
  PushManager.prototype.getSubscription = async () => current;
  PushManager.prototype.subscribe = async function (options) {
    window.__pushKey = encode(options.applicationServerKey);
    window.__userVisibleOnly = options.userVisibleOnly;
    current = {
      options,
      toJSON: () => target,
      unsubscribe: async () => { current = null; return true; },
    };
    return current;
  };
}
"""


async def no_websockets_open(client: ChatClient, within: float = 10.0) -> None:
    """Wait until the server holds no WebSocket: a page left closes its socket a moment
    later, and a message sent before that finds its reader still connected (no push)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        text = (await client.raw_request("GET", "/metrics")).text
        if 'chatapp_open_connections{kind="websocket"} 0.0' in text:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the page's socket did not close")


async def test_web_push_subscription_reaches_the_server_and_the_worker_shows_it(
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with PushReceiver() as receiver, run_server(tmp_path / "d", **PUSH_SETTINGS) as server:
        alice_api = await server.user("alice", PASSWORD)
        bob_api = await server.user("bob", PASSWORD)
        channel = await bob_api.open_direct(alice_api.user_id)
        key = (await alice_api.push_config()).webpush_public_key
        assert key is not None
        subscription = BrowserSubscription(receiver.url("/wp/alice"))
        alice = await Person.open(browser, server.url, "alice")
        await alice.context.grant_permissions(["notifications"], origin=server.url)
        await alice.context.add_init_script(
            script=f"({FAKE_SUBSCRIBE})({json.dumps(subscription.target())})"
        )
        await alice.log_in()
        await open_settings(alice)
        await alice.page.get_by_role("button", name="Turn on notifications").click()
        await expect(alice.page.get_by_text("Notifications are on for this device")).to_be_visible()
        assert await alice.page.evaluate("window.__pushKey") == key
        assert await alice.page.evaluate("window.__userVisibleOnly") is True

        # With the tab gone, a message is pushed to the subscription the page registered.
        await alice.page.goto("about:blank")
        await no_websockets_open(bob_api)
        await server.settle()
        await bob_api.send_message(channel.channel_id, "are you around? 🌙")
        push = await receiver.next()
        BrowserSubscription.verify_vapid(push.headers["Authorization"], public_key=key)
        payload = json.loads(subscription.decrypt(push.body))
        assert (payload["channel_id"], payload["sender_name"], payload["text"]) == (
            channel.channel_id,
            "bob",
            "are you around? 🌙",
        )

        # The worker shows it (a synthetic push event with the decrypted payload) ...
        (worker,) = alice.context.service_workers
        shown = await worker.evaluate(
            """async (payload) => {
              self.dispatchEvent(new PushEvent("push", { data: JSON.stringify(payload) }));
              for (let tries = 0; tries < 50; tries++) {
                const shown = await self.registration.getNotifications();
                if (shown.length) return shown.map((n) => [n.title, n.body, n.tag, n.data]);
                await new Promise((resolve) => setTimeout(resolve, 100));
              }
              return [];
            }""",
            payload,
        )
        assert shown == [
            [
                "bob",
                "are you around? 🌙",
                f"channel-{channel.channel_id}",
                {"channel_id": channel.channel_id, "message_id": payload["message_id"]},
            ]
        ]
        # ... and a click on it shows the channel in the open tab.
        await alice.page.goto(f"{server.url}/#/chats")
        await alice.wait_online()
        await worker.evaluate(
            """async () => {
              const [notification] = await self.registration.getNotifications();
              self.dispatchEvent(new NotificationEvent("notificationclick", { notification }));
            }"""
        )
        await expect(alice.page).to_have_url(re.compile(f"#/chats/{channel.channel_id}$"))
        await expect(alice.page.locator(".chat-title")).to_have_text("bob")
        await alice.close()
