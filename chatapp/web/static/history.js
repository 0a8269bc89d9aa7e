// One channel's messages as the client holds them: the loaded run of
// history, messages fetched only to be quoted, and the updates (edits,
// deletions, reactions) that reach messages in place.

const HELD_UPDATES_MAX = 2_000;

export class History {
  constructor() {
    this.byId = new Map();
    this.messages = []; // oldest first
    // Messages outside that run, fetched only to be quoted by a reply.
    this.quoted = new Map();
    this.quoting = new Set(); // ids of quoted messages asked for
    this.missing = new Set(); // ids of quoted messages the server does not have
    // Updates to messages not held yet: [message_id, update, clock], oldest first.
    this.held = [];
    this.loaded = false;
    this.loading = false;
    this.pendingPage = null; // the page being loaded, for others to wait on
    this.hasMoreBefore = true;
  }

  /**
   * Add messages (any order, repeats ignored); true when something was new.
   * `since` is the update clock when they were asked for: an update held from
   * before that is in them already, a later one is applied to them.
   */
  merge(messages, since = Number.NEGATIVE_INFINITY) {
    let added = false;
    for (const incoming of messages) {
      const id = incoming.message_id;
      if (this.byId.has(id)) continue;
      // A quoted copy has had every update since it came: it is the newer.
      const message = this.takeHeld(this.quoted.get(id) ?? incoming, since);
      this.quoted.delete(id);
      this.byId.set(id, message);
      added = true;
    }
    if (added) this.messages = [...this.byId.values()].sort((a, b) => a.message_id - b.message_id);
    return added;
  }

  /** Keep a message that lies outside the loaded run, to show it in a quote. */
  addQuoted(message, since = Number.NEGATIVE_INFINITY) {
    if (this.get(message.message_id)) return;
    this.quoted.set(message.message_id, this.takeHeld(message, since));
  }

  get(messageId) {
    return this.byId.get(messageId) ?? this.quoted.get(messageId);
  }

  /** Apply an `update`; one for a message not here yet is held for when it comes. */
  apply(update, clock) {
    const id = update.message_id;
    const known = this.get(id);
    if (!known) {
      this.held.push([id, update, clock]);
      if (this.held.length > HELD_UPDATES_MAX) this.held.shift();
      return false;
    }
    const next = patched(known, update);
    if (this.byId.has(id)) {
      this.byId.set(id, next);
      this.messages = this.messages.map((message) => (message.message_id === id ? next : message));
    } else {
      this.quoted.set(id, next);
    }
    return true;
  }

  takeHeld(message, since) {
    if (!this.held.length) return message;
    let result = message;
    for (const [id, update, clock] of this.held) {
      if (id === message.message_id && clock >= since) result = patched(result, update);
    }
    this.held = this.held.filter(([id]) => id !== message.message_id);
    return result;
  }

  get oldestId() {
    return this.messages.length ? this.messages[0].message_id : undefined;
  }

  get newestId() {
    return this.messages.length ? this.messages[this.messages.length - 1].message_id : 0;
  }
}

/** A message (or a channel's preview of one) as an `update` leaves it. */
export function patched(message, update) {
  switch (update.kind) {
    case "edited":
      return {
        ...message,
        text: message.deleted ? "" : update.text,
        truncated: false,
        edited: true,
        edited_at: update.edited_at,
        mentions: message.deleted ? [] : (update.mentions ?? []),
      };
    case "deleted":
      return { ...message, deleted: true, text: "", truncated: false, mentions: [], reactions: [] };
    case "reactions":
      return message.deleted ? message : { ...message, reactions: update.reactions ?? [] };
    default:
      return message;
  }
}
