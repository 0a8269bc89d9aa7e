// A chat's own menu, from the ⋯ in its header: how much of the channel
// notifies this user (all, mentions, nothing) and, in a direct chat, the
// other person's profile. The level is the caller's own and is kept by the
// server, which obeys it for push notifications.

import { LEVELS } from "../account.js";
import { h } from "../dom.js";
import { menuItem } from "./popup.js";

export class ChannelMenu {
  /** `actions`: setLevel(level), openProfile() (direct chats), tell(text). */
  constructor(state, channelId, popups, actions) {
    this.state = state;
    this.channelId = channelId;
    this.popups = popups;
    this.actions = actions;
    this.button = h(
      "button",
      {
        type: "button",
        class: "icon channel-menu-button",
        "aria-label": "Chat options",
        title: "Chat options",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
        onclick: () => this.toggle(),
      },
      "⋯",
    );
  }

  toggle() {
    if (this.popups.isOpenFor(this.button)) {
      this.popups.close(true);
      return;
    }
    const channel = this.state.channels.get(this.channelId);
    if (!channel) return;
    const current = channel.notification_level ?? "all";
    const levels = LEVELS.map(([level, label]) =>
      h(
        "button",
        {
          type: "button",
          role: "menuitemradio",
          class: "menu-item",
          tabindex: "-1",
          "aria-checked": String(level === current),
          dataset: { level },
          onclick: () => {
            this.popups.close(true);
            this.setLevel(level, label);
          },
        },
        label,
      ),
    );
    const direct =
      channel.kind === "direct" && this.state.otherMember(channel) !== this.state.me.user_id;
    this.popups.show(
      this.button,
      [
        h("p", { class: "menu-label", id: `levels-${this.channelId}` }, "Notify me about"),
        h("div", { role: "group", "aria-labelledby": `levels-${this.channelId}` }, levels),
        direct ? menuItem(this.popups, "View profile", () => this.actions.openProfile()) : null,
      ],
      { label: "Chat options", className: "channel-menu" },
    );
    // As in a list of choices, the focus starts on the current one.
    levels.find((item) => item.getAttribute("aria-checked") === "true")?.focus();
  }

  async setLevel(level, label) {
    try {
      await this.actions.setLevel(level);
      this.actions.tell(`Notifications for this chat: ${label.toLowerCase()}.`);
    } catch (error) {
      this.actions.tell(`Not changed: ${error.message}`);
    }
  }
}

/** The mark a muted (or mentions-only) channel carries in the list and its header. */
export function levelMark(level) {
  const marks = {
    none: ["level-mark muted", "muted", "Muted", "🔕"],
    mentions: ["level-mark", "mentions only", "Mentions only", "@"],
  };
  const mark = marks[level];
  if (!mark) return null;
  const [className, label, title, sign] = mark;
  return h("span", { class: className, role: "img", "aria-label": label, title }, sign);
}
