// The server's state: version, uptime, load and what is stored (GET /admin/server).

import { bytes, dateTime, duration, number } from "../admin-format.js";
import { h, replace } from "../dom.js";

const REGISTRATION = {
  open: "open: anyone may sign up",
  invite: "by invite only",
  closed: "closed: accounts are made at the command line",
};

export class ServerPanel {
  constructor(admin, { failed }) {
    this.admin = admin;
    this.failed = failed;
    this.figures = h("dl", { class: "admin-figures", id: "server-figures" });
    this.error = h("p", { class: "form-error", role: "alert" });
    this.element = h(
      "section",
      { class: "card admin-card", "aria-labelledby": "server-title" },
      h(
        "div",
        { class: "admin-card-head" },
        h("h2", { id: "server-title" }, "Server"),
        h(
          "button",
          { type: "button", class: "secondary small", onclick: () => this.load() },
          "Refresh",
        ),
      ),
      this.error,
      this.figures,
    );
  }

  async load() {
    this.error.textContent = "";
    let state;
    try {
      state = await this.admin.server();
    } catch (error) {
      if (!this.failed(error)) this.error.textContent = error.message;
      return;
    }
    const rows = [
      ["Version", state.version, "version"],
      ["Uptime", duration(state.uptime_s), "uptime", `since ${dateTime(state.started_at)}`],
      ["Live connections", number(state.connections), "connections"],
      ["Nodes", number(state.nodes), "nodes", `this page asked ${state.node_id}`],
      ["Messages stored", number(state.messages_stored), "messages"],
      ["Disk used by the data folder", bytes(state.disk_bytes), "disk"],
      ["Registration", REGISTRATION[state.registration] ?? state.registration, "registration"],
    ];
    replace(
      this.figures,
      rows.map(([label, value, key, note]) =>
        h(
          "div",
          { class: "admin-figure", dataset: { figure: key } },
          h("dt", {}, label),
          h("dd", {}, value, note ? h("small", { class: "hint" }, ` (${note})`) : null),
        ),
      ),
    );
  }
}
