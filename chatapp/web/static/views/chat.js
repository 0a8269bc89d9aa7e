// One conversation: history paged in as the person scrolls up, live
// messages, pending sends, the typing line, read markers and the composer;
// edits, deletions, reactions and replies, and who has read one's messages.

import { avatar, h, presenceDot, reconcile, replace } from "../dom.js";
import { formatLastSeen, sameDay } from "../format.js";
import { ChannelMenu, levelMark } from "./channel-menu.js";
import { Composer } from "./composer.js";
import { MessageControls } from "./message-controls.js";
import { messageModels } from "./message-models.js";
import { MessageNodes } from "./message-nodes.js";
import { Popups } from "./popup.js";

const LOAD_OLDER_WITHIN_PX = 200;
const AT_BOTTOM_WITHIN_PX = 48;
const RUN_GAP_MS = 5 * 60_000;

/**
 * `actions` are the app's: send(channelId, text, replyTo), retry(clientMsgId),
 * discard(clientMsgId), typing(channelId), read(channelId, messageId),
 * loadLatest(channelId), loadOlder(channelId), pendingFor(channelId),
 * refreshPresence(channelId), openMembers(channelId), openProfile(userId),
 * setLevel(channelId, level), tell(text), and `messages`, the channel's
 * message actions (see messageActions in actions.js).
 */
export class ChatView {
  constructor(state, actions, channelId) {
    this.state = state;
    this.actions = actions;
    this.channelId = channelId;
    this.visible = new Set(); // message ids on screen
    this.readTimer = null;
    const channel = state.channels.get(channelId);
    // Where "new messages" starts, as it was when the chat was opened.
    this.unreadFrom = channel && channel.unread_count > 0 ? channel.read_message_id : null;
    this.scrolledOnce = false;

    this.build();
    this.onChange = (event) => this.changed(event.detail);
    this.onVisibility = () => this.scheduleRead();
    this.typingTimer = setInterval(() => this.renderTyping(), 1000);
    this.presenceTimer = setInterval(() => actions.refreshPresence(channelId), 30_000);
    state.addEventListener("change", this.onChange);
    document.addEventListener("visibilitychange", this.onVisibility);
    this.observer = new IntersectionObserver((entries) => this.seen(entries), {
      root: this.scroller,
      threshold: 0,
    });
    this.items = new MessageNodes(
      state,
      this.observer,
      this.controls.nodeActions({
        retry: (clientMsgId) => actions.retry(clientMsgId),
        discard: (clientMsgId) => actions.discard(clientMsgId),
        openProfile: (userId, button) => actions.openProfile(userId, button),
      }),
    );
  }

  destroy() {
    this.state.removeEventListener("change", this.onChange);
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearInterval(this.typingTimer);
    clearInterval(this.presenceTimer);
    clearTimeout(this.readTimer);
    clearTimeout(this.flashTimer);
    cancelAnimationFrame(this.frame);
    this.observer.disconnect();
    this.popups.destroy();
  }

  async start() {
    this.renderHeader();
    this.renderMessages();
    this.renderTyping();
    this.actions.refreshPresence(this.channelId);
    this.actions.messages.loadReceipts();
    const history = this.state.history(this.channelId);
    if (!history.loaded) {
      try {
        await this.actions.loadLatest(this.channelId);
      } catch (error) {
        this.status.textContent = `Could not load messages: ${error.message}`;
        return;
      }
    }
    this.renderMessages();
    this.fillScreen();
  }

  focusComposer() {
    this.composer.focus();
  }

  // Building

  build() {
    const channelId = this.channelId;
    this.title = h("h2", { class: "chat-title", id: `chat-title-${channelId}` });
    this.subtitle = h("p", { class: "chat-subtitle" });
    this.headAvatar = h("span", { class: "avatar-wrap" });
    this.levelMark = h("span", { class: "chat-level" });
    this.blockedNote = h("p", { class: "blocked-note", role: "status", hidden: true });
    this.membersButton = h(
      "button",
      {
        type: "button",
        class: "secondary small",
        onclick: () => this.actions.openMembers(channelId),
      },
      "Members",
    );
    const header = h(
      "header",
      { class: "chat-header" },
      h("a", { href: "#/chats", class: "back", "aria-label": "Back to chats" }, "‹"),
      this.headAvatar,
      h(
        "div",
        { class: "chat-heading" },
        h("div", { class: "chat-title-row" }, this.title, this.levelMark),
        this.subtitle,
      ),
      this.membersButton,
    );

    this.status = h("p", { class: "history-status" });
    this.list = h("ol", { class: "message-list" });
    this.scroller = h(
      "div",
      {
        class: "messages",
        role: "log",
        "aria-live": "polite",
        "aria-relevant": "additions",
        "aria-label": "Messages",
        tabindex: "0",
      },
      this.status,
      this.list,
    );
    this.scroller.addEventListener("scroll", () => this.scrolled(), { passive: true });
    this.wrap = h("div", { class: "messages-wrap" }, this.scroller);
    this.popups = new Popups(this.wrap);
    this.channelMenu = new ChannelMenu(this.state, channelId, this.popups, {
      setLevel: (level) => this.actions.setLevel(channelId, level),
      openProfile: () => {
        const channel = this.state.channels.get(channelId);
        if (!channel) return;
        this.actions.openProfile(this.state.otherMember(channel), this.channelMenu.button);
      },
      tell: (text) => this.actions.tell(text),
    });
    header.append(this.channelMenu.button);
    this.jump = h(
      "button",
      { type: "button", class: "jump", hidden: true, onclick: () => this.scrollToBottom(true) },
      "New messages ↓",
    );
    this.typingLine = h("p", { class: "typing", "aria-live": "polite" });

    this.composer = new Composer(channelId, {
      onSend: (text, replyTo) => {
        this.unreadFrom = null;
        this.actions.send(channelId, text, replyTo);
        this.scrollToBottom(false);
      },
      onEdit: (messageId, text) => this.controls.saveEdit(messageId, text),
      onEditLast: () => this.controls.editLast(),
      onTyping: () => this.actions.typing(channelId),
      members: () => this.controls.mentionable(),
    });
    this.controls = new MessageControls(this.state, channelId, {
      messages: this.actions.messages,
      composer: this.composer,
      popups: this.popups,
      jumpTo: (messageId) => this.jumpTo(messageId),
    });

    this.element = h(
      "section",
      { class: "chat", "aria-labelledby": this.title.id, dataset: { channelId } },
      header,
      this.blockedNote,
      this.wrap,
      this.typingLine,
      this.composer.element,
    );
    this.wrap.append(this.jump);
  }

  // State changes

  changed({ what, channelId }) {
    if (channelId !== undefined && channelId !== this.channelId && what !== "presence") return;
    if (what === "messages" || what === "outbox" || what === "receipts") this.scheduleMessages();
    else if (what === "typing") this.renderTyping();
    else if (["channels", "users", "presence", "blocks"].includes(what)) {
      this.renderHeader();
      if (what === "users") this.scheduleMessages();
    }
  }

  /** One render per frame, however many messages a replay delivers in it. */
  scheduleMessages() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.renderMessages();
    });
  }

  renderHeader() {
    const state = this.state;
    const channel = state.channels.get(this.channelId);
    if (!channel) return;
    const title = state.channelTitle(channel);
    this.title.textContent = title;
    const direct = channel.kind === "direct";
    const other = direct ? state.otherMember(channel) : null;
    replace(
      this.headAvatar,
      avatar(title, direct ? "" : "group"),
      direct && other !== state.me.user_id ? presenceDot(state.statusOf(other)) : null,
    );
    if (direct) {
      this.subtitle.textContent =
        other === state.me.user_id ? "Notes to self" : formatLastSeen(state.presence.get(other));
    } else {
      const online = channel.members.filter((id) => state.statusOf(id) === "online").length;
      this.subtitle.textContent = `${channel.members.length} members, ${online} online`;
    }
    this.membersButton.hidden = direct;
    replace(this.levelMark, levelMark(channel.notification_level));
    const blocked = direct && state.blocked.has(other);
    this.blockedNote.hidden = !blocked;
    this.blockedNote.textContent = blocked
      ? `You blocked ${title}. Neither of you can send messages here until you unblock them.`
      : "";
    this.composer.setRecipient(title);
  }

  renderTyping() {
    const names = this.state.typers(this.channelId).map((id) => this.state.nameOf(id));
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
  }

  renderMessages() {
    const history = this.state.history(this.channelId);
    const before = {
      atBottom: this.atBottom(),
      height: this.scroller.scrollHeight,
      top: this.scroller.scrollTop,
      oldest: this.renderedOldest,
      count: this.list.childElementCount,
    };
    const models = messageModels(
      this.state,
      this.channelId,
      this.actions.pendingFor(this.channelId),
      (messageId) => this.actions.messages.quote(messageId),
    );
    const group = this.state.channels.get(this.channelId)?.kind === "group";
    const nodes = [];
    let previous = null;
    let dividerPlaced = false;
    for (const model of models) {
      if (!previous || !sameDay(previous.createdAt, model.createdAt)) {
        nodes.push(this.items.day(model.createdAt));
      }
      const unreadStart =
        !dividerPlaced &&
        this.unreadFrom !== null &&
        model.messageId !== null &&
        model.messageId > this.unreadFrom &&
        !model.mine;
      if (unreadStart) {
        nodes.push(this.items.unreadDivider());
        dividerPlaced = true;
      }
      const continued =
        previous !== null &&
        !unreadStart &&
        previous.senderId === model.senderId &&
        sameDay(previous.createdAt, model.createdAt) &&
        model.createdAt - previous.createdAt < RUN_GAP_MS;
      nodes.push(this.items.message(model, { continued, showSender: group && !model.mine }));
      previous = model;
    }
    reconcile(this.list, nodes);
    this.items.forget(new Set(nodes));
    this.popups.place();
    const editing = this.composer.context;
    if (editing?.kind === "edit" && history.get(editing.messageId)?.deleted) {
      this.composer.forget(editing.messageId);
    }

    this.renderedOldest = history.oldestId;
    // Pages of history are not news: keep screen readers from reading them out.
    this.scroller.setAttribute("aria-busy", String(!history.loaded || history.loading));
    if (!history.loaded) this.status.textContent = "Loading messages…";
    else if (history.loading) this.status.textContent = "Loading earlier messages…";
    else if (!history.hasMoreBefore)
      this.status.textContent = models.length
        ? "This is the beginning of the conversation."
        : "No messages yet. Say hello!";
    else this.status.textContent = "";

    this.keepScroll(before, history);
  }

  keepScroll(before, history) {
    if (!history.loaded) return;
    if (!this.scrolledOnce) {
      this.scrolledOnce = true;
      const divider = this.list.querySelector(".unread-divider");
      if (divider) divider.scrollIntoView({ block: "start" });
      else this.scrollToBottom(false);
      // Already at the top, no scroll event would ever ask for more.
      if (this.scroller.scrollTop < LOAD_OLDER_WITHIN_PX) this.loadOlder();
      return;
    }
    const grewAtTop = before.oldest !== undefined && history.oldestId < before.oldest;
    if (grewAtTop) {
      // Older messages went in above: keep what the person was reading in place.
      this.scroller.scrollTop = before.top + (this.scroller.scrollHeight - before.height);
    } else if (before.atBottom) {
      this.scrollToBottom(false);
    } else if (this.list.childElementCount > before.count) {
      this.jump.hidden = false;
    }
  }

  /** Show the message a reply quotes, paging history back to it when it is not loaded. */
  async jumpTo(messageId) {
    if (!messageId) return;
    const history = this.state.history(this.channelId);
    if (!history.byId.has(messageId)) {
      let found = false;
      try {
        found = await this.actions.messages.reach(messageId);
      } catch (error) {
        this.actions.messages.tell(`Could not load earlier messages: ${error.message}`);
        return;
      }
      if (!found) {
        this.actions.messages.tell("The original message is not available.");
        return;
      }
    }
    cancelAnimationFrame(this.frame);
    this.frame = null;
    this.renderMessages();
    const node = this.items.nodeOf(messageId);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.setAttribute("tabindex", "-1");
    node.focus({ preventScroll: true });
    node.classList.remove("flash");
    // Restarted on a second jump to the same message.
    void node.offsetWidth;
    node.classList.add("flash");
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => node.classList.remove("flash"), 2000);
  }

  // Scrolling and reading

  atBottom() {
    const scroller = this.scroller;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < AT_BOTTOM_WITHIN_PX;
  }

  scrollToBottom(smooth) {
    this.scroller.scrollTo({
      top: this.scroller.scrollHeight,
      behavior: smooth ? "smooth" : "instant",
    });
    this.jump.hidden = true;
  }

  scrolled() {
    this.popups.place();
    if (this.atBottom()) this.jump.hidden = true;
    if (this.scroller.scrollTop < LOAD_OLDER_WITHIN_PX) this.loadOlder();
  }

  async loadOlder() {
    const history = this.state.history(this.channelId);
    if (!history.loaded || history.loading || !history.hasMoreBefore) return;
    try {
      await this.actions.loadOlder(this.channelId);
    } catch (error) {
      this.status.textContent = `Could not load earlier messages: ${error.message}`;
      return;
    }
    this.fillScreen();
  }

  /** Until the list overflows there is nothing to scroll, so page in more at once. */
  fillScreen() {
    const history = this.state.history(this.channelId);
    if (history.hasMoreBefore && this.scroller.scrollHeight <= this.scroller.clientHeight + 10) {
      this.loadOlder();
    }
  }

  seen(entries) {
    for (const entry of entries) {
      const id = Number(entry.target.dataset.messageId);
      if (entry.isIntersecting) this.visible.add(id);
      else this.visible.delete(id);
    }
    this.scheduleRead();
  }

  scheduleRead() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.flushRead(), 300);
  }

  /** Move the read marker to the newest message on screen, if the tab is seen. */
  flushRead() {
    if (document.visibilityState !== "visible" || !this.visible.size) return;
    const newest = Math.max(...this.visible);
    const channel = this.state.channels.get(this.channelId);
    if (channel && newest > channel.read_message_id) this.actions.read(this.channelId, newest);
  }
}
