// What the settings screen, the profile popup and a chat's menu ask the
// server: one's profile and settings, blocks, a channel's notification
// level and signed-in devices. Each keeps the client's state in step with
// the answer, so every view shows the change at once.

import { updateSessionUser } from "./session.js";

export const LEVELS = [
  ["all", "All messages"],
  ["mentions", "Mentions only"],
  ["none", "Nothing (muted)"],
];

export function accountActions(client) {
  const { api, state } = client;
  const keepMe = (user) => {
    state.me = user;
    state.rememberUsers([user]);
    updateSessionUser(user);
    return user;
  };
  return {
    /** Only the fields given change: {display_name, about, group_adds}. */
    updateProfile: async (fields) => keepMe((await api.updateMe(fields)).user),
    setShareReceipts: (share) => client.setShareReceipts(share),
    loadBlocks: async () => {
      const { users } = await api.blocks();
      state.setBlocked(users);
      return users;
    },
    block: async (userId) => {
      await api.block(userId);
      state.blocked.add(userId);
      state.changed("blocks");
      // Blocking ends a friendship: the friends list shows it at once.
      await client.refreshFriends();
    },
    unblock: async (userId) => {
      await api.unblock(userId);
      state.blocked.delete(userId);
      state.changed("blocks");
    },
    setNotificationLevel: async (channelId, level) => {
      await api.setNotificationLevel(channelId, level);
      const channel = state.channels.get(channelId);
      if (channel) state.upsertChannel({ ...channel, notification_level: level });
    },
    devices: async () => (await api.devices()).devices,
    revokeDevice: (deviceId) => api.revokeDevice(deviceId),
    changePassword: (current, next) => api.changePassword(current, next),
    exportData: () => api.exportData(),
    deleteAccount: async (password, eraseMessages) => {
      // The server revokes every device before it answers: this page's socket closing
      // with 4401 meanwhile is part of the deletion, and its answer says what happened.
      client.leaving = true;
      try {
        await api.deleteAccount(password, eraseMessages);
      } finally {
        client.leaving = false;
      }
      client.signedOut("Your account was deleted.");
    },
    user: async (userId) => {
      await client.ensureUsers([userId]);
      return state.users.get(userId) ?? null;
    },
    message: (userId) => client.openDirect(userId),
    tell: (text) => client.toast(text),
  };
}
