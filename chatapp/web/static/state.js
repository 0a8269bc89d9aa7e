// What the client knows: the signed-in user, users seen, channels with their
// last message and unread count, loaded history, presence, typing and the
// other members' read receipts. Views read it and listen for "change" events
// naming what changed.

import { History, patched } from "./history.js";

export class ChatState extends EventTarget {
  constructor(me, deviceId) {
    super();
    this.me = me;
    this.deviceId = deviceId;
    this.users = new Map([[me.user_id, me]]);
    this.channels = new Map();
    this.histories = new Map();
    this.presence = new Map();
    this.friends = new Set();
    this.blocked = new Set(); // user ids this user blocks
    this.requests = { incoming: [], outgoing: [] };
    this.typing = new Map(); // channel_id -> Map(user_id -> expires at)
    this.receipts = new Map(); // channel_id -> Map(user_id -> read_message_id)
    this.updateClock = 0; // counts updates applied, to order them against fetches
    this.connection = { state: "connecting", retryAt: null };
  }

  changed(what, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, ...detail } }));
  }

  // Users

  nameOf(userId) {
    const user = this.users.get(userId);
    return user ? user.display_name || user.username : `user ${userId}`;
  }

  rememberUsers(users) {
    for (const user of users) this.users.set(user.user_id, user);
    if (users.length) this.changed("users");
  }

  setBlocked(users) {
    this.rememberUsers(users);
    this.blocked = new Set(users.map((user) => user.user_id));
    this.changed("blocks");
  }

  // Channels

  setChannels(channels) {
    const fresh = new Map();
    for (const channel of channels) fresh.set(channel.channel_id, this.mergeChannel(channel));
    this.channels = fresh;
    this.changed("channels");
  }

  upsertChannel(channel) {
    this.channels.set(channel.channel_id, this.mergeChannel(channel));
    this.changed("channels", { channelId: channel.channel_id });
  }

  removeChannel(channelId) {
    this.channels.delete(channelId);
    this.histories.delete(channelId);
    this.typing.delete(channelId);
    this.receipts.delete(channelId);
    this.changed("channels", { channelId, removed: true });
  }

  /** A channel from the server, keeping what we learnt that it does not say. */
  mergeChannel(incoming) {
    const known = this.channels.get(incoming.channel_id);
    // The server sends the start of the last message (`last_message`); a
    // message we hold already (live or from history) is as new or newer.
    const channel = { ...incoming, preview: newerPreview(known?.preview, incoming.last_message) };
    if (known) {
      // Counters only move forward: a list fetched before a live message must
      // not take that message back.
      channel.last_message_id = Math.max(known.last_message_id, incoming.last_message_id);
      channel.read_message_id = Math.max(known.read_message_id, incoming.read_message_id);
    }
    if (channel.preview && channel.preview.message_id !== channel.last_message_id) {
      channel.preview = null;
    }
    channel.unread_count = Math.max(0, channel.last_message_id - channel.read_message_id);
    return channel;
  }

  /** Direct chats are named after the other member; notes to self after oneself. */
  channelTitle(channel) {
    if (channel.kind === "group") return channel.name;
    return this.nameOf(this.otherMember(channel));
  }

  otherMember(channel) {
    return channel.members.find((id) => id !== this.me.user_id) ?? this.me.user_id;
  }

  activityOf(channel) {
    return channel.preview?.created_at ?? channel.created_at;
  }

  /** Most recent activity first. */
  sortedChannels() {
    return [...this.channels.values()].sort(
      (a, b) => this.activityOf(b) - this.activityOf(a) || b.channel_id - a.channel_id,
    );
  }

  setPreview(channelId, message) {
    const channel = this.channels.get(channelId);
    if (!channel || !message) return;
    if (!channel.preview || message.message_id >= channel.preview.message_id) {
      channel.preview = message;
      this.changed("channels", { channelId });
    }
  }

  // Messages

  history(channelId) {
    let history = this.histories.get(channelId);
    if (!history) {
      history = new History();
      this.histories.set(channelId, history);
    }
    return history;
  }

  /**
   * A message from the socket (live, replayed or acknowledged). Returns true
   * when it was news: not already counted in the channel.
   */
  addMessage(message) {
    const channel = this.channels.get(message.channel_id);
    // Kept even before the history's first page is loaded: that page may
    // have been read before this message was stored.
    const addedToHistory = this.history(message.channel_id).merge([message]);
    let news = false;
    if (channel) {
      news = message.message_id > channel.last_message_id;
      if (news) channel.last_message_id = message.message_id;
      if (message.sender_id === this.me.user_id) {
        // Our own messages count as read, as the server counts them.
        channel.read_message_id = Math.max(channel.read_message_id, message.message_id);
      }
      channel.unread_count = Math.max(0, channel.last_message_id - channel.read_message_id);
      if (!channel.preview || message.message_id >= channel.preview.message_id) {
        channel.preview = message;
      }
    }
    this.stopTyping(message.channel_id, message.sender_id);
    if (addedToHistory || news) this.changed("messages", { channelId: message.channel_id });
    this.changed("channels", { channelId: message.channel_id });
    return news;
  }

  /** An `update` frame: an edit, a deletion or new reactions, in seq order with messages. */
  applyUpdate(update) {
    const channelId = update.channel_id;
    const channel = this.channels.get(channelId);
    if (!channel && !this.histories.has(channelId)) return;
    this.updateClock += 1;
    const changed = this.history(channelId).apply(update, this.updateClock);
    if (channel?.preview?.message_id === update.message_id) {
      channel.preview = patched(channel.preview, update);
      this.changed("channels", { channelId });
    }
    if (changed) this.changed("messages", { channelId, messageId: update.message_id });
  }

  markRead(channelId, messageId) {
    const channel = this.channels.get(channelId);
    if (!channel || messageId <= channel.read_message_id) return false;
    channel.read_message_id = messageId;
    channel.last_message_id = Math.max(channel.last_message_id, messageId);
    channel.unread_count = Math.max(0, channel.last_message_id - channel.read_message_id);
    this.changed("channels", { channelId });
    this.changed("read", { channelId });
    return true;
  }

  totalUnread() {
    let total = 0;
    for (const channel of this.channels.values()) total += channel.unread_count;
    return total;
  }

  // Read receipts: how far the other members have read

  setReceipts(channelId, receipts) {
    const known = this.receipts.get(channelId) ?? new Map();
    const fresh = new Map();
    for (const { user_id: userId, read_message_id: at } of receipts) {
      // Markers only move forward: a frame may have overtaken this answer.
      fresh.set(userId, Math.max(at, known.get(userId) ?? 0));
    }
    this.receipts.set(channelId, fresh);
    this.changed("receipts", { channelId });
  }

  setReceipt(channelId, userId, messageId) {
    if (!this.receipts.has(channelId)) this.receipts.set(channelId, new Map());
    const markers = this.receipts.get(channelId);
    if ((markers.get(userId) ?? 0) >= messageId) return;
    markers.set(userId, messageId);
    this.changed("receipts", { channelId });
  }

  /** The other members (who share it) that have read up to `messageId`: ids, sorted by name. */
  readBy(channelId, messageId) {
    const markers = this.receipts.get(channelId);
    const members = new Set(this.channels.get(channelId)?.members ?? []);
    if (!markers) return [];
    const readers = [];
    for (const [userId, at] of markers) {
      if (userId !== this.me.user_id && members.has(userId) && at >= messageId) {
        readers.push(userId);
      }
    }
    return readers.sort((a, b) => this.nameOf(a).localeCompare(this.nameOf(b)));
  }

  // Presence and friends

  setPresence(entry) {
    this.presence.set(entry.user_id, entry);
    this.changed("presence", { userId: entry.user_id });
  }

  statusOf(userId) {
    return this.presence.get(userId)?.status ?? "offline";
  }

  setFriends(friends) {
    this.friends = new Set(friends.map((entry) => entry.user.user_id));
    for (const entry of friends) {
      this.users.set(entry.user.user_id, entry.user);
      this.presence.set(entry.user.user_id, entry.presence);
    }
    this.changed("friends");
    this.changed("presence", {});
  }

  setRequests(requests) {
    this.requests = {
      incoming: requests.incoming.map((entry) => entry.user),
      outgoing: requests.outgoing.map((entry) => entry.user),
    };
    for (const user of [...this.requests.incoming, ...this.requests.outgoing]) {
      this.users.set(user.user_id, user);
    }
    this.changed("friends");
  }

  // Typing

  startTyping(channelId, userId, forMs) {
    if (userId === this.me.user_id) return;
    if (!this.typing.has(channelId)) this.typing.set(channelId, new Map());
    this.typing.get(channelId).set(userId, Date.now() + forMs);
    this.changed("typing", { channelId });
  }

  stopTyping(channelId, userId) {
    if (this.typing.get(channelId)?.delete(userId)) this.changed("typing", { channelId });
  }

  typers(channelId) {
    const now = Date.now();
    const entries = this.typing.get(channelId);
    if (!entries) return [];
    for (const [userId, until] of entries) if (until <= now) entries.delete(userId);
    return [...entries.keys()];
  }

  // Connection

  setConnection(state, retryAt) {
    this.connection = { state, retryAt };
    this.changed("connection");
  }
}

function newerPreview(known, listed) {
  if (!listed) return known ?? null;
  if (!known || listed.message_id > known.message_id) return listed;
  return known;
}
