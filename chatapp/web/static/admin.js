// The admin page at /admin: the server's state, users, invites and the audit log.
// It uses the login the web client keeps (session.js), so an admin logged in at /
// opens it as they are. The API decides who is an admin: a member's calls are
// refused with 403 `forbidden`, which this page shows as "admins only".

import { AdminApi } from "./admin-api.js";
import { Api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { loadSession } from "./session.js";
import { AuditPanel } from "./views/admin-audit.js";
import { InvitesPanel } from "./views/admin-invites.js";
import { ServerPanel } from "./views/admin-server.js";
import { UsersPanel } from "./views/admin-users.js";

const root = document.getElementById("app");
const api = new Api();
const admin = new AdminApi(api);
let refused = false;

function screen(title, text, { linkText = "Go to chat", id }) {
  refused = true;
  replace(
    root,
    h(
      "main",
      { id: "main", class: "auth" },
      h(
        "div",
        { class: "auth-card admin-refusal", id },
        h(
          "div",
          { class: "auth-brand" },
          h("img", { src: "/static/icon.svg", alt: "", width: 40, height: 40 }),
          h("span", {}, "chatapp"),
        ),
        h("h1", {}, title),
        h("p", {}, text),
        h("p", {}, h("a", { href: "/" }, linkText)),
      ),
    ),
  );
}

function signedOut(text = "Log in to chat first, with an admin's account, then come back here.") {
  screen("Log in first", text, { linkText: "Log in", id: "admin-signed-out" });
}

function adminsOnly() {
  screen(
    "Admins only",
    "This page is for the server's admins. An admin can make you one; meanwhile, chat is that way.",
    { id: "admin-refused" },
  );
}

/** True when `error` ended the page (signed out, or not an admin): panels show the rest. */
function failed(error) {
  if (refused) return true;
  if (error instanceof ApiError && error.status === 403 && error.code === "forbidden") {
    adminsOnly();
    return true;
  }
  if (error instanceof ApiError && error.status === 401) {
    signedOut("Your session ended. Log in again, then come back here.");
    return true;
  }
  return false;
}

function layout(me, panels) {
  const header = h(
    "header",
    { class: "topbar" },
    h(
      "a",
      { href: "/", class: "brand", "aria-label": "chatapp, back to chat" },
      h("img", { src: "/static/icon.svg", alt: "", width: 28, height: 28 }),
      h("span", { class: "brand-name" }, "chatapp"),
    ),
    h("h1", { class: "admin-title" }, "Admin"),
    h("span", { class: "admin-me" }, `Signed in as @${me.username}`),
    h("a", { href: "/", class: "admin-back" }, "Back to chat"),
  );
  return h(
    "div",
    { class: "shell admin-shell" },
    h("a", { href: "#main", class: "skip-link" }, "Skip to content"),
    header,
    h(
      "main",
      { id: "main", class: "admin-main", tabindex: "-1" },
      panels.map((panel) => panel.element),
    ),
  );
}

async function start() {
  const session = loadSession();
  if (!session) {
    signedOut();
    return;
  }
  api.token = session.token;
  api.onUnauthorized = () => signedOut("Your session ended. Log in again, then come back here.");
  replace(root, h("p", { class: "loading", role: "status" }, "Loading…"));
  let me;
  try {
    me = (await admin.me()).user;
  } catch (error) {
    if (!failed(error)) {
      replace(root, h("p", { class: "loading", role: "alert" }, `Cannot load: ${error.message}`));
    }
    return;
  }
  if (me.role !== "admin") {
    adminsOnly();
    return;
  }
  const server = new ServerPanel(admin, { failed });
  const audit = new AuditPanel(admin, { failed });
  // An action changes the audit log and maybe the figures: both are read again.
  const changed = () => {
    audit.load();
    server.load();
  };
  const users = new UsersPanel(admin, me, { failed, changed });
  const invites = new InvitesPanel(admin, { failed, changed });
  const panels = [server, users, invites, audit];
  replace(root, layout(me, panels));
  await Promise.all(panels.map((panel) => panel.load()));
}

start();
