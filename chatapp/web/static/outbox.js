// Messages written but not yet acknowledged. Kept in localStorage per device,
// so a reload or a lost connection never loses them: each is sent again with
// the same client_msg_id until the server acknowledges it, and the server
// stores it exactly once.

export function newClientMsgId() {
  // crypto.randomUUID exists only in secure contexts; a LAN address over
  // plain http is not one, while getRandomValues works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class Outbox {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    this.items = [];
    try {
      const saved = JSON.parse(storage.getItem(key) ?? "[]");
      if (Array.isArray(saved)) this.items = saved.filter((item) => item?.client_msg_id);
    } catch {
      this.items = [];
    }
    // Whatever was in flight when the page closed is pending again.
    for (const item of this.items) if (item.state === "sending") item.state = "pending";
  }

  add(channelId, text, replyTo = null) {
    const item = {
      client_msg_id: newClientMsgId(),
      channel_id: channelId,
      text,
      reply_to: replyTo,
      created_at: Date.now(),
      state: "pending",
      error: null,
    };
    this.items.push(item);
    this.save();
    return item;
  }

  get(clientMsgId) {
    return this.items.find((item) => item.client_msg_id === clientMsgId);
  }

  /** The server has the message: forget it. Returns the item, if it was ours. */
  settle(clientMsgId) {
    const item = this.get(clientMsgId);
    if (!item) return undefined;
    this.items = this.items.filter((other) => other !== item);
    this.save();
    return item;
  }

  fail(clientMsgId, reason) {
    const item = this.get(clientMsgId);
    if (!item) return undefined;
    item.state = "failed";
    item.error = reason;
    this.save();
    return item;
  }

  retry(clientMsgId) {
    const item = this.get(clientMsgId);
    if (!item) return undefined;
    item.state = "pending";
    item.error = null;
    this.save();
    return item;
  }

  forChannel(channelId) {
    return this.items.filter((item) => item.channel_id === channelId);
  }

  /** What should go out, oldest first: everything not refused for good. */
  unsent() {
    return this.items.filter((item) => item.state !== "failed");
  }

  dropChannel(channelId) {
    this.items = this.items.filter((item) => item.channel_id !== channelId);
    this.save();
  }

  save() {
    try {
      this.storage.setItem(this.key, JSON.stringify(this.items));
    } catch {
      // Storage full or disabled: the messages stay in memory for this page.
    }
  }

  clear() {
    this.items = [];
    this.storage.removeItem(this.key);
  }
}
