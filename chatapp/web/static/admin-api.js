// The admin API (/api/v1/admin/...) over the web client's Api, which keeps the token.

export class AdminApi {
  constructor(api) {
    this.api = api;
  }

  me() {
    return this.api.me();
  }
  user(userId) {
    return this.api.user(userId);
  }
  server() {
    return this.api.request("GET", "/admin/server");
  }
  users({ query = "", after } = {}) {
    const params = new URLSearchParams({ query, limit: "50" });
    if (after) params.set("after", after);
    return this.api.request("GET", `/admin/users?${params}`);
  }
  deactivate(userId, reason) {
    return this.api.request("POST", `/admin/users/${userId}/deactivate`, reason ? { reason } : {});
  }
  reactivate(userId) {
    return this.api.request("POST", `/admin/users/${userId}/reactivate`, {});
  }
  setRole(userId, role) {
    return this.api.request("PUT", `/admin/users/${userId}/role`, { role });
  }
  invites() {
    return this.api.request("GET", "/admin/invites");
  }
  createInvite(uses, expiresInS) {
    const body = { uses };
    if (expiresInS) body.expires_in_s = expiresInS;
    return this.api.request("POST", "/admin/invites", body);
  }
  revokeInvite(code) {
    return this.api.request("DELETE", `/admin/invites/${encodeURIComponent(code)}`);
  }
  audit(after = 0) {
    return this.api.request("GET", `/admin/audit?after=${after}&limit=50`);
  }
}

/** Where a person signs up with `code`: the web client reads it from the query. */
export function inviteLink(code, origin = window.location.origin) {
  return `${origin}/?invite=${encodeURIComponent(code)}`;
}
