"""Settings that need the account endpoints of protocol-additions §7 in the web client.

Changing the password (`POST /me/password`), exporting one's data
(`GET /me/export`) and deleting the account (`DELETE /me`), each through
the page and checked against the server.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Browser, expect

from chatapp.client import ChatApiError
from chatapp.testing import RunningServer
from tests.e2e.test_web_client import (  # noqa: F401 (fixtures)
    PASSWORD,
    Person,
    browser,
    chromium,
)
from tests.e2e.test_web_client_controls import open_settings

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a longer horse battery staple"


async def in_settings(at: Browser, server: RunningServer, username: str) -> Person:
    """The user logged in, in a browser context of their own, on the Settings page."""
    person = await Person.open(at, server.url, username)
    await person.log_in()
    await open_settings(person)
    return person


async def test_password_change_refuses_a_wrong_one_and_signs_out_the_other_devices(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    alice = await in_settings(browser, chat_server, "alice")
    page = alice.page
    await expect(page.locator(".devices .device")).to_have_count(2)

    await page.get_by_label("Current password").fill("not it at all")
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("The current password is not right.")).to_be_visible()
    await expect(page.get_by_label("Current password")).to_be_focused()

    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(
        page.get_by_text("Password changed. Your other devices were signed out.")
    ).to_be_visible()
    await expect(page.locator(".devices .device")).to_have_count(1)
    with pytest.raises(ChatApiError) as refused:
        await alice_api.me()
    assert refused.value.status == 401
    await chat_server.client().login("alice", NEW_PASSWORD)
    # This device stays signed in.
    await page.reload()
    await alice.wait_online()
    await alice.close()


async def test_export_downloads_the_data_as_json_lines(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    await bob_api.send_message(channel.channel_id, "keep this one")
    alice = await in_settings(browser, chat_server, "alice")
    async with alice.page.expect_download() as waiting:
        await alice.page.get_by_role("button", name="Download my data").click()
    download = await waiting.value
    assert download.suggested_filename == "chatapp-alice.ndjson"
    path = await download.path()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    kinds = {line["type"] for line in lines}
    assert {"user", "channel", "message"} <= kinds
    texts = [line["message"]["text"] for line in lines if line["type"] == "message"]
    assert "keep this one" in texts
    await expect(alice.page.get_by_text("Your data was saved as a file")).to_be_visible()
    await alice.close()


async def test_deleting_the_account_asks_for_the_password_and_a_confirmation(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    sent = await alice_api.send_message(channel.channel_id, "soon gone")

    alice = await in_settings(browser, chat_server, "alice")
    page = alice.page
    delete_card = page.get_by_role("region", name="Delete account")
    await delete_card.get_by_label("Password").fill("not it at all")
    await delete_card.get_by_role("button", name="Delete account").click()
    confirm = page.get_by_role("dialog", name="Delete your account?")
    await confirm.get_by_role("button", name="Delete account").click()
    await expect(delete_card.get_by_text("The password is not right.")).to_be_visible()

    await delete_card.get_by_label("Password").fill(PASSWORD)
    await delete_card.get_by_label("Also delete every message I sent").check()
    await delete_card.get_by_role("button", name="Delete account").click()
    await expect(confirm).to_contain_text("Every message you sent is deleted too.")
    await confirm.get_by_role("button", name="Delete account").click()
    await expect(page).to_have_url(re.compile("#/login$"))
    await expect(page.locator(".form-error")).to_have_text("Your account was deleted.")
    with pytest.raises(ChatApiError) as refused:
        await chat_server.client().login("alice", PASSWORD)
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
    (message,) = (await bob_api.messages(channel.channel_id)).messages
    assert (message.message_id, message.deleted) == (sent.message.message_id, True)
    await alice.close()
