// Accounts: search by username, deactivate (with a reason), reactivate, grant and revoke
// the admin role. Every change reloads the list from the server.

import { dateTime } from "../admin-format.js";
import { h, replace } from "../dom.js";
import { confirmDialog } from "./dialogs.js";

export class UsersPanel {
  constructor(admin, me, { failed, changed }) {
    this.admin = admin;
    this.me = me;
    this.failed = failed;
    this.changed = changed;
    this.users = [];
    this.hasMore = false;
    this.search = h("input", {
      id: "user-search",
      type: "search",
      autocomplete: "off",
      autocapitalize: "none",
      spellcheck: "false",
      maxlength: 100,
      placeholder: "Username starts with…",
    });
    this.search.addEventListener("input", () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.load(), 250);
    });
    const form = h(
      "form",
      { class: "inline-form", role: "search" },
      h("label", { for: "user-search", class: "visually-hidden" }, "Search users"),
      this.search,
      h("button", { type: "submit", class: "secondary" }, "Search"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.debounce);
      this.load();
    });
    this.error = h("p", { class: "form-error", role: "alert" });
    this.status = h("p", { class: "form-note", role: "status" });
    this.rows = h("tbody");
    this.more = h(
      "button",
      { type: "button", class: "secondary small", hidden: true, onclick: () => this.loadMore() },
      "Show more users",
    );
    this.element = h(
      "section",
      { class: "card admin-card", "aria-labelledby": "users-title" },
      h("div", { class: "admin-card-head" }, h("h2", { id: "users-title" }, "Users")),
      form,
      this.error,
      this.status,
      h(
        "div",
        { class: "admin-table-wrap" },
        h(
          "table",
          { class: "admin-table", id: "users-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["User", "Role", "Status", "Last seen", "Actions"].map((name) =>
                h("th", { scope: "col" }, name),
              ),
            ),
          ),
          this.rows,
        ),
      ),
      this.more,
    );
  }

  async load() {
    await this.fetch({ append: false });
  }

  async loadMore() {
    await this.fetch({ append: true });
  }

  async fetch({ append }) {
    this.error.textContent = "";
    const after = append && this.users.length ? this.users.at(-1).user_id : undefined;
    let answer;
    try {
      answer = await this.admin.users({ query: this.search.value.trim(), after });
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return;
    }
    this.users = append ? [...this.users, ...answer.users] : answer.users;
    this.hasMore = answer.has_more;
    this.render();
  }

  render() {
    this.more.hidden = !this.hasMore;
    if (!this.users.length) {
      replace(this.rows, h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No such user.")));
      return;
    }
    replace(
      this.rows,
      this.users.map((user) => this.row(user)),
    );
  }

  row(user) {
    const self = user.user_id === this.me.user_id;
    const name = user.username;
    const actions = h("div", { class: "admin-actions" });
    if (user.deleted) {
      // The owner deleted the account: nothing brings it back (the API answers 409).
      actions.append(h("small", { class: "hint" }, "Deleted by its owner"));
    } else if (user.deactivated) {
      actions.append(
        button(`Reactivate`, `Reactivate ${name}`, () =>
          this.act(() => this.admin.reactivate(user.user_id), `${name} can log in again.`),
        ),
      );
    } else {
      const deactivate = button("Deactivate…", `Deactivate ${name}`, () =>
        this.askDeactivate(user),
      );
      if (self) disable(deactivate, "You cannot deactivate your own account.");
      actions.append(deactivate);
    }
    if (user.deleted) {
      // No role to change on an account that is gone.
    } else if (user.role === "admin") {
      const revoke = button("Revoke admin", `Revoke admin from ${name}`, () =>
        confirmDialog({
          title: `Revoke admin from ${name}?`,
          text: `${name} will no longer be able to use this page or the admin API.`,
          confirmLabel: "Revoke admin",
          confirm: () =>
            this.act(
              () => this.admin.setRole(user.user_id, "member"),
              `${name} is a member now.`,
            ),
        }),
      );
      if (self) disable(revoke, "You cannot revoke your own admin role.");
      actions.append(revoke);
    } else {
      actions.append(
        button("Make admin", `Make ${name} an admin`, () =>
          confirmDialog({
            title: `Make ${name} an admin?`,
            text:
              `${name} will be able to deactivate accounts, make invites` +
              " and read the audit log.",
            confirmLabel: "Make admin",
            confirm: () =>
              this.act(
                () => this.admin.setRole(user.user_id, "admin"),
                `${name} is an admin now.`,
              ),
          }),
        ),
      );
    }
    const status = user.deleted
      ? h(
          "span",
          {},
          h("span", { class: "tag admin-tag-off" }, "Deleted"),
          ` ${dateTime(user.deleted_at)}`,
        )
      : user.deactivated
      ? h(
          "span",
          {},
          h("span", { class: "tag admin-tag-off" }, "Deactivated"),
          ` ${dateTime(user.deactivated_at)}`,
          user.deactivation_reason
            ? h("small", { class: "hint" }, ` — ${user.deactivation_reason}`)
            : null,
        )
      : h("span", { class: "tag admin-tag-on" }, "Active");
    return h(
      "tr",
      { dataset: { username: name, userId: user.user_id } },
      h(
        "td",
        {},
        h("span", { class: "admin-user-name" }, user.display_name || name),
        h("small", { class: "hint" }, ` @${name}`),
        self ? h("small", { class: "hint" }, " (you)") : null,
      ),
      h("td", { class: "admin-role" }, user.role === "admin" ? "Admin" : "Member"),
      h("td", { class: "admin-status" }, status),
      h("td", {}, user.last_seen_at ? dateTime(user.last_seen_at) : "never"),
      h("td", {}, actions),
    );
  }

  askDeactivate(user) {
    const reason = h("input", { id: "deactivate-reason", maxlength: 500, autocomplete: "off" });
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const accept = h("button", { type: "submit", class: "danger" }, "Deactivate");
    const form = h(
      "form",
      { class: "dialog-body" },
      h(
        "p",
        {},
        `${user.username} is logged out on every device at once and cannot log in until` +
          " reactivated. Their messages stay.",
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "deactivate-reason" }, "Reason (optional, kept in the audit log)"),
        reason,
      ),
      h("div", { class: "dialog-actions" }, cancel, accept),
    );
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "deactivate-title" },
      h(
        "div",
        { class: "dialog-head" },
        h("h2", { id: "deactivate-title" }, `Deactivate ${user.username}?`),
      ),
      form,
    );
    dialog.addEventListener("close", () => dialog.remove());
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      dialog.close();
      this.act(
        () => this.admin.deactivate(user.user_id, reason.value.trim()),
        `${user.username} is deactivated and logged out everywhere.`,
      );
    });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  }

  async act(call, done) {
    this.error.textContent = "";
    this.status.textContent = "";
    try {
      await call();
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return;
    }
    this.status.textContent = done;
    await this.load();
    this.changed();
  }
}

function button(text, label, onclick) {
  return h(
    "button",
    { type: "button", class: "secondary small", "aria-label": label, onclick },
    text,
  );
}

function disable(control, why) {
  control.disabled = true;
  control.title = why;
}
