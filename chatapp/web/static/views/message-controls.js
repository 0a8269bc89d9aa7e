// What a chat's message buttons do: who may edit or delete what, the menus
// they open, replying and editing through the composer, the confirmation
// before a deletion, and who may be mentioned.

import { confirmDialog } from "./dialogs.js";
import { MessageMenus } from "./message-menu.js";
import { lastOwnMessage } from "./message-models.js";
import { DELETED_TEXT } from "./message-parts.js";

export class MessageControls {
  /**
   * `messages` are the channel's message actions (actions.js messageActions);
   * `jumpTo(messageId)` shows a quoted message.
   */
  constructor(state, channelId, { messages, composer, popups, jumpTo }) {
    this.state = state;
    this.channelId = channelId;
    this.messages = messages;
    this.composer = composer;
    this.jumpTo = jumpTo;
    this.menus = new MessageMenus(popups, {
      me: state.me.user_id,
      reply: (message) => this.reply(message),
      edit: (message) => this.edit(message),
      remove: (message) => this.confirmRemove(message),
      toggleReaction: (messageId, emoji) => messages.toggleReaction(messageId, emoji),
      canEdit: (message) => this.canEdit(message),
      canDelete: (message) => this.canDelete(message),
      seenBy: (message) => this.seenBy(message),
    });
  }

  /** The handlers MessageNodes calls, by message id. */
  nodeActions({ retry, discard, openProfile }) {
    const menus = this.menus;
    return {
      retry,
      discard,
      openProfile,
      toggleReaction: (messageId, emoji) => this.messages.toggleReaction(messageId, emoji),
      openMenu: (messageId, button) => this.with(messageId, (m) => menus.openMenu(m, button)),
      openPicker: (messageId, button) => this.with(messageId, (m) => menus.openPicker(m, button)),
      showSeenBy: (messageId, button) =>
        this.with(messageId, (m) => menus.showSeenBy(this.seenBy(m) ?? [], button)),
      jumpTo: (messageId) => this.jumpTo(messageId),
    };
  }

  with(messageId, use) {
    const message = this.state.history(this.channelId).get(messageId);
    if (message) use(message);
  }

  canEdit(message) {
    return message.sender_id === this.state.me.user_id && !message.deleted;
  }

  /** One's own messages; in a group its owner deletes any, and so does a server admin. */
  canDelete(message) {
    if (message.deleted) return false;
    const me = this.state.me;
    const channel = this.state.channels.get(this.channelId);
    return (
      message.sender_id === me.user_id ||
      me.role === "admin" ||
      (channel?.kind === "group" && channel.owner_id === me.user_id)
    );
  }

  /** Who has seen one's own message in a group, by name; null where that is not shown. */
  seenBy(message) {
    const channel = this.state.channels.get(this.channelId);
    if (channel?.kind !== "group" || message.sender_id !== this.state.me.user_id) return null;
    if (!this.state.receipts.has(this.channelId)) return null;
    return this.state
      .readBy(this.channelId, message.message_id)
      .map((userId) => this.state.nameOf(userId));
  }

  /** The members one can mention: everyone in the channel but oneself. */
  mentionable() {
    const channel = this.state.channels.get(this.channelId);
    if (!channel) return [];
    return channel.members
      .filter((userId) => userId !== this.state.me.user_id && this.state.users.has(userId))
      .map((userId) => {
        const user = this.state.users.get(userId);
        return { userId, username: user.username, name: user.display_name || user.username };
      });
  }

  reply(message) {
    const text = message.deleted ? DELETED_TEXT : message.text;
    this.composer.startReply(message.message_id, this.state.nameOf(message.sender_id), text);
  }

  edit(message) {
    this.composer.startEdit(message.message_id, message.text);
  }

  /** Up in an empty composer: edit one's newest message that is not deleted. */
  editLast() {
    const last = lastOwnMessage(this.state, this.channelId);
    if (last) this.edit(last);
  }

  /** Save an edit, unless the text is what the message says already. */
  saveEdit(messageId, text) {
    const message = this.state.history(this.channelId).get(messageId);
    if (message && message.text !== text) this.messages.edit(messageId, text);
  }

  confirmRemove(message) {
    const mine = message.sender_id === this.state.me.user_id;
    const author = this.state.nameOf(message.sender_id);
    confirmDialog({
      title: "Delete message?",
      text: mine
        ? "It will be deleted for everyone in this chat."
        : `This message by ${author} will be deleted for everyone in this chat.`,
      confirmLabel: "Delete",
      confirm: () => this.messages.remove(message.message_id),
      onClose: () => this.composer.focus(),
    });
  }
}
