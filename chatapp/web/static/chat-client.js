// The signed-in client: loads what the user has over HTTP, keeps it current
// from the WebSocket, and carries out what the views ask for.

import { ApiError, userNamed } from "./api.js";
import { HistoryPages } from "./history-loader.js";
import { notifyMessage } from "./notify.js";
import { Outbox } from "./outbox.js";
import { ChatSocket, socketUrl } from "./socket.js";
import { ChatState } from "./state.js";

const TYPING_SHOWN_MS = 6_000;
const SEND_RETRY_MS = 2_000;
const REQUESTS_POLL_MS = 20_000;
const RETRYABLE = new Set(["rate_limited", "store_unavailable"]);
const DISCOVERY_TIMEOUT_MS = 2_000;

export class ChatClient {
  constructor(api, session, { onSignedOut, toast, navigate }) {
    this.api = api;
    this.session = session;
    this.onSignedOut = onSignedOut;
    this.toast = toast;
    this.navigate = navigate;
    this.state = new ChatState(session.user, session.device_id);
    this.pages = new HistoryPages(api, this.state, (messages) => this.ensurePeopleIn(messages));
    this.outbox = new Outbox(window.localStorage, `chatapp.outbox.${session.device_id}`);
    this.socket = new ChatSocket({
      url: socketUrl(session.ws_url),
      token: session.token,
      deviceId: session.device_id,
      // In a cluster the node may be gone: ask again which to use, but never
      // wait long (the path that dropped the socket may hold this request too).
      discover: async () =>
        socketUrl((await this.api.discovery({ timeoutMs: DISCOVERY_TIMEOUT_MS })).ws_url),
    });
    this.socket.addEventListener("state", (event) =>
      this.state.setConnection(event.detail.state, event.detail.retryAt),
    );
    this.socket.addEventListener("frame", (event) => this.received(event.detail));
    this.socket.addEventListener("synced", (event) => this.synced(event.detail));
    this.socket.addEventListener("unauthorized", () =>
      this.signedOut("Your session ended. Log in again."),
    );
    // Phones suspend background tabs; on return, do not wait out the backoff.
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.socket.reconnectNow();
    };
    this.currentChannel = null;
    this.leaving = false;
    this.onReadNeeded = null;
    this.inbound = Promise.resolve();
  }

  async start() {
    const [me, channels] = await Promise.all([this.api.me(), this.api.channels()]);
    this.state.me = me.user;
    this.state.rememberUsers([me.user]);
    this.state.setChannels(channels.channels);
    await this.ensureUsers(channels.channels.flatMap((channel) => channel.members));
    this.socket.start();
    document.addEventListener("visibilitychange", this.onVisible);
    // The rest can arrive while the person already looks at the list.
    this.refreshFriends();
    this.loadPreviews([...this.state.channels.values()]);
    this.refreshDirectPresence();
    this.requestsTimer = setInterval(() => this.refreshRequests(), REQUESTS_POLL_MS);
  }

  stop() {
    clearInterval(this.requestsTimer);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.socket.stop();
  }

  async logout() {
    this.stop();
    try {
      await this.api.logout();
    } catch {
      // The token is forgotten here either way.
    }
    this.onSignedOut(null);
  }

  signedOut(reason) {
    if (this.leaving) return; // the account's deletion signs out when it answers
    this.stop();
    this.onSignedOut(reason);
  }

  // Loading

  /** Everyone a view of these messages names: senders, mentioned people, reactors. */
  async ensurePeopleIn(messages) {
    await this.ensureUsers(
      messages.flatMap((message) => [
        message.sender_id,
        ...(message.mentions ?? []),
        ...(message.reactions ?? []).flatMap((reaction) => reaction.user_ids),
      ]),
    );
  }

  async ensureUsers(ids) {
    const missing = [...new Set(ids)].filter((id) => !this.state.users.has(id));
    if (!missing.length) return;
    const answers = await Promise.allSettled(missing.map((id) => this.api.user(id)));
    this.state.rememberUsers(
      answers.filter((a) => a.status === "fulfilled").map((a) => a.value.user),
    );
  }

  async loadPreviews(channels) {
    const queue = channels.filter((channel) => channel.last_message_id > 0 && !channel.preview);
    const worker = async () => {
      while (queue.length) {
        const channel = queue.shift();
        try {
          const { messages } = await this.api.messages(channel.channel_id, { limit: 1 });
          if (messages.length) {
            await this.ensurePeopleIn(messages);
            this.state.setPreview(channel.channel_id, messages[0]);
          }
        } catch {
          // A preview is a nicety; the list works without it.
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  async refreshChannels() {
    const { channels } = await this.api.channels();
    this.state.setChannels(channels);
    await this.ensureUsers(channels.flatMap((channel) => channel.members));
    this.loadPreviews(channels.map((channel) => this.state.channels.get(channel.channel_id)));
    if (this.currentChannel !== null && !this.state.channels.has(this.currentChannel)) {
      this.navigate("#/chats");
    }
  }

  async refreshFriends() {
    try {
      const [friends, requests] = await Promise.all([
        this.api.friends(),
        this.api.friendRequests(),
      ]);
      this.state.setFriends(friends.friends);
      this.state.setRequests(requests);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }

  async refreshRequests() {
    try {
      this.state.setRequests(await this.api.friendRequests());
    } catch {
      // Tried again at the next tick.
    }
  }

  /** Presence of direct-chat partners who are not friends (friends' is pushed). */
  async refreshDirectPresence() {
    const direct = [...this.state.channels.values()].filter(
      (channel) =>
        channel.kind === "direct" && !this.state.friends.has(this.state.otherMember(channel)),
    );
    await Promise.allSettled(direct.map((channel) => this.refreshPresence(channel.channel_id)));
  }

  async refreshPresence(channelId) {
    if (!this.state.channels.has(channelId)) return;
    try {
      const { presence } = await this.api.channelPresence(channelId);
      for (const entry of presence) this.state.setPresence(entry);
    } catch {
      // Shown as last known.
    }
  }

  // The socket

  synced({ reconnected }) {
    for (const item of this.outbox.unsent()) this.transmit(item);
    if (reconnected) {
      // Channel and friend changes and receipts are not replayed; fetch them afresh.
      this.refreshChannels().catch(() => {});
      this.refreshFriends();
      this.state.receipts.clear();
      if (this.currentChannel !== null) this.loadReceipts(this.currentChannel);
    }
    this.onReadNeeded?.();
  }

  received(frame) {
    switch (frame.type) {
      case "message":
      case "ack":
        // One at a time, in the order they came, even when one must wait
        // for a user or channel to be fetched.
        this.inbound = this.inbound
          .then(() => this.messageArrived(frame.message))
          .catch((error) => {
            console.error("message not shown", error);
          });
        break;
      case "update":
        // In the same queue as messages: an update may name a message still on its way.
        this.inbound = this.inbound
          .then(() => this.updateArrived(frame.update))
          .catch((error) => {
            console.error("update not applied", error);
          });
        break;
      case "receipt":
        this.state.setReceipt(frame.channel_id, frame.user_id, frame.message_id);
        break;
      case "error":
        if (frame.client_msg_id) this.sendRefused(frame);
        else console.warn("server error", frame.code, frame.message);
        break;
      case "presence":
        this.state.setPresence(frame);
        // A presence frame about a stranger means a friendship just began.
        if (!this.state.friends.has(frame.user_id)) this.refreshFriends();
        break;
      case "read":
        this.state.markRead(frame.channel_id, frame.message_id);
        break;
      case "typing":
        this.state.startTyping(frame.channel_id, frame.user_id, TYPING_SHOWN_MS);
        break;
      case "channel":
        this.channelChanged(frame.event, frame.channel);
        break;
      default:
        break;
    }
  }

  async messageArrived(message) {
    const channelId = message.channel_id;
    if (!this.state.channels.has(channelId)) {
      // A channel made while this device was away: its frame was not replayed.
      try {
        const { channel } = await this.api.channel(channelId);
        this.state.upsertChannel(channel);
        await this.ensureUsers(channel.members);
      } catch {
        return;
      }
    }
    await this.ensurePeopleIn([message]);
    const history = this.state.histories.get(channelId);
    const gap =
      history?.loaded && message.message_id > history.newestId + 1 ? history.newestId : null;
    const news = this.state.addMessage(message);
    // After the message is in the history, so its line turns from pending to sent in place.
    if (message.sender_id === this.state.me.user_id) this.settle(message.client_msg_id);
    if (gap !== null) this.pages.fillGap(channelId, gap).catch(() => {});
    if (news && message.sender_id !== this.state.me.user_id) this.notify(message);
  }

  async updateArrived(update) {
    await this.ensureUsers([
      ...(update.mentions ?? []),
      ...(update.reactions ?? []).flatMap((reaction) => reaction.user_ids),
    ]);
    this.state.applyUpdate(update);
  }

  /** Sharing is both ways: off, one's own marker is hidden and others' are not shown. */
  async setShareReceipts(share) {
    const { user } = await this.api.updateMe({ share_read_receipts: share });
    this.state.me = user;
    this.state.rememberUsers([user]);
    this.state.receipts.clear();
    if (this.currentChannel !== null) await this.loadReceipts(this.currentChannel);
    this.state.changed("receipts", { channelId: this.currentChannel });
  }

  /** How far the other members have read (those who share it); shown on one's own messages. */
  async loadReceipts(channelId) {
    try {
      const { receipts } = await this.api.receipts(channelId);
      this.state.setReceipts(channelId, receipts);
    } catch {
      // Shown without read marks until the next try.
    }
  }

  notify(message) {
    const channel = this.state.channels.get(message.channel_id);
    if (!channel) return;
    const sender = this.state.nameOf(message.sender_id);
    const title = channel.kind === "group" ? `${sender} in ${channel.name}` : sender;
    notifyMessage({
      title,
      body: message.text,
      channelId: message.channel_id,
      onOpen: () => this.navigate(`#/chats/${message.channel_id}`),
    });
  }

  async channelChanged(event, channel) {
    if (event === "removed") {
      const known = this.state.channels.get(channel.channel_id);
      this.state.removeChannel(channel.channel_id);
      this.outbox.dropChannel(channel.channel_id);
      if (this.currentChannel === channel.channel_id) {
        this.toast(
          `You are no longer in ${known ? this.state.channelTitle(known) : "that group"}.`,
        );
        this.navigate("#/chats");
      }
      return;
    }
    await this.ensureUsers(channel.members);
    this.state.upsertChannel(channel);
    if (event === "added") this.loadPreviews([this.state.channels.get(channel.channel_id)]);
  }

  // Sending

  send(channelId, text, replyTo = null) {
    const item = this.outbox.add(channelId, text, replyTo);
    this.state.changed("outbox", { channelId });
    this.transmit(item);
  }

  /** Put an unsent message on the wire; a dropped connection sends it again on resync. */
  transmit(item) {
    if (item.state === "failed") return;
    const frame = {
      type: "send",
      client_msg_id: item.client_msg_id,
      channel_id: item.channel_id,
      text: item.text,
    };
    if (item.reply_to) frame.reply_to = item.reply_to;
    this.socket.send(frame);
  }

  settle(clientMsgId) {
    const item = this.outbox.settle(clientMsgId);
    if (item) this.state.changed("outbox", { channelId: item.channel_id });
  }

  sendRefused(frame) {
    const item = this.outbox.get(frame.client_msg_id);
    if (!item) return;
    if (RETRYABLE.has(frame.code)) {
      setTimeout(() => this.transmit(item), SEND_RETRY_MS);
      return;
    }
    this.outbox.fail(frame.client_msg_id, frame.message || frame.code);
    this.state.changed("outbox", { channelId: item.channel_id });
  }

  retry(clientMsgId) {
    const item = this.outbox.retry(clientMsgId);
    if (!item) return;
    this.state.changed("outbox", { channelId: item.channel_id });
    this.transmit(item);
  }

  discard(clientMsgId) {
    this.settle(clientMsgId);
  }

  pendingFor(channelId) {
    return this.outbox.forChannel(channelId);
  }

  typing(channelId) {
    this.socket.send({ type: "typing", channel_id: channelId });
  }

  read(channelId, messageId) {
    if (this.socket.send({ type: "read", channel_id: channelId, message_id: messageId })) {
      this.state.markRead(channelId, messageId);
    }
  }

  // Channels

  async openDirect(userId) {
    const { channel } = await this.api.openDirect(userId);
    await this.ensureUsers(channel.members);
    this.state.upsertChannel(channel);
    this.loadPreviews([this.state.channels.get(channel.channel_id)]);
    this.refreshPresence(channel.channel_id);
    this.navigate(`#/chats/${channel.channel_id}`);
  }

  async startChatWith(username) {
    const user = await userNamed(this.api, username);
    await this.openDirect(user.user_id);
  }

  async createGroup(name, usernames) {
    const users = await Promise.all(usernames.map((username) => userNamed(this.api, username)));
    const ids = users.map((user) => user.user_id).filter((id) => id !== this.state.me.user_id);
    this.state.rememberUsers(users);
    const { channel } = await this.api.createGroup(name, [...new Set(ids)]);
    this.state.upsertChannel(channel);
    this.navigate(`#/chats/${channel.channel_id}`);
  }

  async reloadChannel(channelId) {
    const { channel } = await this.api.channel(channelId);
    await this.ensureUsers(channel.members);
    this.state.upsertChannel(channel);
    return channel;
  }
}
