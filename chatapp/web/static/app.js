// Start-up, the page frame and routing (#/login, #/signup, #/chats,
// #/chats/ID, #/chats/ID/MESSAGE_ID, #/friends, #/search, #/settings).

import { accountActions } from "./account.js";
import { friendActions, groupActions, messageActions } from "./actions.js";
import { Api } from "./api.js";
import { ChatClient } from "./chat-client.js";
import { avatar, h, replace } from "./dom.js";
import { notificationsAvailable } from "./notify.js";
import { enablePush, refreshPush, startWorker } from "./push.js";
import { clearSession, loadSession, saveSession } from "./session.js";
import { inviteFromUrl, renderAuth } from "./views/auth.js";
import { ChannelList } from "./views/channels.js";
import { ChatView } from "./views/chat.js";
import { membersDialog, newChatDialog, newGroupDialog } from "./views/dialogs.js";
import { FriendsView } from "./views/friends.js";
import { profileDialog } from "./views/profile.js";
import { SearchView } from "./views/search.js";
import { SettingsView } from "./views/settings.js";

const root = document.getElementById("app");
const api = new Api();
let shell = null;
let pendingNotice = null;

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function toast(text) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = h("li", { class: "toast" }, text);
  region.append(item);
  setTimeout(() => item.remove(), 6000);
}

class Shell {
  constructor(client) {
    this.client = client;
    this.state = client.state;
    this.account = accountActions(client);
    this.view = null;
    this.channels = new ChannelList(this.state, {
      onNewChat: () => newChatDialog({ start: (username) => client.startChatWith(username) }),
      onNewGroup: () =>
        newGroupDialog({ create: (name, usernames) => client.createGroup(name, usernames) }),
    });
    this.main = h("div", { class: "main", tabindex: "-1" });
    this.layout = h("main", { id: "main", class: "layout" }, this.channels.element, this.main);
    this.connection = h("span", { class: "connection-text" });
    this.connectionDetail = h("span", { class: "connection-detail" });
    this.retryButton = h(
      "button",
      { type: "button", class: "link", hidden: true, onclick: () => client.socket.reconnectNow() },
      "Retry now",
    );
    this.connectionBox = h(
      "div",
      { class: "connection", role: "status", "aria-live": "polite" },
      h("span", { class: "connection-dot", "aria-hidden": "true" }),
      h("span", {}, this.connection, this.connectionDetail),
      this.retryButton,
    );
    this.chatsTab = h(
      "a",
      { href: "#/chats", class: "tab" },
      "Chats",
      h("span", { class: "badge", hidden: true }),
      h("span", { class: "visually-hidden" }),
    );
    this.friendsTab = h(
      "a",
      { href: "#/friends", class: "tab" },
      "Friends",
      h("span", { class: "badge", hidden: true }),
      h("span", { class: "visually-hidden" }),
    );
    this.searchTab = h("a", { href: "#/search", class: "tab" }, "Search");
    this.notifyButton = h(
      "button",
      {
        type: "button",
        class: "secondary",
        hidden: true,
        onclick: () => this.enableNotifications(),
      },
      "Enable notifications",
    );
    this.meName = h("span", { class: "me-name" });
    this.meAvatar = h("span", { class: "avatar-wrap" });
    this.meDetail = h("p", { class: "menu-user" });
    this.menuButton = h(
      "button",
      {
        type: "button",
        class: "menu-button",
        "aria-expanded": "false",
        "aria-controls": "account-panel",
        onclick: () => this.toggleMenu(),
      },
      this.meAvatar,
      this.meName,
      h("span", { class: "visually-hidden" }, ", account menu"),
    );
    this.menuPanel = h(
      "div",
      { id: "account-panel", class: "menu-panel", hidden: true },
      this.meDetail,
      h(
        "a",
        { href: "#/settings", class: "menu-link", onclick: () => this.toggleMenu(false) },
        "Settings",
      ),
      this.notifyButton,
      h(
        "button",
        { type: "button", class: "secondary", onclick: () => client.logout() },
        "Log out",
      ),
    );
    this.menu = h("div", { class: "account-menu" }, this.menuButton, this.menuPanel);
    this.onDocumentClick = (event) => {
      if (!this.menu.contains(event.target)) this.toggleMenu(false);
    };
    document.addEventListener("click", this.onDocumentClick);
    this.menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.menuPanel.hidden) {
        this.toggleMenu(false);
        this.menuButton.focus();
      }
    });
    const header = h(
      "header",
      { class: "topbar" },
      h("h1", { class: "visually-hidden" }, "chatapp"),
      h(
        "a",
        { href: "#/chats", class: "brand", "aria-label": "chatapp, home" },
        h("img", { src: "/static/icon.svg", alt: "", width: 28, height: 28 }),
        h("span", { class: "brand-name" }, "chatapp"),
      ),
      h(
        "nav",
        { class: "tabs", "aria-label": "Main" },
        this.chatsTab,
        this.friendsTab,
        this.searchTab,
      ),
      this.connectionBox,
      this.menu,
    );
    this.element = h(
      "div",
      { class: "shell" },
      h(
        "a",
        { href: "#main", class: "skip-link", onclick: (event) => this.skip(event) },
        "Skip to content",
      ),
      header,
      this.layout,
      h("ul", { id: "toasts", class: "toasts", "aria-live": "assertive" }),
    );
    this.state.addEventListener("change", (event) => this.changed(event.detail.what));
    this.tick = setInterval(() => this.renderConnection(), 1000);
    this.renderConnection();
    this.renderBadges();
    this.renderAccount();
  }

  destroy() {
    clearInterval(this.tick);
    document.removeEventListener("click", this.onDocumentClick);
    this.view?.destroy?.();
  }

  skip(event) {
    event.preventDefault();
    (this.main.querySelector("textarea, input, [tabindex]") ?? this.main).focus();
  }

  changed(what) {
    if (what === "connection") this.renderConnection();
    if (what === "channels" || what === "friends" || what === "read") this.renderBadges();
    if (what === "users") this.renderAccount();
  }

  toggleMenu(open = this.menuPanel.hidden) {
    this.menuPanel.hidden = !open;
    this.menuButton.setAttribute("aria-expanded", String(open));
  }

  renderAccount() {
    const me = this.state.me;
    this.meName.textContent = me.display_name || me.username;
    replace(this.meAvatar, avatar(me.display_name || me.username, "small"));
    this.meDetail.textContent = `Signed in as @${me.username}`;
    this.notifyButton.hidden = !notificationsAvailable() || Notification.permission !== "default";
  }

  async enableNotifications() {
    toast(await this.turnOnPush());
  }

  /** What happened, as a sentence: push may fail where tab notifications still work. */
  async turnOnPush() {
    let text;
    try {
      text = await enablePush(this.client.api, this.client.session.device_id);
    } catch (error) {
      text = `Notifications are on while this tab is open (${error.message}).`;
    }
    this.renderAccount();
    return text;
  }

  /** A person's profile; the focus goes back to `from` when it closes. */
  openProfile(userId, from) {
    profileDialog(this.state, this.account, userId, {
      onClose: () => from?.isConnected && from.focus(),
    });
  }

  renderConnection() {
    const { state, retryAt } = this.state.connection;
    const texts = {
      connecting: "Connecting…",
      syncing: "Catching up…",
      online: "Online",
      stopped: "Signed out",
    };
    let text = texts[state];
    let detail = "";
    if (state === "offline") {
      const seconds = Math.max(0, Math.ceil(((retryAt ?? Date.now()) - Date.now()) / 1000));
      text = "Offline";
      detail = seconds > 0 ? `, retrying in ${seconds} s` : ", retrying…";
    }
    this.connectionBox.dataset.state = state;
    if (this.connection.textContent !== text) this.connection.textContent = text;
    if (this.connectionDetail.textContent !== detail) this.connectionDetail.textContent = detail;
    this.retryButton.hidden = state !== "offline";
  }

  renderBadges() {
    const unread = this.state.totalUnread();
    const requests = this.state.requests.incoming.length;
    setBadge(this.chatsTab, unread, `${unread} unread`);
    setBadge(this.friendsTab, requests, `${requests} friend requests`);
    document.title = unread ? `(${unread}) chatapp` : "chatapp";
  }

  show(where) {
    this.view?.destroy?.();
    this.view = null;
    this.client.currentChannel = null;
    this.client.onReadNeeded = null;
    this.layout.dataset.view = where.name;
    const friends = where.name === "friends";
    const search = where.name === "search";
    for (const [tab, current] of [
      [this.chatsTab, !friends && !search && where.name !== "settings"],
      [this.friendsTab, friends],
      [this.searchTab, search],
    ]) {
      if (current) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    this.channels.select(where.channelId ?? null);
    if (where.name === "chat") this.showChat(where.channelId, where.messageId);
    else if (where.name === "friends") this.showFriends();
    else if (search) this.showPage(new SearchView(this.state, this.searchActions()));
    else if (where.name === "settings") this.showPage(new SettingsView(this.state, this.settingsActions()));
    else this.showEmpty();
  }

  showEmpty() {
    replace(
      this.main,
      h(
        "div",
        { class: "placeholder" },
        h("img", { src: "/static/icon.svg", alt: "", width: 64, height: 64 }),
        h("h2", {}, "Pick a conversation"),
        h("p", {}, "Or start a new one with someone by their username."),
      ),
    );
  }

  showPage(view) {
    this.view = view;
    replace(this.main, view.element);
    view.focus?.();
  }

  searchActions() {
    const client = this.client;
    return {
      search: async (query, before) => {
        const page = await client.api.search(query, { before });
        await client.ensurePeopleIn(page.results.map((result) => result.message));
        return page;
      },
    };
  }

  settingsActions() {
    return {
      ...this.account,
      enablePush: () => this.turnOnPush(),
      signOutHere: (reason) => this.client.signedOut(reason),
    };
  }

  /** With `messageId` (a search result), history is paged back to show that message. */
  showChat(channelId, messageId) {
    if (!this.state.channels.has(channelId)) {
      toast("That conversation is not yours, or it no longer exists.");
      navigate("#/chats");
      return;
    }
    const client = this.client;
    const view = new ChatView(
      this.state,
      {
        send: (id, text, replyTo) => client.send(id, text, replyTo),
        retry: (cmid) => client.retry(cmid),
        discard: (cmid) => client.discard(cmid),
        typing: (id) => client.typing(id),
        read: (id, messageId) => client.read(id, messageId),
        loadLatest: (id) => client.pages.loadLatest(id),
        loadOlder: (id) => client.pages.loadOlder(id),
        pendingFor: (id) => client.pendingFor(id),
        refreshPresence: (id) => client.refreshPresence(id),
        openMembers: (id) => membersDialog(this.state, id, groupActions(client, id)),
        openProfile: (userId, from) => this.openProfile(userId, from),
        setLevel: (id, level) => this.account.setNotificationLevel(id, level),
        tell: toast,
        messages: messageActions(client, channelId),
      },
      channelId,
    );
    this.view = view;
    client.currentChannel = channelId;
    client.onReadNeeded = () => view.scheduleRead();
    replace(this.main, view.element);
    const started = view.start();
    if (messageId) started.then(() => this.view === view && view.jumpTo(messageId));
    else if (window.matchMedia("(pointer: fine)").matches) view.focusComposer();
  }

  showFriends() {
    const profile = (userId, from) => this.openProfile(userId, from);
    this.view = new FriendsView(this.state, friendActions(this.client, profile));
    replace(this.main, this.view.element);
  }
}

function setBadge(tab, count, label) {
  const badge = tab.querySelector(".badge");
  badge.hidden = count === 0;
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.setAttribute("aria-hidden", "true");
  // Heard as "Chats, 3 unread"; seen as "Chats 3".
  tab.querySelector(".visually-hidden").textContent = count ? `, ${label}` : "";
}

function parseRoute() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "chats" && /^\d+$/.test(parts[1] ?? "")) {
    const messageId = /^\d+$/.test(parts[2] ?? "") ? Number(parts[2]) : null;
    return { name: "chat", channelId: Number(parts[1]), messageId };
  }
  if (["friends", "search", "settings"].includes(parts[0])) return { name: parts[0] };
  if (parts[0] === "login" || parts[0] === "signup") return { name: parts[0] };
  return { name: "chats" };
}

function route() {
  const current = parseRoute();
  if (!shell) {
    // An invite link (/?invite=CODE) opens the signup form unless one asks to log in.
    const invited = inviteFromUrl() && current.name !== "login";
    const mode = current.name === "signup" || invited ? "signup" : "login";
    if (current.name !== mode) {
      navigate(`#/${mode}`);
      return;
    }
    renderAuth(root, { api, mode, onSession: startSession });
    if (pendingNotice) {
      root.querySelector(".form-error").textContent = pendingNotice;
      pendingNotice = null;
    }
    return;
  }
  if (current.name === "login" || current.name === "signup") {
    navigate("#/chats");
    return;
  }
  shell.show(current);
}

function signedOut(reason) {
  shell?.destroy();
  shell = null;
  api.token = null;
  clearSession();
  pendingNotice = reason;
  replace(root);
  navigate("#/login");
}

async function startSession(answer) {
  await begin(saveSession(answer));
}

async function begin(session) {
  api.token = session.token;
  const client = new ChatClient(api, session, { onSignedOut: signedOut, toast, navigate });
  api.onUnauthorized = () => client.signedOut("Your session ended. Log in again.");
  replace(root, h("p", { class: "loading", role: "status" }, "Loading your chats…"));
  try {
    await client.start();
  } catch (error) {
    if (!shell && api.token) {
      // The server is unreachable (the page itself may come from the offline
      // copy): show what we can and keep trying.
      const why = navigator.onLine
        ? `Cannot reach the server (${error.message}).`
        : "You are offline.";
      replace(
        root,
        h("p", { class: "loading offline-notice", role: "alert" }, `${why} Retrying…`),
      );
      setTimeout(() => begin(session), 3000);
    }
    return;
  }
  shell = new Shell(client);
  replace(root, shell.element);
  route();
  refreshPush(api, session.device_id);
}

window.addEventListener("hashchange", route);
startWorker((channelId) => navigate(`#/chats/${channelId}`));

const saved = loadSession();
if (saved) begin(saved);
else route();
