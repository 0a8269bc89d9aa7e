// Suggestions while typing `@name` in the composer: the channel's members
// whose username or display name starts with what follows the `@`. Up and
// Down choose, Enter or Tab puts `@username ` in the text, Escape closes;
// the focus stays in the text box (aria-activedescendant names the choice).

import { h } from "../dom.js";
import { mentionAt } from "../mentions.js";

const SHOWN_MAX = 8;

export class MentionList {
  /** `candidates()` answers [{userId, username, name}]; `onInsert()` follows an insertion. */
  constructor(textarea, { candidates, onInsert }) {
    this.textarea = textarea;
    this.candidates = candidates;
    this.onInsert = onInsert;
    this.matches = [];
    this.active = 0;
    this.target = null; // {start, query} of the mention being typed
    const id = `${textarea.id}-mentions`;
    this.list = h("ul", {
      id,
      class: "mention-list",
      role: "listbox",
      "aria-label": "Members to mention",
      hidden: true,
    });
    this.status = h("span", { class: "visually-hidden", "aria-live": "polite" });
    this.element = h("div", { class: "mention-box" }, this.list, this.status);
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", id);
    // A click on a suggestion must not take the focus from the text box first.
    this.list.addEventListener("mousedown", (event) => event.preventDefault());
    textarea.addEventListener("blur", () => this.close());
    textarea.addEventListener("click", () => this.refresh());
  }

  get open() {
    return !this.list.hidden;
  }

  /** Look again at the text before the caret (after input or caret moves). */
  refresh() {
    const { value, selectionStart, selectionEnd } = this.textarea;
    const target = selectionStart === selectionEnd ? mentionAt(value, selectionStart) : null;
    if (!target) {
      this.close();
      return;
    }
    const query = target.query.toLowerCase();
    const matches = this.candidates()
      .map((person) => ({ ...person, rank: rank(person, query) }))
      .filter((person) => person.rank > 0)
      .sort((a, b) => b.rank - a.rank || a.username.localeCompare(b.username))
      .slice(0, SHOWN_MAX);
    if (!matches.length) {
      this.close();
      return;
    }
    const previous = this.matches[this.active]?.userId;
    this.target = target;
    this.matches = matches;
    this.active = Math.max(
      0,
      matches.findIndex((person) => person.userId === previous),
    );
    this.render();
  }

  render() {
    const listId = this.list.id;
    this.list.replaceChildren(
      ...this.matches.map((person, index) =>
        h(
          "li",
          {
            id: `${listId}-${person.userId}`,
            role: "option",
            class: "mention-option",
            "aria-selected": String(index === this.active),
            onclick: () => this.insert(index),
          },
          h("span", { class: "mention-name" }, person.name),
          h("span", { class: "mention-username" }, `@${person.username}`),
        ),
      ),
    );
    const wasOpen = this.open;
    this.list.hidden = false;
    this.textarea.setAttribute(
      "aria-activedescendant",
      `${listId}-${this.matches[this.active].userId}`,
    );
    if (!wasOpen) {
      const count = this.matches.length;
      this.status.textContent = `${count} ${count === 1 ? "member" : "members"} to mention. Up and down to choose, Enter to insert.`;
    }
  }

  close() {
    if (!this.open && !this.target) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.matches = [];
    this.target = null;
    this.status.textContent = "";
    this.textarea.removeAttribute("aria-activedescendant");
  }

  /** True when the key was for the list (the composer then does nothing with it). */
  keydown(event) {
    if (!this.open) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.matches.length) % this.matches.length;
      this.render();
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      this.insert(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  insert(index) {
    const person = this.matches[index];
    const target = this.target;
    if (!person || !target) return;
    const { value, selectionStart } = this.textarea;
    const before = `${value.slice(0, target.start)}@${person.username} `;
    const after = value.slice(selectionStart).replace(/^ /, "");
    this.textarea.value = before + after;
    this.textarea.setSelectionRange(before.length, before.length);
    this.close();
    this.status.textContent = `${person.name} mentioned.`;
    this.textarea.focus();
    this.onInsert();
  }
}

/** 3: the username starts with it; 2: the display name does; 1: a later word does; 0: none. */
function rank(person, query) {
  if (!query) return 1;
  if (person.username.startsWith(query)) return 3;
  const name = person.name.toLowerCase();
  if (name.startsWith(query)) return 2;
  return name.split(/\s+/).some((word) => word.startsWith(query)) ? 1 : 0;
}
