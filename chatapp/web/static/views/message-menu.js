// What a message's buttons open: its actions menu (react, reply, edit,
// delete, who has seen it), the emoji picker, and the list of who has seen
// one's message in a group.

import { h } from "../dom.js";
import { QUICK_EMOJI } from "./message-parts.js";
import { menuItem } from "./popup.js";

export class MessageMenus {
  /**
   * `handlers`: reply(message), edit(message), remove(message),
   * toggleReaction(messageId, emoji), canEdit(message), canDelete(message),
   * seenBy(message) (names, or null where receipts are not shown).
   */
  constructor(popups, handlers) {
    this.popups = popups;
    this.handlers = handlers;
  }

  /** A second click on the same button closes what it opened. */
  toggle(button, open) {
    if (this.popups.isOpenFor(button)) {
      this.popups.close(true);
      return;
    }
    open();
  }

  openMenu(message, button) {
    const { handlers, popups } = this;
    this.toggle(button, () => {
      const seen = handlers.seenBy(message);
      const items = [
        menuItem(popups, "Add reaction…", () => this.openPicker(message, button, true)),
        menuItem(popups, "Reply", () => handlers.reply(message)),
        handlers.canEdit(message) ? menuItem(popups, "Edit", () => handlers.edit(message)) : null,
        seen ? menuItem(popups, "Seen by…", () => this.showSeenBy(seen, button)) : null,
        handlers.canDelete(message)
          ? menuItem(popups, "Delete", () => handlers.remove(message), { className: "danger" })
          : null,
      ];
      popups.show(button, items.filter(Boolean), { label: "Message actions" });
    });
  }

  /** A handful of common emoji; each adds the viewer's reaction, or takes it back. */
  openPicker(message, button, fromMenu = false) {
    const open = () => {
      const mine = new Set(
        (message.reactions ?? [])
          .filter((reaction) => reaction.user_ids.includes(this.handlers.me))
          .map((reaction) => reaction.emoji),
      );
      const items = QUICK_EMOJI.map(([emoji, name]) => {
        const item = menuItem(
          this.popups,
          emoji,
          () => {
            this.handlers.toggleReaction(message.message_id, emoji);
            if (button.isConnected) button.focus();
          },
          { className: `emoji${mine.has(emoji) ? " mine" : ""}` },
        );
        item.setAttribute("aria-label", `${mine.has(emoji) ? "Remove" : "React with"} ${name}`);
        item.title = name;
        return item;
      });
      this.popups.show(button, items, { label: "Pick a reaction", className: "emoji-picker" });
    };
    if (fromMenu) open();
    else this.toggle(button, open);
  }

  showSeenBy(names, button) {
    const body = names.length
      ? h(
          "ul",
          { class: "seen-list" },
          names.map((name) => h("li", {}, name)),
        )
      : h("p", { class: "seen-none" }, "No one has seen it yet.");
    this.toggle(button, () =>
      this.popups.show(button, [h("h3", { class: "popup-title" }, "Seen by"), body], {
        role: "dialog",
        label: "Seen by",
        className: "seen-popup",
      }),
    );
  }
}
