// The message box: Enter sends, Shift+Enter breaks the line, the length
// limit is shown before sending, and typing is signalled (at most every 3 s).

import { h } from "../dom.js";
import { MAX_TEXT, codePoints, formatCount } from "../format.js";

const TYPING_SEND_EVERY_MS = 3_000;
const LIMIT_WARN_AT = 90_000;

export class Composer {
  /** `onSend(text)` gets what to send; `onTyping()` is called while typing. */
  constructor(channelId, { onSend, onTyping }) {
    this.onSend = onSend;
    this.onTyping = onTyping;
    this.lastTypingSent = 0;
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
    this.element = h(
      "form",
      { class: "composer" },
      this.label,
      h(
        "small",
        { id: `composer-hint-${channelId}`, class: "visually-hidden" },
        "Enter sends. Shift+Enter starts a new line.",
      ),
      this.textarea,
      this.sendButton,
      this.limit,
    );
    this.textarea.addEventListener("keydown", (event) => this.keydown(event));
    this.textarea.addEventListener("input", () => this.typed());
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

  keydown(event) {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.altKey) return;
    event.preventDefault();
    this.submit();
  }

  typed() {
    this.autosize();
    const length = this.updateLimit();
    const now = Date.now();
    if (length > 0 && now - this.lastTypingSent > TYPING_SEND_EVERY_MS) {
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
    this.textarea.value = "";
    this.autosize();
    this.updateLimit();
    this.lastTypingSent = 0;
    this.onSend(text);
  }
}
