// The message box: Enter sends, Shift+Enter breaks the line, the length
// limit is shown before sending, and typing is signalled (at most every 3 s).
// It also replies (a quote of the message above the box) and edits (the
// message's text in the box, saved instead of sent); Escape cancels either,
// and Up in an empty box edits one's last message. `@` suggests members.

import { h } from "../dom.js";
import { MAX_TEXT, codePoints, formatCount } from "../format.js";
import { MentionList } from "./mention-list.js";

const TYPING_SEND_EVERY_MS = 3_000;
const LIMIT_WARN_AT = 90_000;

export class Composer {
  /**
   * `onSend(text, replyTo)` sends; `onEdit(messageId, text)` saves an edit;
   * `onEditLast()` asks to edit one's last message; `onTyping()` is called
   * while typing; `members()` answers who may be mentioned.
   */
  constructor(channelId, { onSend, onEdit, onEditLast, onTyping, members }) {
    this.onSend = onSend;
    this.onEdit = onEdit;
    this.onEditLast = onEditLast;
    this.onTyping = onTyping;
    this.lastTypingSent = 0;
    this.context = null; // {kind: "reply" | "edit", messageId}
    this.draft = "";
    this.textarea = h("textarea", {
      id: `composer-${channelId}`,
      class: "composer-text",
      rows: 1,
      placeholder: "Write a message",
      "aria-describedby": `composer-hint-${channelId} composer-limit-${channelId}`,
    });
    this.limit = h("p", {
      class: "limit",
      id: `composer-limit-${channelId}`,
      "aria-live": "polite",
    });
    this.sendButton = h(
      "button",
      { type: "submit", class: "primary send", "aria-label": "Send message" },
      "Send",
    );
    this.label = h("label", { for: this.textarea.id, class: "visually-hidden" }, "Message");
    this.contextTitle = h("strong", { class: "composer-context-title" });
    this.contextText = h("span", { class: "composer-context-text" });
    this.contextCancel = h(
      "button",
      { type: "button", class: "icon small-icon", onclick: () => this.cancel() },
      "×",
    );
    this.contextBar = h(
      "div",
      { class: "composer-context", hidden: true },
      h("span", { class: "composer-context-body" }, this.contextTitle, this.contextText),
      this.contextCancel,
    );
    this.contextStatus = h("span", { class: "visually-hidden", role: "status" });
    this.mentions = new MentionList(this.textarea, {
      candidates: members,
      onInsert: () => this.typed(),
    });
    this.element = h(
      "form",
      { class: "composer" },
      this.label,
      h(
        "small",
        { id: `composer-hint-${channelId}`, class: "visually-hidden" },
        "Enter sends. Shift+Enter starts a new line. Up in an empty box edits your last message.",
      ),
      this.contextBar,
      this.contextStatus,
      this.mentions.element,
      this.textarea,
      this.sendButton,
      this.limit,
    );
    this.textarea.addEventListener("keydown", (event) => this.keydown(event));
    this.textarea.addEventListener("input", () => this.typed());
    this.textarea.addEventListener("keyup", (event) => {
      if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) this.mentions.refresh();
    });
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  setRecipient(title) {
    this.label.textContent = `Message to ${title}`;
  }

  focus() {
    this.textarea.focus();
  }

  /** Quote `text` by `name` above the box; the next send replies to `messageId`. */
  startReply(messageId, name, text) {
    this.endEdit();
    this.context = { kind: "reply", messageId };
    this.showContext(`Replying to ${name}`, text, "Cancel reply");
    this.focus();
  }

  /** Put a message's text in the box; the next submit saves it as an edit. */
  startEdit(messageId, text) {
    if (this.context?.kind !== "edit") this.draft = this.textarea.value;
    this.context = { kind: "edit", messageId };
    this.showContext("Editing message", "Enter saves, Escape cancels", "Cancel editing");
    this.textarea.value = text;
    this.sendButton.textContent = "Save";
    this.sendButton.setAttribute("aria-label", "Save edit");
    this.typed();
    this.focus();
    this.textarea.setSelectionRange(text.length, text.length);
  }

  /** Leave a reply or an edit; an edit gives the box back its earlier draft. */
  cancel() {
    if (!this.context) return;
    const announced = this.context.kind === "edit" ? "Editing cancelled." : "Reply cancelled.";
    this.endEdit();
    this.context = null;
    this.contextBar.hidden = true;
    this.contextStatus.textContent = announced;
    this.focus();
  }

  /** Forget a reply or edit to this message (deleted meanwhile, say). */
  forget(messageId) {
    if (this.context?.messageId === messageId) this.cancel();
  }

  endEdit() {
    if (this.context?.kind !== "edit") return;
    this.textarea.value = this.draft;
    this.draft = "";
    this.sendButton.textContent = "Send";
    this.sendButton.setAttribute("aria-label", "Send message");
    this.typed();
  }

  showContext(title, text, cancelLabel) {
    this.contextTitle.textContent = title;
    this.contextText.textContent = text;
    this.contextCancel.setAttribute("aria-label", cancelLabel);
    this.contextCancel.title = cancelLabel;
    this.contextBar.hidden = false;
    this.contextStatus.textContent = `${title}.`;
  }

  keydown(event) {
    if (event.isComposing) return;
    if (this.mentions.keydown(event)) return;
    if (event.key === "Escape" && this.context) {
      event.preventDefault();
      this.cancel();
      return;
    }
    if (event.key === "ArrowUp" && !this.textarea.value && !this.context) {
      event.preventDefault();
      this.onEditLast();
      return;
    }
    if (event.key !== "Enter" || event.shiftKey || event.altKey) return;
    event.preventDefault();
    this.submit();
  }

  typed() {
    this.autosize();
    const length = this.updateLimit();
    this.mentions.refresh();
    const now = Date.now();
    if (
      this.context?.kind !== "edit" &&
      length > 0 &&
      now - this.lastTypingSent > TYPING_SEND_EVERY_MS
    ) {
      this.lastTypingSent = now;
      this.onTyping();
    }
  }

  autosize() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight + 2, 200)}px`;
  }

  /** Show the count near and over the limit; block sending over it. Returns the length. */
  updateLimit() {
    const length = codePoints(this.textarea.value);
    const over = length > MAX_TEXT;
    this.element.classList.toggle("over-limit", over);
    this.textarea.setAttribute("aria-invalid", over ? "true" : "false");
    this.sendButton.disabled = over;
    const count = `${formatCount(length)} / ${formatCount(MAX_TEXT)} characters`;
    if (over)
      this.limit.textContent = `${count}: ${formatCount(length - MAX_TEXT)} too many to send.`;
    else if (length >= LIMIT_WARN_AT) this.limit.textContent = count;
    else this.limit.textContent = "";
    return length;
  }

  submit() {
    const text = this.textarea.value;
    if (!text.trim()) return;
    if (codePoints(text) > MAX_TEXT) {
      this.updateLimit();
      return;
    }
    const context = this.context;
    this.context = null;
    this.contextBar.hidden = true;
    this.contextStatus.textContent = "";
    if (context?.kind === "edit") {
      this.textarea.value = this.draft;
      this.draft = "";
      this.sendButton.textContent = "Send";
      this.sendButton.setAttribute("aria-label", "Send message");
    } else {
      this.textarea.value = "";
    }
    this.autosize();
    this.updateLimit();
    this.mentions.close();
    this.lastTypingSent = 0;
    if (context?.kind === "edit") this.onEdit(context.messageId, text);
    else this.onSend(text, context?.messageId ?? null);
  }
}
