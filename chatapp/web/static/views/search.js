// Searching one's messages: a query box, results newest first with where
// and by whom each was said and a snippet with the matching words marked,
// more results a page at a time, and a click opens the message in its chat
// (history paged back to it). The last search is kept while the tab lives,
// so coming back from a result shows the same list.

import { h, replace } from "../dom.js";
import { formatFull, formatWhen } from "../format.js";

const SNIPPET_CHARS = 160;
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
let kept = null; // {query, results, nextBefore, hasMore}

/** The words of a query as the server reads them, folded; the last is also a prefix. */
export function queryWords(query) {
  return [...fold(query).matchAll(WORD)].map((match) => match[0]);
}

function fold(text) {
  return text.normalize("NFKC").toLowerCase();
}

/**
 * The part of `text` around its first match, as [piece, matched] pairs.
 * Matching is by whole words, the last query word also as a prefix; the
 * pieces are plain strings, shown as text and never as markup.
 */
export function snippet(text, words) {
  const last = words[words.length - 1];
  const hits = [];
  for (const match of text.matchAll(WORD)) {
    const word = fold(match[0]);
    if (words.includes(word) || (last && word.startsWith(last))) {
      hits.push([match.index, match.index + match[0].length]);
    }
  }
  let start = 0;
  let end = text.length;
  if (text.length > SNIPPET_CHARS) {
    const first = hits.length ? hits[0][0] : 0;
    start = Math.max(0, first - SNIPPET_CHARS / 4);
    end = Math.min(text.length, start + SNIPPET_CHARS);
  }
  const pieces = [];
  if (start > 0) pieces.push(["…", false]);
  let at = start;
  for (const [from, to] of hits) {
    if (to <= start || from >= end) continue;
    if (from > at) pieces.push([text.slice(at, from), false]);
    pieces.push([text.slice(Math.max(from, at), Math.min(to, end)), true]);
    at = Math.min(to, end);
  }
  if (at < end) pieces.push([text.slice(at, end), false]);
  if (end < text.length) pieces.push(["…", false]);
  return pieces;
}

export class SearchView {
  /** `actions.search(query, before)` answers the server's page; results link to their chat. */
  constructor(state, actions) {
    this.state = state;
    this.actions = actions;
    this.input = h("input", {
      id: "search-query",
      type: "search",
      maxlength: 200,
      required: true,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "Words, or \"a phrase\"",
    });
    this.status = h("p", { class: "search-status", role: "status", "aria-live": "polite" });
    this.list = h("ol", { class: "search-results", "aria-label": "Search results" });
    this.more = h(
      "button",
      { type: "button", class: "secondary", hidden: true, onclick: () => this.loadMore() },
      "Show older results",
    );
    const form = h(
      "form",
      { class: "search-form", role: "search", onsubmit: (event) => this.submit(event) },
      h("label", { for: "search-query", class: "visually-hidden" }, "Search messages"),
      this.input,
      h("button", { type: "submit", class: "primary" }, "Search"),
    );
    this.element = h(
      "section",
      { class: "search-page", "aria-labelledby": "search-page-title" },
      h(
        "header",
        { class: "page-header" },
        h("a", { href: "#/chats", class: "back", "aria-label": "Back to chats" }, "‹"),
        h("h2", { id: "search-page-title" }, "Search"),
      ),
      h("div", { class: "page-body" }, form, this.status, this.list, this.more),
    );
    this.results = [];
    this.nextBefore = null;
    this.hasMore = false;
    this.query = "";
    if (kept) {
      Object.assign(this, kept);
      this.input.value = kept.query;
      this.render();
    }
  }

  destroy() {
    kept = this.query
      ? {
          query: this.query,
          results: this.results,
          nextBefore: this.nextBefore,
          hasMore: this.hasMore,
        }
      : null;
  }

  focus() {
    this.input.focus();
  }

  async submit(event) {
    event.preventDefault();
    const query = this.input.value.trim();
    if (!query) return;
    this.query = query;
    this.results = [];
    this.nextBefore = null;
    this.hasMore = false;
    replace(this.list);
    await this.fetch();
  }

  async loadMore() {
    if (!this.hasMore) return;
    await this.fetch();
  }

  async fetch() {
    const query = this.query;
    this.status.textContent = "Searching…";
    this.more.disabled = true;
    try {
      const page = await this.actions.search(query, this.nextBefore);
      if (query !== this.query) return; // a newer search went out meanwhile
      this.results = [...this.results, ...page.results.map((result) => result.message)];
      this.nextBefore = page.next_before;
      this.hasMore = page.has_more;
      this.render();
    } catch (error) {
      this.status.textContent =
        error.code === "bad_query"
          ? "Type at least one word or number to search for."
          : `Could not search: ${error.message}`;
    } finally {
      this.more.disabled = false;
    }
  }

  render() {
    const count = this.results.length;
    this.status.textContent = count
      ? `${count}${this.hasMore ? "+" : ""} ${count === 1 ? "message" : "messages"} found.`
      : `No messages match “${this.query}”.`;
    const words = queryWords(this.query);
    replace(
      this.list,
      this.results.map((message) => this.item(message, words)),
    );
    this.more.hidden = !this.hasMore;
  }

  item(message, words) {
    const state = this.state;
    const channel = state.channels.get(message.channel_id);
    const where = channel ? state.channelTitle(channel) : "A chat you left";
    const sender =
      message.sender_id === state.me.user_id ? "You" : state.nameOf(message.sender_id);
    const time = h(
      "time",
      { datetime: new Date(message.created_at).toISOString(), title: formatFull(message.created_at) },
      formatWhen(message.created_at),
    );
    const text = h(
      "span",
      { class: "result-text" },
      snippet(message.text, words).map(([piece, matched]) =>
        matched ? h("mark", {}, piece) : piece,
      ),
    );
    return h(
      "li",
      {},
      h(
        "a",
        {
          class: "search-result",
          href: `#/chats/${message.channel_id}/${message.message_id}`,
          dataset: { channelId: message.channel_id, messageId: message.message_id },
        },
        h(
          "span",
          { class: "result-top" },
          h("span", { class: "result-channel" }, where),
          h("span", { class: "result-sender" }, sender),
          time,
        ),
        text,
      ),
    );
  }
}
