// Invites: make one (how many signups, how long it works), copy its link, list, revoke.

import { inviteLink } from "../admin-api.js";
import { dateTime } from "../admin-format.js";
import { h, replace } from "../dom.js";
import { confirmDialog } from "./dialogs.js";

const EXPIRIES = [
  ["", "Never"],
  [String(3600), "In 1 hour"],
  [String(86400), "In 1 day"],
  [String(7 * 86400), "In 7 days"],
  [String(30 * 86400), "In 30 days"],
];

export class InvitesPanel {
  constructor(admin, { failed, changed }) {
    this.admin = admin;
    this.failed = failed;
    this.changed = changed;
    this.uses = h("input", {
      id: "invite-uses",
      type: "number",
      min: 1,
      max: 10000,
      step: 1,
      value: 1,
      required: true,
    });
    this.expires = h(
      "select",
      { id: "invite-expires" },
      EXPIRIES.map(([value, label]) => h("option", { value }, label)),
    );
    const form = h(
      "form",
      { class: "inline-form admin-invite-form" },
      h(
        "div",
        { class: "field" },
        h("label", { for: "invite-uses" }, "Signups it allows"),
        this.uses,
      ),
      h("div", { class: "field" }, h("label", { for: "invite-expires" }, "Expires"), this.expires),
      h("button", { type: "submit", class: "primary" }, "Create invite"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.error = h("p", { class: "form-error", role: "alert" });
    this.status = h("p", { class: "form-note", role: "status" });
    this.created = h("div", { class: "admin-new-invite", hidden: true });
    this.rows = h("tbody");
    this.element = h(
      "section",
      { class: "card admin-card", "aria-labelledby": "invites-title" },
      h("div", { class: "admin-card-head" }, h("h2", { id: "invites-title" }, "Invites")),
      form,
      this.error,
      this.created,
      this.status,
      h(
        "div",
        { class: "admin-table-wrap" },
        h(
          "table",
          { class: "admin-table", id: "invites-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Code", "Uses left", "Expires", "Created", "Actions"].map((name) =>
                h("th", { scope: "col" }, name),
              ),
            ),
          ),
          this.rows,
        ),
      ),
    );
  }

  async create() {
    this.error.textContent = "";
    const uses = Number(this.uses.value);
    if (!Number.isInteger(uses) || uses < 1 || uses > 10000) {
      this.error.textContent = "An invite allows 1 to 10,000 signups.";
      return;
    }
    let invite;
    try {
      invite = await this.admin.createInvite(uses, Number(this.expires.value) || null);
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return;
    }
    const link = inviteLink(invite.code);
    const field = h("input", {
      id: "new-invite-link",
      readonly: true,
      value: link,
      onfocus: (event) => event.target.select(),
    });
    replace(
      this.created,
      h("label", { for: "new-invite-link" }, "New invite link"),
      h(
        "div",
        { class: "inline-form" },
        field,
        h(
          "button",
          { type: "button", class: "primary", onclick: () => this.copy(link, field) },
          "Copy link",
        ),
      ),
      h("small", { class: "hint" }, "Send it to the person you invite; it opens the signup form."),
    );
    this.created.hidden = false;
    this.createdCode = invite.code;
    this.status.textContent = "Invite created.";
    await this.load();
    this.changed();
  }

  async copy(link, field = null) {
    try {
      await navigator.clipboard.writeText(link);
      this.status.textContent = "Link copied.";
    } catch {
      // No clipboard (an http:// page that is not localhost): leave it selected to copy by hand.
      field?.select();
      this.status.textContent = "Copy the selected link with Ctrl+C (⌘C).";
    }
  }

  async load() {
    let answer;
    try {
      answer = await this.admin.invites();
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return;
    }
    if (!answer.invites.length) {
      replace(this.rows, h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No invites.")));
      return;
    }
    replace(
      this.rows,
      [...answer.invites].reverse().map((invite) => this.row(invite)),
    );
  }

  row(invite) {
    const state = stateOf(invite);
    return h(
      "tr",
      { dataset: { code: invite.code, state } },
      h("td", {}, h("code", {}, invite.code)),
      h("td", {}, state === "used" ? "0 (used up)" : String(invite.uses_left)),
      h(
        "td",
        {},
        invite.expires_at ? dateTime(invite.expires_at) : "never",
        state === "expired" ? " (expired)" : "",
      ),
      h("td", {}, dateTime(invite.created_at)),
      h(
        "td",
        {},
        h(
          "div",
          { class: "admin-actions" },
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              "aria-label": `Copy link of invite ${invite.code}`,
              onclick: () => this.copy(inviteLink(invite.code)),
            },
            "Copy link",
          ),
          h(
            "button",
            {
              type: "button",
              class: "danger small",
              "aria-label": `Revoke invite ${invite.code}`,
              onclick: () => this.askRevoke(invite),
            },
            "Revoke",
          ),
        ),
      ),
    );
  }

  askRevoke(invite) {
    confirmDialog({
      title: "Revoke this invite?",
      text: `Nobody will be able to sign up with ${invite.code} any more.`,
      confirmLabel: "Revoke invite",
      confirm: async () => {
        try {
          await this.admin.revokeInvite(invite.code);
        } catch (error) {
          if (!this.failed(error)) this.error.textContent = error.message;
          return;
        }
        this.status.textContent = "Invite revoked.";
        // A revoked link must not stay on show, ready to be copied.
        if (this.createdCode === invite.code) this.created.hidden = true;
        await this.load();
        this.changed();
      },
    });
  }
}

function stateOf(invite) {
  if (invite.uses_left === 0) return "used";
  if (invite.expires_at !== null && invite.expires_at <= Date.now()) return "expired";
  return "active";
}
