// The HTTP half of protocol version 1: one method per endpoint the client uses.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(base = "/api/v1") {
    this.base = base;
    this.token = null;
    /** Called with no argument when the server says the token is no good. */
    this.onUnauthorized = null;
  }

  /** `timeoutMs`, when given, abandons a request that has no answer by then. */
  async request(method, path, body, { timeoutMs } = {}) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        signal: timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined,
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached. Check the connection.");
    }
    if (response.status === 204) return null;
    let document = null;
    try {
      document = await response.json();
    } catch {
      document = null;
    }
    if (!response.ok) {
      const error = document?.error ?? {};
      if (response.status === 401 && this.token && error.code === "unauthorized") {
        this.onUnauthorized?.();
      }
      throw new ApiError(
        response.status,
        error.code ?? "http_error",
        error.message ?? response.statusText,
      );
    }
    return document;
  }

  // Accounts
  signup(username, password, displayName, inviteCode) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    if (inviteCode) body.invite_code = inviteCode;
    return this.request("POST", "/auth/signup", body);
  }
  login(username, password, deviceName) {
    return this.request("POST", "/auth/login", { username, password, device_name: deviceName });
  }
  logout() {
    return this.request("POST", "/auth/logout");
  }
  me() {
    return this.request("GET", "/me");
  }
  updateMe(fields) {
    return this.request("PATCH", "/me", fields);
  }
  /** {ws_url, node_id}: the chat server this device should connect to now. */
  discovery({ timeoutMs } = {}) {
    return this.request("GET", "/discovery", undefined, { timeoutMs });
  }
  devices() {
    return this.request("GET", "/me/devices");
  }
  revokeDevice(deviceId) {
    return this.request("DELETE", `/me/devices/${deviceId}`);
  }
  /** 204; 401 invalid_credentials for a wrong current password. */
  changePassword(currentPassword, newPassword) {
    return this.request("POST", "/me/password", {
      current_password: currentPassword,
      new_password: newPassword,
    });
  }
  deleteAccount(password, eraseMessages) {
    return this.request("DELETE", "/me", { password, erase_messages: eraseMessages });
  }
  /** The caller's data as JSON lines, as a Blob (it is saved, never parsed). */
  async exportData() {
    let response;
    try {
      response = await fetch(`${this.base}/me/export`, {
        headers: { Authorization: `Bearer ${this.token}` },
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached. Check the connection.");
    }
    if (!response.ok) {
      const error = (await response.json().catch(() => null))?.error ?? {};
      throw new ApiError(response.status, error.code ?? "http_error", error.message ?? "");
    }
    return response.blob();
  }
  blocks() {
    return this.request("GET", "/me/blocks");
  }
  block(userId) {
    return this.request("PUT", `/me/blocks/${userId}`);
  }
  unblock(userId) {
    return this.request("DELETE", `/me/blocks/${userId}`);
  }
  pushConfig() {
    return this.request("GET", "/push/config");
  }
  setPushTarget(deviceId, provider, target) {
    return this.request("PUT", `/me/devices/${deviceId}/push`, { provider, target });
  }
  user(userId) {
    return this.request("GET", `/users/${userId}`);
  }
  findUsers(prefix) {
    return this.request("GET", `/users?username=${encodeURIComponent(prefix)}`);
  }

  // Channels
  channels() {
    return this.request("GET", "/channels");
  }
  channel(channelId) {
    return this.request("GET", `/channels/${channelId}`);
  }
  openDirect(userId) {
    return this.request("POST", "/channels/direct", { user_id: userId });
  }
  createGroup(name, memberIds) {
    return this.request("POST", "/channels/group", { name, member_ids: memberIds });
  }
  rename(channelId, name) {
    return this.request("PATCH", `/channels/${channelId}`, { name });
  }
  addMember(channelId, userId) {
    return this.request("POST", `/channels/${channelId}/members`, { user_id: userId });
  }
  removeMember(channelId, userId) {
    return this.request("DELETE", `/channels/${channelId}/members/${userId}`);
  }
  setNotificationLevel(channelId, level) {
    return this.request("PUT", `/channels/${channelId}/notifications`, { level });
  }
  channelPresence(channelId) {
    return this.request("GET", `/channels/${channelId}/presence`);
  }

  // Messages
  messages(channelId, { before, after, limit } = {}) {
    const query = new URLSearchParams();
    if (before !== undefined) query.set("before", before);
    if (after !== undefined) query.set("after", after);
    if (limit !== undefined) query.set("limit", limit);
    const suffix = query.size ? `?${query}` : "";
    return this.request("GET", `/channels/${channelId}/messages${suffix}`);
  }
  editMessage(channelId, messageId, text) {
    return this.request("PATCH", `/channels/${channelId}/messages/${messageId}`, { text });
  }
  deleteMessage(channelId, messageId) {
    return this.request("DELETE", `/channels/${channelId}/messages/${messageId}`);
  }
  react(channelId, messageId, emoji) {
    return this.request("PUT", reactionPath(channelId, messageId, emoji));
  }
  unreact(channelId, messageId, emoji) {
    return this.request("DELETE", reactionPath(channelId, messageId, emoji));
  }
  receipts(channelId) {
    return this.request("GET", `/channels/${channelId}/receipts`);
  }

  /** `before` is the previous page's `next_before`. */
  search(q, { before, channelId, limit } = {}) {
    const query = new URLSearchParams({ q });
    if (before) query.set("before", before);
    if (channelId !== undefined) query.set("channel_id", channelId);
    if (limit !== undefined) query.set("limit", limit);
    return this.request("GET", `/search?${query}`);
  }

  // Friends
  friends() {
    return this.request("GET", "/friends");
  }
  friendRequests() {
    return this.request("GET", "/friends/requests");
  }
  befriend(userId) {
    return this.request("POST", "/friends", { user_id: userId });
  }
  unfriend(userId) {
    return this.request("DELETE", `/friends/${userId}`);
  }
}

function reactionPath(channelId, messageId, emoji) {
  return `/channels/${channelId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`;
}

/** The user with exactly this username (case-insensitive), or an ApiError. */
export async function userNamed(api, username) {
  const name = username.trim().toLowerCase().replace(/^@/, "");
  if (!name) throw new ApiError(400, "bad_request", "Enter a username.");
  const { users } = await api.findUsers(name);
  const user = users.find((candidate) => candidate.username === name);
  if (!user) throw new ApiError(404, "not_found", `There is no user called ${name}.`);
  return user;
}
