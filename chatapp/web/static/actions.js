// What the members dialog, the friends page and a chat's messages ask the
// client to do.

import { userNamed } from "./api.js";

/** A group's owner renames, adds and removes; any member leaves. */
export function groupActions(client, channelId) {
  return {
    rename: async (name) => {
      const { channel } = await client.api.rename(channelId, name.trim());
      client.state.upsertChannel(channel);
      return "Renamed.";
    },
    add: async (username) => {
      const user = await userNamed(client.api, username);
      client.state.rememberUsers([user]);
      const { channel } = await client.api.addMember(channelId, user.user_id);
      client.state.upsertChannel(channel);
      client.refreshPresence(channelId);
      return `${user.display_name} was added.`;
    },
    remove: async (userId) => {
      const name = client.state.nameOf(userId);
      await client.api.removeMember(channelId, userId);
      await client.reloadChannel(channelId);
      return `${name} was removed.`;
    },
    leave: async () => {
      await client.api.removeMember(channelId, client.state.me.user_id);
      client.state.removeChannel(channelId);
      client.outbox.dropChannel(channelId);
      client.navigate("#/chats");
    },
  };
}

/**
 * Friend requests: send, accept, decline or withdraw, remove; message a
 * friend; `profile(userId, button)` opens a person's profile.
 */
export function friendActions(client, profile) {
  return {
    profile,
    request: async (username) => {
      const user = await userNamed(client.api, username);
      if (user.user_id === client.state.me.user_id) throw new Error("That is you.");
      const { status } = await client.api.befriend(user.user_id);
      await client.refreshFriends();
      return status === "accepted"
        ? `You and ${user.display_name} are now friends.`
        : `Request sent to ${user.display_name}.`;
    },
    accept: async (userId) => {
      await client.api.befriend(userId);
      await client.refreshFriends();
    },
    remove: async (userId) => {
      await client.api.unfriend(userId);
      await client.refreshFriends();
    },
    message: (userId) => client.openDirect(userId),
    refresh: () => client.refreshFriends(),
  };
}

/**
 * A chat's messages: edit, delete, react, and reach a quoted message. Each
 * change comes back as an `update` frame to every device, this one too; an
 * edit's and a deletion's answers are shown at once, unless a newer update
 * came first. Failures are told in a toast.
 */
export function messageActions(client, channelId) {
  const { api, state } = client;
  const find = (messageId) => state.history(channelId).get(messageId);
  const tell = (what) => (error) => client.toast(`${what}: ${error.message}`);
  return {
    edit: async (messageId, text) => {
      const before = find(messageId)?.edited_at ?? null;
      try {
        const { message } = await api.editMessage(channelId, messageId, text);
        await client.ensureUsers(message.mentions ?? []);
        if ((find(messageId)?.edited_at ?? null) !== before) return;
        state.applyUpdate({
          kind: "edited",
          channel_id: channelId,
          message_id: messageId,
          text: message.text,
          edited_at: message.edited_at,
          mentions: message.mentions,
        });
      } catch (error) {
        tell("Not saved")(error);
      }
    },
    remove: async (messageId) => {
      try {
        await api.deleteMessage(channelId, messageId);
        // A deletion is final: no later update can undo it.
        state.applyUpdate({
          kind: "deleted",
          channel_id: channelId,
          message_id: messageId,
          deleted_by: state.me.user_id,
        });
      } catch (error) {
        tell("Not deleted")(error);
      }
    },
    toggleReaction: async (messageId, emoji) => {
      const reaction = find(messageId)?.reactions?.find((entry) => entry.emoji === emoji);
      const mine = Boolean(reaction?.user_ids.includes(state.me.user_id));
      try {
        if (mine) await api.unreact(channelId, messageId, emoji);
        else await api.react(channelId, messageId, emoji);
      } catch (error) {
        tell(mine ? "Reaction not removed" : "Reaction not added")(error);
      }
    },
    quote: (messageId) => client.pages.quote(channelId, messageId),
    reach: (messageId) => client.pages.reach(channelId, messageId),
    loadReceipts: () => client.loadReceipts(channelId),
    tell: (text) => client.toast(text),
  };
}
