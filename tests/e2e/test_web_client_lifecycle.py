"""Edits, deletions, reactions, replies, mentions and read receipts in the web client.

Two people side by side in real Chromium pages, against a real server: what
one does, the other sees, through `update` and `receipt` frames and nothing
else. The screenshot goes to `artifacts/`.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Locator, expect

from chatapp.testing import RunningServer
from tests.e2e.test_web_client import (  # noqa: F401 (fixtures)
    PASSWORD,
    Person,
    Proxied,
    browser,
    chromium,
    proxied,
)

# It drives a browser, as the files tests/conftest.py marks slow by name do.
pytestmark = pytest.mark.slow


def message(person: Person, text: str) -> Locator:
    """The line of the message whose text is `text`."""
    return person.page.locator(".chat .message").filter(
        has=person.page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$"))
    )


async def open_menu(person: Person, line: Locator) -> Locator:
    """Open a message's actions menu as a mouse user would; the menu."""
    await line.hover()
    await line.get_by_role("button", name="Message actions").click()
    menu = person.page.get_by_role("menu", name="Message actions")
    await expect(menu).to_be_visible()
    return menu


async def react(person: Person, line: Locator, name: str) -> None:
    """Add a reaction from the quick button's picker."""
    await line.hover()
    await line.get_by_role("button", name="Add a reaction").first.click()
    await person.page.get_by_role("menuitem", name=name).click()


async def test_edits_deletions_and_reactions_reach_the_other_side(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    """Alice edits her last message with ↑, bob his from its menu (Escape gives his draft
    back); bob reacts and alice toggles hers; alice deletes after a confirmation. Both pages
    and bob's channel list show each change."""
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    await bob_api.send_message(channel.channel_id, "Are we still on for lunch?")

    alice = await Person.open(browser, chat_server.url, "alice")
    bob = await Person.open(browser, chat_server.url, "bob")
    await alice.log_in()
    await bob.log_in()
    await alice.open_channel("bob")
    await bob.open_channel("alice")

    # ↑ in the empty composer edits one's last message; both see the new text and "(edited)".
    await alice.send("Lunch at noon?")
    await alice.expect_all_sent()
    composer = alice.page.locator(".composer-text")
    await composer.press("ArrowUp")
    await expect(alice.page.locator(".composer-context")).to_contain_text("Editing message")
    await expect(composer).to_have_value("Lunch at noon?")
    await composer.fill("Lunch at one?")
    await composer.press("Enter")
    for person in (alice, bob):
        line = message(person, "Lunch at one?")
        await expect(line.locator(".edited")).to_have_text("(edited)")
    await expect(composer).to_have_value("")
    await expect(bob.page.locator(".channel-item .channel-preview")).to_have_text("Lunch at one?")

    # A reaction from bob's picker; alice adds hers by clicking the chip, then takes it back.
    await react(bob, message(bob, "Lunch at one?"), "React with thumbs up")
    chip = message(alice, "Lunch at one?").locator(".reaction[data-emoji='👍']")
    await expect(chip).to_have_attribute("title", "bob")
    await expect(chip).to_have_attribute("aria-pressed", "false")
    await chip.click()
    await expect(chip).to_have_attribute("title", "bob and you")
    await expect(chip).to_have_attribute("aria-pressed", "true")
    await expect(chip.locator(".reaction-count")).to_have_text("2")
    bob_chip = message(bob, "Lunch at one?").locator(".reaction[data-emoji='👍']")
    await expect(bob_chip).to_have_attribute("title", "alice and you")
    await chip.click()
    await expect(bob_chip.locator(".reaction-count")).to_have_text("1")

    # Bob edits his own message from its menu; Escape gives back his draft, Enter saves.
    bob_composer = bob.page.locator(".composer-text")
    await bob_composer.fill("half-typed")
    menu = await open_menu(bob, message(bob, "Are we still on for lunch?"))
    await menu.get_by_role("menuitem", name="Edit").click()
    await expect(bob_composer).to_have_value("Are we still on for lunch?")
    await expect(bob_composer).to_be_focused()
    await bob_composer.press("Escape")
    await expect(bob_composer).to_have_value("half-typed")
    menu = await open_menu(bob, message(bob, "Are we still on for lunch?"))
    await menu.get_by_role("menuitem", name="Edit").click()
    await bob_composer.fill("Are we still on for lunch tomorrow?")
    await bob.page.get_by_role("button", name="Save edit").click()
    await expect(bob_composer).to_have_value("half-typed")
    edited = message(alice, "Are we still on for lunch tomorrow?")
    await expect(edited.locator(".edited")).to_have_text("(edited)")
    # Only one's own messages have Edit.
    menu = await open_menu(alice, edited)
    await expect(menu.get_by_role("menuitem")).to_have_text(["Add reaction…", "Reply"])
    await alice.page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()

    # Deleting asks first; then both see the placeholder, and so does bob's channel list.
    menu = await open_menu(alice, message(alice, "Lunch at one?"))
    await menu.get_by_role("menuitem", name="Delete").click()
    confirm = alice.page.get_by_role("dialog", name="Delete message?")
    await confirm.get_by_role("button", name="Delete").click()
    for person in (alice, bob):
        await person.expect_messages(
            ["Are we still on for lunch tomorrow?", "This message was deleted"]
        )
        await expect(person.page.locator(".message.deleted .reaction")).to_have_count(0)
    await expect(bob.page.locator(".channel-item .channel-preview")).to_have_text(
        "This message was deleted"
    )
    for person in (alice, bob):
        await person.close()


async def test_replies_quote_the_original_and_jump_to_it_through_older_history(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    """Reply puts a cancellable quote above the composer; the sent reply quotes the original
    on both sides, and a click on a quote whose original is far back pages history in to it."""
    writer = await chat_server.user("writer", PASSWORD)
    reader_api = await chat_server.user("reader", PASSWORD)
    channel = await writer.open_direct(reader_api.user_id)
    for number in range(1, 121):
        await writer.send_message(channel.channel_id, f"message {number}")
    await writer.send_message(channel.channel_id, "about that second one", reply_to=2)
    await reader_api.mark_read(channel.channel_id, 121)

    reader = await Person.open(browser, chat_server.url, "reader")
    author = await Person.open(browser, chat_server.url, "writer")
    await reader.log_in()
    await author.log_in()
    await reader.open_channel("writer")
    await author.open_channel("reader")

    # The original is not loaded: the quote fetches it alone, and the click pages back to it.
    texts = reader.page.locator(".chat .message .text")
    await expect(texts).to_have_count(50)
    reply = message(reader, "about that second one")
    quote = reply.get_by_role("button", name=re.compile("^In reply to writer"))
    await expect(quote).to_contain_text("message 2")
    await quote.click()
    original = message(reader, "message 2")
    await expect(original).to_be_in_viewport()
    await expect(original).to_be_focused()
    await expect(original).to_have_class(re.compile(r"\bflash\b"))
    await expect(texts.first).to_have_text("message 1")
    assert await texts.count() == 121

    # Reply from the menu; Escape cancels it, the quote comes back, and the reply is sent.
    composer = reader.page.locator(".composer-text")
    menu = await open_menu(reader, message(reader, "message 120"))
    await menu.get_by_role("menuitem", name="Reply").click()
    context = reader.page.locator(".composer-context")
    await expect(context).to_contain_text("Replying to writer")
    await expect(context).to_contain_text("message 120")
    await expect(composer).to_be_focused()
    await composer.press("Escape")
    await expect(context).to_be_hidden()
    menu = await open_menu(reader, message(reader, "message 120"))
    await menu.get_by_role("menuitem", name="Reply").click()
    await reader.send("Got it")
    await expect(context).to_be_hidden()
    for person in (reader, author):
        line = message(person, "Got it")
        await expect(line.locator(".quote")).to_contain_text("writer")
        await expect(line.locator(".quote .quote-text")).to_have_text("message 120")
    stored = (await writer.messages(channel.channel_id, limit=1)).messages[-1]
    assert (stored.text, stored.reply_to) == ("Got it", 120)

    # The author's quote jumps within what is loaded.
    await message(author, "Got it").locator(".quote").click()
    await expect(message(author, "message 120")).to_be_focused()
    for person in (reader, author):
        await person.close()


async def test_group_mentions_autocomplete_and_stand_out_and_seen_by_counts_readers(
    browser: Browser,  # noqa: F811
    chat_server: RunningServer,
) -> None:
    """In a group, `@` suggests members (arrows, Enter, Tab, Escape), mentions of members are
    highlighted and the viewer's own stands out; "Seen by N" lists who read; menus work from
    the keyboard; the owner may delete anyone's message, a member only their own."""
    alice_api = await chat_server.user("alice", PASSWORD)
    bob_api = await chat_server.user("bob", PASSWORD)
    carol = await chat_server.user("carol")
    await chat_server.user("dave")
    group = await alice_api.create_group("Launch", [bob_api.user_id, carol.user_id])
    group_id = group.channel_id
    draft = (await carol.send_message(group_id, "Morning! The draft is in the doc")).message
    await carol.send_message(group_id, "wrong chat, sorry")

    alice = await Person.open(browser, chat_server.url, "alice")
    bob = await Person.open(browser, chat_server.url, "bob")
    await alice.log_in()
    await bob.log_in()
    await alice.open_channel("Launch")
    await bob.open_channel("Launch")

    composer = alice.page.locator(".composer-text")
    suggestions = alice.page.get_by_role("listbox", name="Members to mention")
    options = suggestions.get_by_role("option")
    await composer.press_sequentially("@")
    await expect(options).to_have_count(2)
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await composer.press("Escape")
    await expect(suggestions).to_be_hidden()
    await expect(composer).to_have_value("@")
    await composer.fill("")
    await composer.press_sequentially("Thanks @")
    await expect(options).to_have_text(["bob@bob", "carol@carol"])
    await composer.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await composer.press("Enter")
    await expect(composer).to_have_value("Thanks @carol ")
    await composer.press_sequentially("and @b")
    await expect(options).to_have_text(["bob@bob"])
    await composer.press("Tab")
    await expect(composer).to_have_value("Thanks @carol and @bob ")
    await expect(composer).to_be_focused()
    await composer.press_sequentially("(not @dave)")
    await expect(suggestions).to_be_hidden()
    await composer.press("Enter")
    sent = "Thanks @carol and @bob (not @dave)"

    # Members named are highlighted (dave is no member); bob's own mention stands out.
    bob_line = message(bob, sent)
    await expect(bob_line.locator(".mention")).to_have_text(["@carol", "@bob"])
    await expect(bob_line.locator(".mention.me")).to_have_text("@bob")
    await expect(bob_line).to_have_class(re.compile(r"\bmentions-me\b"))
    alice_line = message(alice, sent)
    await expect(alice_line.locator(".mention")).to_have_count(2)
    await expect(alice_line.locator(".mention.me")).to_have_count(0)

    # Bob has the chat open, so he has read it; carol reads from her phone: Seen by 2.
    seen = alice_line.get_by_role("button", name="Seen by 1")
    await expect(seen).to_be_visible()
    last = (await alice_api.messages(group_id, limit=1)).messages[-1]
    await carol.mark_read(group_id, last.message_id)
    seen = alice_line.get_by_role("button", name="Seen by 2")
    await seen.click()
    readers = alice.page.get_by_role("dialog", name="Seen by")
    await expect(readers.locator("li")).to_have_text(["bob", "carol"])
    await alice.page.keyboard.press("Escape")
    await expect(readers).to_be_hidden()
    await expect(seen).to_be_focused()

    # From the keyboard: bob opens carol's message's menu, replies, and reacts.
    carols = message(bob, "Morning! The draft is in the doc")
    await carols.get_by_role("button", name="Message actions").focus()
    await bob.page.keyboard.press("Enter")
    menu = bob.page.get_by_role("menu", name="Message actions")
    await expect(menu.get_by_role("menuitem")).to_have_text(["Add reaction…", "Reply"])
    await expect(menu.get_by_role("menuitem", name="Add reaction…")).to_be_focused()
    await bob.page.keyboard.press("ArrowDown")
    await bob.page.keyboard.press("Enter")
    await expect(bob.page.locator(".composer-context")).to_contain_text("Replying to carol")
    await bob.page.keyboard.type("Reading it now")
    await bob.page.keyboard.press("Enter")
    await carols.get_by_role("button", name="Message actions").focus()
    await bob.page.keyboard.press("Enter")
    await bob.page.keyboard.press("Enter")
    picker = bob.page.get_by_role("menu", name="Pick a reaction")
    await expect(picker.get_by_role("menuitem", name="React with thumbs up")).to_be_focused()
    await bob.page.keyboard.press("ArrowRight")
    await bob.page.keyboard.press("Enter")
    await alice_api.react(group_id, draft.message_id, "❤️")
    await react(alice, message(alice, "Morning! The draft is in the doc"), "React with party")
    chips = message(alice, "Morning! The draft is in the doc").locator(".reaction[data-emoji]")
    await expect(chips).to_have_count(2)
    await expect(chips.first).to_have_attribute("title", "bob and you")
    await expect(chips.first).to_have_attribute("aria-label", "❤️ 2, by bob and you; remove yours")
    reply = message(alice, "Reading it now")
    await expect(reply.locator(".quote")).to_contain_text("carolMorning! The draft is in the doc")

    # The owner may delete carol's message; bob, a member, may not.
    menu = await open_menu(bob, message(bob, "wrong chat, sorry"))
    await expect(menu.get_by_role("menuitem", name="Delete")).to_have_count(0)
    await bob.page.keyboard.press("Escape")
    menu = await open_menu(alice, message(alice, "wrong chat, sorry"))
    await menu.get_by_role("menuitem", name="Delete").click()
    await (
        alice.page.get_by_role("dialog", name="Delete message?")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(message(bob, "This message was deleted")).to_be_visible()

    # An edit of alice's, for the picture.
    await composer.press("ArrowUp")
    await composer.fill("Thanks @carol and @bob, see you at ten")
    await composer.press("Enter")
    await expect(
        message(bob, "Thanks @carol and @bob, see you at ten").locator(".edited")
    ).to_be_visible()
    await expect(alice.page.locator(".seen-by:visible")).to_have_text("Seen by 2")
    await expect(
        message(bob, "Reading it now").get_by_role("button", name="Seen by 1")
    ).to_be_visible()
    await bob.page.mouse.move(0, 0)
    await bob.screenshot("web-client-lifecycle.png")
    for person in (alice, bob):
        await person.close()


async def test_direct_chats_show_sent_then_read_and_a_cut_page_catches_up_on_changes(
    browser: Browser,  # noqa: F811
    proxied: Proxied,  # noqa: F811
) -> None:
    """✓ while the other has not read, ✓✓ once they have (receipts, then `receipt` frames);
    edits, reactions and deletions made while the pages were cut off reach them on reconnect,
    and a reload shows the same; one who stops sharing receipts sees no one's."""
    server = proxied.server
    alice_api = await server.user("alice", PASSWORD)
    bob_api = await server.user("bob", PASSWORD)
    channel = await alice_api.open_direct(bob_api.user_id)
    channel_id = channel.channel_id
    await alice_api.send_message(channel_id, "Did you see the plan?")
    await alice_api.send_message(channel_id, "Ignore the old one")

    alice = await Person.open(browser, proxied.url, "alice")
    bob = await Person.open(browser, proxied.url, "bob")
    await alice.log_in()
    await bob.log_in()
    await alice.open_channel("bob")
    plan = message(alice, "Did you see the plan?")
    status = plan.locator(".status")
    await expect(status).to_have_attribute("aria-label", "sent")
    await expect(status).to_have_text("✓")
    await bob.open_channel("alice")
    await expect(status).to_have_attribute("aria-label", "read")
    await expect(status).to_have_text("✓✓")
    await alice.send("Lunch after?")
    await expect(message(alice, "Lunch after?").locator(".status")).to_have_attribute(
        "aria-label", "read"
    )

    # Cut both pages off; meanwhile alice's phone and bob's laptop change things.
    assert proxied.proxy.cut(refuse_for=2.0) >= 2
    await expect(bob.page.locator(".connection")).to_have_attribute("data-state", "offline")
    alice_phone = await server.device("alice", PASSWORD)
    first, second, _ = (await alice_phone.messages(channel_id)).messages
    await alice_phone.edit_message(channel_id, first.message_id, "Did you see the new plan?")
    await bob_api.react(channel_id, first.message_id, "👀")
    await alice_phone.delete_message(channel_id, second.message_id)
    await bob_api.send_message(channel_id, "Yes!", reply_to=first.message_id)
    shown = ["Did you see the new plan?", "This message was deleted", "Lunch after?", "Yes!"]
    for person in (alice, bob):
        await person.wait_online()
        await person.expect_messages(shown)
        line = message(person, "Did you see the new plan?")
        await expect(line.locator(".edited")).to_be_visible()
        await expect(line.locator(".reaction[data-emoji='👀']")).to_have_attribute(
            "title", "bob" if person is alice else "you"
        )
        await expect(message(person, "Yes!").locator(".quote-text")).to_have_text(
            "Did you see the new plan?"
        )
    await expect(alice.page.locator(".channel-item .channel-preview")).to_have_text("Yes!")
    await bob.page.reload()
    await bob.wait_online()
    await bob.expect_messages(shown)
    reactions = message(bob, "Did you see the new plan?").locator(".reaction[data-emoji]")
    await expect(reactions).to_have_count(1)

    # Alice stops sharing receipts in her settings: then she sees no one's either.
    await alice.page.get_by_role("button", name="Account menu").click()
    await alice.page.get_by_role("link", name="Settings").click()
    await alice.page.get_by_label("Share read receipts").uncheck()
    await expect(alice.page.get_by_text("Read receipts are off.")).to_be_visible()
    await alice.page.go_back()
    lunch = message(alice, "Lunch after?").locator(".status")
    await expect(lunch).to_have_attribute("aria-label", "sent")
    assert (await alice_api.me()).share_read_receipts is False
    for person in (alice, bob):
        await person.close()
