// The list items of a chat, keyed and reused across renders: a message's
// line turns from pending to sent in place, an edit or a reaction changes
// only that line, and the read-marker observer keeps watching the same
// elements. A line is rebuilt only when what it shows has changed.

import { h, replace } from "../dom.js";
import { formatDay, formatFull, formatTime } from "../format.js";
import { mentionParts } from "../mentions.js";
import {
  DELETED_TEXT,
  quoteNodes,
  reactionButton,
  statusMark,
  textNodes,
} from "./message-parts.js";

export class MessageNodes {
  /**
   * `actions`: retry(clientMsgId), discard(clientMsgId), toggleReaction(messageId, emoji),
   * openMenu(messageId, button), openPicker(messageId, button), jumpTo(messageId),
   * showSeenBy(messageId, button), openProfile(userId, button).
   */
  constructor(state, observer, actions) {
    this.state = state;
    this.observer = observer;
    this.actions = actions;
    this.nodes = new Map(); // key -> element
    this.parts = new WeakMap(); // element -> its parts and current model
  }

  /** Forget nodes no longer shown. */
  forget(kept) {
    for (const [key, node] of this.nodes) {
      if (!kept.has(node)) {
        this.observer.unobserve(node);
        this.nodes.delete(key);
      }
    }
  }

  /** The element of a stored message, if it is shown. */
  nodeOf(messageId) {
    for (const node of this.nodes.values()) {
      if (node.dataset.messageId === String(messageId)) return node;
    }
    return null;
  }

  day(ms) {
    const label = formatDay(ms);
    const key = `d:${label}`;
    let node = this.nodes.get(key);
    if (!node) {
      node = h("li", { class: "day" }, h("span", {}, label));
      this.nodes.set(key, node);
    }
    return node;
  }

  unreadDivider() {
    let node = this.nodes.get("unread");
    if (!node) {
      node = h("li", { class: "unread-divider" }, h("span", {}, "New messages"));
      this.nodes.set("unread", node);
    }
    return node;
  }

  /** Everything a line shows, as plain data: equal data, nothing to redo. */
  display(model, { continued, showSender }) {
    const state = this.state;
    const me = state.me.user_id;
    const usernameOf = (id) => state.users.get(id)?.username;
    const deleted = Boolean(model.deleted);
    return {
      state: model.state,
      mine: model.mine,
      messageId: model.messageId,
      continued,
      showSender,
      error: model.error,
      sender: state.nameOf(model.senderId),
      deleted,
      parts: deleted
        ? null
        : mentionParts(model.text, model.mentions, usernameOf).map((part) => [
            part.text,
            part.userId === undefined ? 0 : part.userId === me ? 2 : 1,
          ]),
      createdAt: model.createdAt,
      edited: model.editedAt && !deleted ? formatFull(model.editedAt) : null,
      status: model.mine ? (model.read ? "read" : model.state) : null,
      quote: model.quote && {
        ...model.quote,
        sender: model.quote.senderId === undefined ? "" : state.nameOf(model.quote.senderId),
        text: model.quote.deleted ? DELETED_TEXT : firstLine(model.quote.text ?? ""),
      },
      reactions: (model.reactions ?? []).map((reaction) => ({
        emoji: reaction.emoji,
        count: reaction.user_ids.length,
        mine: reaction.user_ids.includes(me),
        // The viewer last, as "you".
        names: [
          ...reaction.user_ids.filter((id) => id !== me).map((id) => state.nameOf(id)),
          ...(reaction.user_ids.includes(me) ? ["you"] : []),
        ],
      })),
      seenBy: model.seenBy ? model.seenBy.length : 0,
      tools: model.state === "sent" && model.messageId !== null && !deleted,
    };
  }

  message(model, layout) {
    let node = this.nodes.get(model.key);
    if (!node) {
      node = this.build(model);
      this.nodes.set(model.key, node);
    }
    const parts = this.parts.get(node);
    parts.model = model;
    const view = this.display(model, layout);
    const signature = JSON.stringify(view);
    if (parts.signature === signature) return node;
    parts.signature = signature;
    this.fill(node, parts, view, model);
    return node;
  }

  build(model) {
    const parts = {
      // A button: the sender's profile is one click (or Enter) away.
      sender: h("button", { type: "button", class: "sender", "aria-haspopup": "dialog" }),
      quote: h("button", { type: "button", class: "quote", hidden: true }),
      text: h("p", { class: "text", id: `message-text-${model.key}` }),
      edited: h("span", { class: "edited", hidden: true }, "(edited)"),
      time: h("time", {}),
      status: h("span", { class: "status" }),
      tools: h("div", { class: "message-tools" }),
      reactions: h("div", {
        class: "reactions",
        role: "group",
        "aria-label": "Reactions",
        hidden: true,
      }),
      seenBy: h(
        "button",
        { type: "button", class: "link seen-by", hidden: true, "aria-expanded": "false" },
        "",
      ),
      failure: h("div", { class: "failure" }),
    };
    const messageId = () => parts.model.messageId;
    parts.quote.addEventListener("click", () => this.actions.jumpTo(parts.model.replyTo));
    parts.sender.addEventListener("click", () =>
      this.actions.openProfile(parts.model.senderId, parts.sender),
    );
    parts.seenBy.addEventListener("click", () =>
      this.actions.showSeenBy(messageId(), parts.seenBy),
    );
    const react = h(
      "button",
      {
        type: "button",
        class: "tool",
        // The menu offers the same to the keyboard: one stop per message.
        tabindex: "-1",
        "aria-label": "Add a reaction",
        title: "Add a reaction",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
      },
      "☺",
    );
    react.addEventListener("click", () => this.actions.openPicker(messageId(), react));
    const more = h(
      "button",
      {
        type: "button",
        class: "tool",
        "aria-label": "Message actions",
        "aria-describedby": parts.text.id,
        title: "More actions",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
      },
      "⋯",
    );
    more.addEventListener("click", () => this.actions.openMenu(messageId(), more));
    parts.tools.append(react, more);
    const node = h(
      "li",
      { class: `message ${model.mine ? "mine" : "theirs"}` },
      h(
        "div",
        { class: "message-row" },
        h(
          "div",
          { class: "bubble" },
          parts.sender,
          parts.quote,
          parts.text,
          h("span", { class: "meta" }, parts.edited, parts.time, parts.status),
        ),
        parts.tools,
      ),
      parts.reactions,
      parts.seenBy,
      parts.failure,
    );
    this.parts.set(node, parts);
    return node;
  }

  fill(node, parts, view, model) {
    node.classList.toggle("continued", view.continued);
    node.classList.toggle("pending", view.state === "pending");
    node.classList.toggle("failed", view.state === "failed");
    node.classList.toggle("sent", view.state === "sent");
    node.classList.toggle("deleted", view.deleted);
    node.classList.toggle("mentions-me", Boolean(view.parts?.some(([, kind]) => kind === 2)));
    node.dataset.clientMsgId = model.clientMsgId;
    if (model.messageId !== null) {
      node.dataset.messageId = model.messageId;
      this.observer.observe(node);
    }
    parts.sender.textContent = view.sender;
    parts.sender.hidden = !view.showSender || view.continued;

    // Text, quote and reactions are redrawn only when they changed: the list is
    // a live region, and a redrawn part would be read out again.
    parts.quote.hidden = !view.quote;
    if (view.quote && changed(parts, "quote", view.quote)) {
      replace(parts.quote, quoteNodes(view.quote));
    }
    parts.quote.title = view.quote ? "Show the original message" : "";

    parts.text.classList.toggle("deleted", view.deleted);
    if (changed(parts, "text", [view.deleted, view.parts])) {
      if (view.deleted) parts.text.textContent = DELETED_TEXT;
      else replace(parts.text, textNodes(view.parts));
    }

    parts.edited.hidden = !view.edited;
    parts.edited.title = view.edited ? `Edited ${view.edited}` : "";
    parts.time.textContent = formatTime(view.createdAt);
    parts.time.dateTime = new Date(view.createdAt).toISOString();
    parts.time.title = formatFull(view.createdAt);
    parts.status.hidden = !view.mine;
    if (view.mine) {
      const { glyph, label } = statusMark(view.status);
      parts.status.textContent = glyph;
      parts.status.className = `status ${view.status}`;
      parts.status.setAttribute("role", "img");
      parts.status.setAttribute("aria-label", label);
      parts.status.title = label;
    }
    parts.tools.hidden = !view.tools;

    parts.reactions.hidden = view.reactions.length === 0;
    if (changed(parts, "reactions", [view.reactions, view.tools])) this.fillReactions(parts, view);

    parts.seenBy.hidden = view.seenBy === 0;
    parts.seenBy.textContent = `Seen by ${view.seenBy}`;

    if (view.state === "failed") {
      replace(
        parts.failure,
        h("span", {}, `Not sent: ${view.error || "refused"}`),
        h(
          "button",
          { type: "button", class: "link", onclick: () => this.actions.retry(model.clientMsgId) },
          "Retry",
        ),
        h(
          "button",
          { type: "button", class: "link", onclick: () => this.actions.discard(model.clientMsgId) },
          "Discard",
        ),
      );
    } else {
      parts.failure.replaceChildren();
    }
  }

  fillReactions(parts, view) {
    // A chip pressed from the keyboard keeps the focus when the list is redrawn.
    const focused = parts.reactions.contains(document.activeElement)
      ? (document.activeElement.dataset.emoji ?? "")
      : null;
    const toggle = (emoji) => this.actions.toggleReaction(parts.model.messageId, emoji);
    const add = h(
      "button",
      {
        type: "button",
        class: "reaction add",
        "aria-label": "Add a reaction",
        title: "Add a reaction",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
      },
      "+",
    );
    add.addEventListener("click", () => this.actions.openPicker(parts.model.messageId, add));
    replace(
      parts.reactions,
      view.reactions.map((reaction) => reactionButton(reaction, toggle)),
      view.reactions.length && view.tools ? add : null,
    );
    if (focused !== null) {
      const again = [...parts.reactions.children].find(
        (button) => (button.dataset.emoji ?? "") === focused,
      );
      (again ?? parts.tools.lastChild)?.focus();
    }
  }
}

/** True when `value` differs from what `parts` showed under `name` last; remembers it. */
function changed(parts, name, value) {
  const key = JSON.stringify(value);
  if (parts.shown?.[name] === key) return false;
  parts.shown = { ...parts.shown, [name]: key };
  return true;
}

function firstLine(text) {
  const characters = [...text.replace(/\s+/g, " ").trim()];
  return characters.length > 120 ? `${characters.slice(0, 119).join("")}…` : characters.join("");
}
