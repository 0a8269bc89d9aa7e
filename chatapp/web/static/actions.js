// What the members dialog and the friends page ask the client to do.

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

/** Friend requests: send, accept, decline or withdraw, remove; and message a friend. */
export function friendActions(client) {
  return {
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
