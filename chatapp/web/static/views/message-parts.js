// The parts of one message line that the lifecycle adds: text with mentions,
// the quote of the message replied to, reactions, and read marks. Each takes
// plain display data (see MessageNodes.display) and builds nodes.

import { h } from "../dom.js";

export const DELETED_TEXT = "This message was deleted";
export const QUICK_EMOJI = [
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😂", "laughing"],
  ["🎉", "party"],
  ["😮", "surprised"],
  ["😢", "sad"],
  ["🙏", "thank you"],
  ["👀", "looking"],
];

/** "alice", "alice and you", "alice, bob and you". */
export function listOfNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** `parts` are [text, kind]: kind 0 plain, 1 a mention, 2 a mention of the viewer. */
export function textNodes(parts) {
  return parts.map(([text, kind]) => {
    if (kind === 0) return text;
    const me = kind === 2;
    return h("span", { class: me ? "mention me" : "mention" }, text);
  });
}

/** The quote above a reply's text: who wrote the original and how it begins. */
export function quoteNodes(quote) {
  const hidden = h("span", { class: "visually-hidden" }, "In reply to ");
  if (quote.state === "loading") {
    return [hidden, h("span", { class: "quote-text" }, "Loading the original message…")];
  }
  if (quote.state === "missing") {
    return [hidden, h("span", { class: "quote-text" }, "The original message is not available")];
  }
  return [
    hidden,
    h("span", { class: "quote-sender" }, quote.sender),
    h("span", { class: `quote-text${quote.deleted ? " deleted" : ""}` }, quote.text),
  ];
}

/** One button per emoji, pressed when the viewer is among those who reacted. */
export function reactionButton({ emoji, count, mine, names }, onToggle) {
  const who = listOfNames(names);
  const hint = mine ? "remove yours" : "add yours";
  return h(
    "button",
    {
      type: "button",
      class: `reaction${mine ? " mine" : ""}`,
      "aria-pressed": String(mine),
      "aria-label": `${emoji} ${count}, by ${who}; ${hint}`,
      title: who,
      dataset: { emoji },
      onclick: () => onToggle(emoji),
    },
    h("span", { class: "reaction-emoji", "aria-hidden": "true" }, emoji),
    h("span", { class: "reaction-count", "aria-hidden": "true" }, String(count)),
  );
}

/** A sent mark: ✓ sent, ✓✓ read by the other member, ○ sending, ! not sent. */
export function statusMark(status) {
  const glyph = { pending: "○", sent: "✓", read: "✓✓", failed: "!" }[status];
  const label = { pending: "sending", sent: "sent", read: "read", failed: "not sent" }[status];
  return { glyph, label };
}
