// The channel list: direct chats and groups, most recent first, with the last
// message (as edited, or deleted, since), unread counts and presence dots for
// direct chats.

import { avatar, h, presenceDot, reconcile, replace } from "../dom.js";
import { formatWhen } from "../format.js";
import { levelMark } from "./channel-menu.js";
import { DELETED_TEXT } from "./message-parts.js";

export class ChannelList {
  constructor(state, { onNewChat, onNewGroup }) {
    this.state = state;
    this.selected = null;
    this.rows = new Map();
    this.list = h("ul", { class: "channel-list", "aria-label": "Conversations" });
    this.empty = h(
      "p",
      { class: "empty-hint" },
      "No conversations yet. Start a chat with someone by their username, or add friends first.",
    );
    this.element = h(
      "section",
      { class: "sidebar", "aria-label": "Conversations" },
      h(
        "div",
        { class: "sidebar-head" },
        h("h2", {}, "Chats"),
        h(
          "div",
          { class: "sidebar-actions" },
          h("button", { type: "button", class: "secondary small", onclick: onNewChat }, "New chat"),
          h(
            "button",
            { type: "button", class: "secondary small", onclick: onNewGroup },
            "New group",
          ),
        ),
      ),
      this.empty,
      this.list,
    );
    state.addEventListener("change", (event) => {
      const { what } = event.detail;
      if (["channels", "users", "presence", "friends"].includes(what)) this.schedule();
    });
    this.render();
  }

  select(channelId) {
    this.selected = channelId;
    this.render();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.render();
    });
  }

  render() {
    const channels = this.state.sortedChannels();
    this.empty.hidden = channels.length > 0;
    const wanted = new Set(channels.map((channel) => channel.channel_id));
    for (const channelId of this.rows.keys())
      if (!wanted.has(channelId)) this.rows.delete(channelId);
    // Rows are kept and updated in place, and moved only when the order
    // changes, so keyboard focus on a row survives updates.
    const rows = channels.map((channel) => {
      let row = this.rows.get(channel.channel_id);
      if (!row) {
        row = h("li", {}, h("a", { href: `#/chats/${channel.channel_id}` }));
        this.rows.set(channel.channel_id, row);
      }
      this.fill(row.firstChild, channel);
      return row;
    });
    reconcile(this.list, rows);
  }

  fill(link, channel) {
    const state = this.state;
    const title = state.channelTitle(channel);
    const direct = channel.kind === "direct";
    const other = direct ? state.otherMember(channel) : null;
    const preview = channel.preview;
    let previewText = direct ? "" : `${channel.members.length} members`;
    if (preview) {
      const who = preview.sender_id === state.me.user_id ? "You" : state.nameOf(preview.sender_id);
      const text = preview.deleted ? DELETED_TEXT : preview.text.replace(/\s+/g, " ").slice(0, 140);
      previewText = direct && who !== "You" ? text : `${who}: ${text}`;
    }
    const unread = channel.unread_count;
    link.className = `channel-item${unread ? " has-unread" : ""}`;
    link.dataset.channelId = channel.channel_id;
    link.dataset.kind = channel.kind;
    link.dataset.level = channel.notification_level ?? "all";
    if (this.selected === channel.channel_id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    replace(
      link,
      h(
        "span",
        { class: "avatar-wrap" },
        avatar(title, direct ? "" : "group"),
        direct && other !== state.me.user_id ? presenceDot(state.statusOf(other)) : null,
      ),
      h(
        "span",
        { class: "channel-text" },
        h(
          "span",
          { class: "channel-top" },
          h("span", { class: "channel-name" }, title),
          levelMark(channel.notification_level),
          h("time", { class: "channel-time" }, formatWhen(state.activityOf(channel))),
        ),
        h(
          "span",
          { class: "channel-bottom" },
          preview ? h("span", { class: "visually-hidden" }, "Last message: ") : null,
          h("span", { class: `channel-preview${preview?.deleted ? " deleted" : ""}` }, previewText),
          unread
            ? [
                h(
                  "span",
                  { class: "unread-badge", "aria-hidden": "true" },
                  unread > 999 ? "999+" : String(unread),
                ),
                h("span", { class: "visually-hidden" }, `, ${unread} unread`),
              ]
            : null,
        ),
      ),
    );
  }
}
