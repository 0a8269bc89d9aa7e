// A chat's messages as its list shows them: the stored ones (with their
// edits, deletions, reactions, quotes and read marks) and then one's own
// unsent ones.

import { DELETED_TEXT } from "./message-parts.js";

/**
 * `pending` are the outbox's items for the channel; `quote(messageId)` asks
 * for a quoted message that is not loaded (it comes with a later render).
 */
export function messageModels(state, channelId, pending, quote) {
  const me = state.me.user_id;
  const history = state.history(channelId);
  const receipts = receiptView(state, channelId);
  const quoteOf = (replyTo) => quoted(history, replyTo, quote);
  const stored = history.messages.map((message) => ({
    key: message.sender_id === me ? `c:${message.client_msg_id}` : `m:${message.message_id}`,
    mine: message.sender_id === me,
    senderId: message.sender_id,
    messageId: message.message_id,
    clientMsgId: message.client_msg_id,
    text: message.text,
    createdAt: message.created_at,
    state: "sent",
    error: null,
    deleted: message.deleted,
    editedAt: message.edited_at,
    mentions: message.mentions,
    reactions: message.reactions,
    replyTo: message.reply_to ?? null,
    quote: quoteOf(message.reply_to),
    read: receipts.readTo !== null && message.message_id <= receipts.readTo,
    seenBy: message.message_id === receipts.seenOn ? receipts.seenBy : null,
  }));
  const storedKeys = new Set(stored.map((model) => model.key));
  const unsent = pending
    .filter((item) => !storedKeys.has(`c:${item.client_msg_id}`))
    .map((item) => ({
      key: `c:${item.client_msg_id}`,
      mine: true,
      senderId: me,
      messageId: null,
      clientMsgId: item.client_msg_id,
      text: item.text,
      createdAt: item.created_at,
      state: item.state === "failed" ? "failed" : "pending",
      error: item.error,
      replyTo: item.reply_to ?? null,
      quote: quoteOf(item.reply_to),
    }));
  return [...stored, ...unsent];
}

/** One's newest message in this channel that is not deleted, if any. */
export function lastOwnMessage(state, channelId) {
  const me = state.me.user_id;
  return state
    .history(channelId)
    .messages.findLast((message) => message.sender_id === me && !message.deleted);
}

/**
 * Read marks for one's own messages: in a direct chat, up to where the other
 * member has read (`readTo`); in a group, who has seen one's newest message
 * (`seenBy` on `seenOn`).
 */
function receiptView(state, channelId) {
  const channel = state.channels.get(channelId);
  const none = { readTo: null, seenOn: null, seenBy: null };
  const markers = state.receipts.get(channelId);
  if (!channel || !markers) return none;
  if (channel.kind === "direct") {
    const other = state.otherMember(channel);
    if (other === state.me.user_id) return none;
    return { ...none, readTo: markers.get(other) ?? null };
  }
  const mine = lastOwnMessage(state, channelId);
  if (!mine) return none;
  const seenBy = state.readBy(channelId, mine.message_id);
  return seenBy.length ? { ...none, seenOn: mine.message_id, seenBy } : none;
}

/** What a reply shows of the message it quotes; one not loaded is asked for. */
function quoted(history, replyTo, quote) {
  if (!replyTo) return null;
  const original = history.get(replyTo);
  if (original) {
    return {
      state: "loaded",
      senderId: original.sender_id,
      text: original.deleted ? DELETED_TEXT : original.text,
      deleted: Boolean(original.deleted),
    };
  }
  if (history.missing.has(replyTo)) return { state: "missing" };
  quote(replyTo);
  return { state: "loading" };
}
