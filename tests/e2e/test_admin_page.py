"""The admin page at /admin in a real browser, against a server that signs up by invite only.

An admin logged in at / opens /admin with the same login: the server's figures, an invite
made and its link copied, a newcomer signing up through the link in a browser of their own,
a deactivation that logs a member's open page out and a reactivation, a grant of the admin
role, and the audit log of all of it. A member, and someone not logged in, are turned away.
The screenshot goes to `artifacts/admin-page.png` (docs/admin-page.png is a copy).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from chatapp.testing import RunningServer, run_server
from chatapp.version import VERSION
from tests.e2e.test_web_client import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    DESKTOP,
    PASSWORD,
    Person,
    browser,
    chromium,
)

# It drives a browser, as the files tests/conftest.py marks slow by name do.
pytestmark = pytest.mark.slow


@pytest.fixture
async def invite_only(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server with `registration = "invite"`; `root` (admin) and `mallory` made as the
    command line makes them."""
    async with run_server(tmp_path / "chat-data", registration="invite") as server:
        moderation = server.services.operators.moderation
        await moderation.create_user("root", PASSWORD, "admin")
        await moderation.create_user("mallory", PASSWORD, "member")
        yield server


async def open_person(browser: Browser, server: RunningServer, username: str) -> Person:  # noqa: F811
    """A person in a browser context of their own that may use the clipboard."""
    context = await browser.new_context(
        viewport=DESKTOP,  # type: ignore[arg-type]
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(10_000)
    return Person(context, await context.new_page(), server.url, username)


def user_row(page: Page, username: str) -> Locator:
    return page.locator(f"#users-table tr[data-username='{username}']")


async def sign_up_through(person: Person, link: str) -> None:
    await person.page.goto(link)
    await expect(person.page.get_by_role("heading", name="Create your account")).to_be_visible()
    await person.page.get_by_label("Username").fill(person.username)
    await person.page.get_by_label("Password").fill(PASSWORD)
    await person.page.get_by_role("button", name="Create account").click()


async def test_an_admin_runs_the_server_from_the_admin_page(
    browser: Browser,  # noqa: F811
    invite_only: RunningServer,
) -> None:
    """Figures, an invite whose copied link signs a newcomer up (once: used up after),
    deactivation (the member's open page is logged out) and reactivation, a grant of the
    admin role, and the audit log showing each, by whom."""
    server = invite_only
    root_api = server.client()
    await root_api.login("root", PASSWORD)
    mallory_api = server.client()
    await mallory_api.login("mallory", PASSWORD)
    channel = await root_api.open_direct(mallory_api.user_id)
    await root_api.send_message(channel.channel_id, "welcome aboard")
    await mallory_api.send_message(channel.channel_id, "thanks")

    mallory = await open_person(browser, server, "mallory")
    await mallory.log_in()
    root = await open_person(browser, server, "root")
    await root.log_in()
    # The admin page in a second tab: the same login (localStorage), the chat left open.
    page = await root.context.new_page()
    page.on("pageerror", lambda error: root.errors.append(str(error)))
    await page.goto(f"{server.url}/admin")
    await expect(page.get_by_role("heading", name="Admin")).to_be_visible()

    figure = page.locator("#server-figures [data-figure] dd")
    await expect(page.locator("[data-figure='version'] dd")).to_have_text(VERSION)
    await expect(page.locator("[data-figure='connections'] dd")).to_have_text("2")
    await expect(page.locator("[data-figure='messages'] dd")).to_have_text("2")
    await expect(page.locator("[data-figure='disk'] dd")).to_have_text(
        re.compile(r"\d+(\.\d)? [KMG]B")
    )
    await expect(page.locator("[data-figure='registration'] dd")).to_have_text("by invite only")
    await expect(figure).to_have_count(7)

    # An invite for one signup, its link copied.
    await page.get_by_label("Signups it allows").fill("1")
    await page.get_by_label("Expires").select_option(label="In 7 days")
    await page.get_by_role("button", name="Create invite").click()
    link_field = page.get_by_label("New invite link")
    await expect(link_field).to_have_value(re.compile(rf"^{re.escape(server.url)}/\?invite=\S+$"))
    link = await link_field.input_value()
    code = link.rsplit("=", 1)[1]
    await page.get_by_role("button", name="Copy link", exact=True).click()
    await expect(page.get_by_role("status").filter(has_text="Link copied.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == link
    await expect(page.locator(f"#invites-table tr[data-code='{code}']")).to_contain_text("1")

    # Without a code the server asks for one, and the form shows where to put it.
    stranger = await open_person(browser, server, "stranger")
    await stranger.page.goto(f"{server.url}/#/signup")
    await expect(stranger.page.get_by_label("Invite code")).to_be_hidden()
    await stranger.page.get_by_label("Username").fill("stranger")
    await stranger.page.get_by_label("Password").fill(PASSWORD)
    await stranger.page.get_by_role("button", name="Create account").click()
    await expect(stranger.page.locator("#auth-error")).to_have_text(
        re.compile("^This server needs an invite to sign up")
    )
    await expect(stranger.page.get_by_label("Invite code")).to_be_focused()

    # The newcomer opens the copied link in a browser of their own and is in.
    newcomer = await open_person(browser, server, "newcomer")
    await newcomer.page.goto(link)
    await expect(newcomer.page.get_by_label("Invite code")).to_have_value(code)
    await sign_up_through(newcomer, link)
    await newcomer.wait_online()
    assert "invite=" not in newcomer.page.url

    # The link is spent: the stranger, with it, is told so.
    await sign_up_through(stranger, link)
    await expect(stranger.page.locator("#auth-error")).to_have_text(
        re.compile("^That invite code does not work")
    )
    await page.get_by_role("button", name="Refresh").first.click()
    await page.reload()
    await expect(page.locator(f"#invites-table tr[data-code='{code}']")).to_contain_text(
        "0 (used up)"
    )

    # A second invite, revoked: it leaves the list.
    await page.get_by_role("button", name="Create invite").click()
    await expect(link_field).not_to_have_value(link)
    second = (await link_field.input_value()).rsplit("=", 1)[1]
    await page.get_by_role("button", name=f"Revoke invite {second}").click()
    await (
        page.get_by_role("dialog", name="Revoke this invite?")
        .get_by_role("button", name="Revoke invite")
        .click()
    )
    await expect(page.locator(f"#invites-table tr[data-code='{second}']")).to_have_count(0)
    await expect(page.locator("#invites-table tbody tr")).to_have_count(1)
    await expect(link_field).to_be_hidden()

    # Deactivation: mallory's open page is logged out at once; then reactivation.
    await page.get_by_label("Search users").fill("mall")
    await expect(page.locator("#users-table tbody tr")).to_have_count(1)
    await user_row(page, "mallory").get_by_role("button", name="Deactivate mallory").click()
    dialog = page.get_by_role("dialog", name="Deactivate mallory?")
    await dialog.get_by_label("Reason").fill("spam links")
    await dialog.get_by_role("button", name="Deactivate").click()
    await expect(user_row(page, "mallory").locator(".admin-status")).to_contain_text("Deactivated")
    await expect(user_row(page, "mallory")).to_contain_text("spam links")
    await expect(mallory.page.get_by_role("button", name="Log in")).to_be_visible()
    await expect(mallory.page.locator("#auth-error")).to_have_text(
        "Your session ended. Log in again."
    )
    await user_row(page, "mallory").get_by_role("button", name="Reactivate mallory").click()
    await expect(user_row(page, "mallory").locator(".admin-status")).to_have_text("Active")
    await mallory.log_in()

    # The admin role for the newcomer; one's own revocation is not offered.
    await page.get_by_label("Search users").fill("")
    await user_row(page, "newcomer").get_by_role("button", name="Make newcomer an admin").click()
    await (
        page.get_by_role("dialog", name="Make newcomer an admin?")
        .get_by_role("button", name="Make admin")
        .click()
    )
    await expect(user_row(page, "newcomer").locator(".admin-role")).to_have_text("Admin")
    await expect(
        user_row(page, "root").get_by_role("button", name="Revoke admin from root")
    ).to_be_disabled()

    # The audit log, oldest first, says who did what.
    audit = page.locator("#audit-table tbody tr")
    await expect(audit).to_have_count(7)
    await expect(audit.locator("td:nth-child(3)")).to_have_text(
        [
            "made admin @root",
            f"created invite {code}",
            f"created invite {second}",
            f"revoked invite {second}",
            "deactivated @mallory",
            "reactivated @mallory",
            "made admin @newcomer",
        ]
    )
    await expect(audit.locator("td:nth-child(2)")).to_have_text(
        ["the command line", *["@root"] * 6]
    )
    await expect(audit.nth(4).locator("td:nth-child(4)")).to_have_text("spam links")
    await page.locator("#server-figures").scroll_into_view_if_needed()
    await page.get_by_role("button", name="Refresh").first.click()
    await expect(page.locator("[data-figure='connections'] dd")).to_have_text("3")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "admin-page.png", full_page=True)
    await page.close()

    for person in (root, mallory, newcomer, stranger):
        await person.close()


async def test_members_and_strangers_are_turned_away(
    browser: Browser,  # noqa: F811
    invite_only: RunningServer,
) -> None:
    """A member logged in at / who opens /admin sees "Admins only" (the API answers 403
    `forbidden`); without a login the page says to log in first; an admin whose role is
    revoked while the page is open is turned away at the next action."""
    mallory = await open_person(browser, invite_only, "mallory")
    await mallory.log_in()
    await mallory.page.goto(f"{invite_only.url}/admin")
    await expect(mallory.page.get_by_role("heading", name="Admins only")).to_be_visible()
    await expect(mallory.page.get_by_role("link", name="Go to chat")).to_have_attribute("href", "/")

    stranger = await open_person(browser, invite_only, "stranger")
    await stranger.page.goto(f"{invite_only.url}/admin")
    await expect(stranger.page.get_by_role("heading", name="Log in first")).to_be_visible()

    root = await open_person(browser, invite_only, "root")
    await root.log_in()
    await root.page.goto(f"{invite_only.url}/admin")
    await expect(root.page.locator("#users-table tbody tr")).to_have_count(2)
    await invite_only.revoke_admin("root")
    await root.page.get_by_role("button", name="Create invite").click()
    await expect(root.page.get_by_role("heading", name="Admins only")).to_be_visible()
    for person in (mallory, stranger, root):
        await person.close()


async def test_the_admin_page_is_served_as_the_client_page_is(
    invite_only: RunningServer,
) -> None:
    """/admin carries the same Content-Security-Policy and headers as /, and loads only
    modules from /static/ (no inline script)."""
    client = invite_only.client()
    index = await client.raw_request("GET", "/")
    admin = await client.raw_request("GET", "/admin")
    assert admin.status == 200
    assert admin.headers["Content-Type"] == "text/html; charset=utf-8"
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
        assert admin.headers[header] == index.headers[header]
    assert admin.headers["Cache-Control"] == "no-cache"
    scripts = re.findall(r"<script[^>]*>", admin.text)
    assert scripts == ['<script type="module" src="/static/admin.js">']
