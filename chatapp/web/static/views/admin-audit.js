// The audit log: what admins did, oldest first, a page at a time (GET /admin/audit).

import { dateTime } from "../admin-format.js";
import { h, replace } from "../dom.js";

const ACTIONS = {
  deactivate: "deactivated",
  reactivate: "reactivated",
  grant_admin: "made admin",
  revoke_admin: "revoked admin from",
  delete_message: "deleted",
  invite_create: "created invite",
  invite_revoke: "revoked invite",
};

export class AuditPanel {
  constructor(admin, { failed }) {
    this.admin = admin;
    this.failed = failed;
    this.events = [];
    this.names = new Map();
    this.error = h("p", { class: "form-error", role: "alert" });
    this.rows = h("tbody");
    this.more = h(
      "button",
      { type: "button", class: "secondary small", hidden: true, onclick: () => this.loadMore() },
      "Show more events",
    );
    this.element = h(
      "section",
      { class: "card admin-card", "aria-labelledby": "audit-title" },
      h(
        "div",
        { class: "admin-card-head" },
        h("h2", { id: "audit-title" }, "Audit log"),
        h(
          "button",
          { type: "button", class: "secondary small", onclick: () => this.load() },
          "Refresh",
        ),
      ),
      this.error,
      h(
        "div",
        { class: "admin-table-wrap" },
        h(
          "table",
          { class: "admin-table", id: "audit-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["When", "Who", "What", "Reason"].map((name) => h("th", { scope: "col" }, name)),
            ),
          ),
          this.rows,
        ),
      ),
      this.more,
    );
  }

  /** From the first event again, keeping as many pages as were shown. */
  async load() {
    const shown = Math.max(this.events.length, 1);
    this.events = [];
    do {
      if (!(await this.fetchPage())) return;
    } while (this.hasMore && this.events.length < shown);
    await this.render();
  }

  async loadMore() {
    if (await this.fetchPage()) await this.render();
  }

  async fetchPage() {
    this.error.textContent = "";
    const after = this.events.length ? this.events.at(-1).event_id : 0;
    try {
      const answer = await this.admin.audit(after);
      this.events.push(...answer.events);
      this.hasMore = answer.has_more;
      return true;
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return false;
    }
  }

  async render() {
    await this.learnNames();
    this.more.hidden = !this.hasMore;
    if (!this.events.length) {
      replace(this.rows, h("tr", {}, h("td", { colspan: 4, class: "hint" }, "Nothing yet.")));
      return;
    }
    replace(
      this.rows,
      this.events.map((event) =>
        h(
          "tr",
          { dataset: { action: event.action } },
          h("td", {}, dateTime(event.at)),
          h("td", {}, event.actor_id === null ? "the command line" : this.name(event.actor_id)),
          h("td", {}, `${ACTIONS[event.action] ?? event.action} ${this.target(event.target)}`),
          h("td", {}, event.reason ?? ""),
        ),
      ),
    );
  }

  target(target) {
    if (target.kind === "user") return this.name(target.id);
    if (target.kind === "message") return `message ${target.id} in channel ${target.channel_id}`;
    return String(target.id);
  }

  name(userId) {
    const username = this.names.get(userId);
    return username ? `@${username}` : `user ${userId}`;
  }

  async learnNames() {
    const wanted = new Set();
    for (const event of this.events) {
      if (event.actor_id !== null) wanted.add(event.actor_id);
      if (event.target.kind === "user") wanted.add(event.target.id);
    }
    const unknown = [...wanted].filter((id) => !this.names.has(id));
    await Promise.all(
      unknown.map(async (id) => {
        try {
          this.names.set(id, (await this.admin.user(id)).user.username);
        } catch {
          // Shown by id: the audit stays readable if a lookup fails.
        }
      }),
    );
  }
}
