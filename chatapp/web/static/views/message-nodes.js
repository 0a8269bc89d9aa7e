// The list items of a chat, keyed and reused across renders: a message's
// line turns from pending to sent in place, and the read-marker observer
// keeps watching the same elements.

import { h, replace } from "../dom.js";
import { formatDay, formatFull, formatTime } from "../format.js";

export class MessageNodes {
  /** `actions`: retry(clientMsgId), discard(clientMsgId). */
  constructor(state, observer, actions) {
    this.state = state;
    this.observer = observer;
    this.actions = actions;
    this.nodes = new Map(); // key -> element
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

  message(model, { continued, showSender }) {
    let node = this.nodes.get(model.key);
    if (!node) {
      node = h(
        "li",
        { class: `message ${model.mine ? "mine" : "theirs"}` },
        h(
          "div",
          { class: "bubble" },
          h("span", { class: "sender" }),
          h("p", { class: "text" }),
          h("span", { class: "meta" }, h("time", {}), h("span", { class: "status" })),
        ),
        h("div", { class: "failure" }),
      );
      this.nodes.set(model.key, node);
    }
    const signature = [
      model.state,
      model.messageId,
      continued,
      showSender,
      model.error,
      this.state.nameOf(model.senderId),
    ].join("|");
    if (node.dataset.signature === signature) return node;
    node.dataset.signature = signature;
    node.classList.toggle("continued", continued);
    node.classList.toggle("pending", model.state === "pending");
    node.classList.toggle("failed", model.state === "failed");
    node.classList.toggle("sent", model.state === "sent");
    node.dataset.clientMsgId = model.clientMsgId;
    if (model.messageId !== null) {
      node.dataset.messageId = model.messageId;
      this.observer.observe(node);
    }
    const [bubble, failure] = node.children;
    const [sender, text, meta] = bubble.children;
    sender.textContent = this.state.nameOf(model.senderId);
    sender.hidden = !showSender || continued;
    if (text.textContent !== model.text) text.textContent = model.text;
    const [time, status] = meta.children;
    time.textContent = formatTime(model.createdAt);
    time.dateTime = new Date(model.createdAt).toISOString();
    time.title = formatFull(model.createdAt);
    status.hidden = !model.mine;
    const statusText = { pending: "○", sent: "✓", failed: "!" }[model.state];
    const statusLabel = { pending: "sending", sent: "sent", failed: "not sent" }[model.state];
    status.textContent = statusText;
    status.setAttribute("role", "img");
    status.setAttribute("aria-label", statusLabel);
    status.title = statusLabel;
    if (model.state === "failed") {
      replace(
        failure,
        h("span", {}, `Not sent: ${model.error || "refused"}`),
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
      failure.replaceChildren();
    }
    return node;
  }
}
