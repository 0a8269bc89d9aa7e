// The settings screen: profile, privacy (read receipts, who may add me to
// groups), notifications on this device, password, signed-in devices,
// blocked people, exporting one's data and deleting the account.

import { avatar, h, replace } from "../dom.js";
import { formatFull, formatWhen } from "../format.js";
import { confirmDialog } from "./dialogs.js";

let fieldCount = 0;

function field(label, control, hint) {
  const id = control.id || `setting-${++fieldCount}`;
  control.id = id;
  const hintNode = hint ? h("small", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintNode);
}

function note() {
  return h("p", { class: "form-note", role: "status" });
}

function card(id, title, ...children) {
  return h(
    "section",
    { class: "card", "aria-labelledby": id },
    h("h3", { id }, title),
    ...children,
  );
}

export class SettingsView {
  /**
   * `actions` are accountActions (account.js) and enablePush(), pushState(),
   * signOutHere(reason).
   */
  constructor(state, actions) {
    this.state = state;
    this.actions = actions;
    this.element = h(
      "section",
      { class: "settings-page", "aria-labelledby": "settings-page-title" },
      h(
        "header",
        { class: "page-header" },
        h("a", { href: "#/chats", class: "back", "aria-label": "Back to chats" }, "‹"),
        h("h2", { id: "settings-page-title" }, "Settings"),
      ),
      h(
        "div",
        { class: "page-body" },
        this.profileCard(),
        this.privacyCard(),
        this.notificationsCard(),
        this.passwordCard(),
        this.devicesCard(),
        this.blockedCard(),
        this.dataCard(),
        this.deleteCard(),
      ),
    );
    this.onChange = (event) => {
      const { what } = event.detail;
      if (what === "blocks" || what === "users") this.renderBlocked();
    };
    state.addEventListener("change", this.onChange);
    this.loadDevices();
    actions.loadBlocks().catch((error) => {
      this.blockedNote.textContent = `Could not load: ${error.message}`;
    });
  }

  destroy() {
    this.state.removeEventListener("change", this.onChange);
  }

  profileCard() {
    const me = this.state.me;
    const name = h("input", { maxlength: 64, value: me.display_name ?? "", autocomplete: "name" });
    const about = h("textarea", { rows: 3, maxlength: 500 });
    about.value = me.about ?? "";
    const result = note();
    const form = h(
      "form",
      { class: "settings-form" },
      field("Display name", name),
      field("About", about, "Up to 500 characters, shown on your profile."),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Save profile")),
      result,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.textContent = "Saving…";
      try {
        await this.actions.updateProfile({ display_name: name.value, about: about.value });
        result.textContent = "Profile saved.";
      } catch (error) {
        result.textContent = `Not saved: ${error.message}`;
      }
    });
    return card("settings-profile", "Profile", h("p", { class: "hint" }, `Username @${me.username}`), form);
  }

  privacyCard() {
    const me = this.state.me;
    const receipts = h("input", { type: "checkbox", id: "share-receipts" });
    receipts.checked = me.share_read_receipts !== false;
    const receiptsNote = note();
    receipts.addEventListener("change", async () => {
      try {
        await this.actions.setShareReceipts(receipts.checked);
        receiptsNote.textContent = receipts.checked
          ? "Read receipts are shared."
          : "Read receipts are off.";
      } catch (error) {
        receipts.checked = !receipts.checked;
        receiptsNote.textContent = `Not changed: ${error.message}`;
      }
    });
    const groupsNote = note();
    const choices = [
      ["everyone", "Anyone"],
      ["friends", "Only my friends"],
    ].map(([value, label]) => {
      const input = h("input", {
        type: "radio",
        name: "group-adds",
        id: `group-adds-${value}`,
        value,
      });
      input.checked = (me.group_adds ?? "everyone") === value;
      input.addEventListener("change", async () => {
        try {
          await this.actions.updateProfile({ group_adds: value });
          groupsNote.textContent = `Saved: ${label.toLowerCase()} may add you to groups.`;
        } catch (error) {
          groupsNote.textContent = `Not saved: ${error.message}`;
        }
      });
      return h("div", { class: "choice" }, input, h("label", { for: input.id }, label));
    });
    return card(
      "settings-privacy",
      "Privacy",
      h(
        "div",
        { class: "menu-setting" },
        receipts,
        h("label", { for: "share-receipts" }, "Share read receipts"),
        h(
          "small",
          { class: "hint" },
          "Others see when you have read their messages, and you see when they have read yours.",
        ),
      ),
      receiptsNote,
      h(
        "fieldset",
        { class: "choices" },
        h("legend", {}, "Who may add me to groups"),
        choices,
      ),
      groupsNote,
    );
  }

  notificationsCard() {
    const result = note();
    const button = h("button", { type: "button", class: "secondary" }, "Turn on notifications");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        result.textContent = await this.actions.enablePush();
      } catch (error) {
        result.textContent = `Notifications are not on: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
    return card(
      "settings-notifications",
      "Notifications on this device",
      h(
        "p",
        { class: "hint" },
        "Each chat's menu (⋯) chooses which of its messages notify you: all, mentions or none.",
      ),
      button,
      result,
    );
  }

  passwordCard() {
    const current = h("input", { type: "password", autocomplete: "current-password", required: true });
    const next = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: 8 });
    const again = h("input", { type: "password", autocomplete: "new-password", required: true });
    const result = note();
    const form = h(
      "form",
      { class: "settings-form" },
      field("Current password", current),
      field("New password", next, "Your other devices are signed out when it changes."),
      field("New password again", again),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Change password")),
      result,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (next.value !== again.value) {
        result.textContent = "The new passwords are not the same.";
        again.focus();
        return;
      }
      try {
        await this.actions.changePassword(current.value, next.value);
        form.reset();
        result.textContent = "Password changed. Your other devices were signed out.";
        this.loadDevices();
      } catch (error) {
        result.textContent =
          error.code === "invalid_credentials"
            ? "The current password is not right."
            : `Not changed: ${error.message}`;
        if (error.code === "invalid_credentials") current.focus();
      }
    });
    return card("settings-password", "Password", form);
  }

  devicesCard() {
    this.devices = h("ul", { class: "people devices" });
    this.devicesNote = note();
    return card("settings-devices", "Signed-in devices", this.devices, this.devicesNote);
  }

  async loadDevices() {
    let devices;
    try {
      devices = await this.actions.devices();
    } catch (error) {
      this.devicesNote.textContent = `Could not load: ${error.message}`;
      return;
    }
    replace(
      this.devices,
      devices.map((device) => {
        const name = device.name || `Device ${device.device_id}`;
        const seen = device.last_seen_at ? `last active ${formatWhen(device.last_seen_at)}` : "";
        return h(
          "li",
          { class: "person device", dataset: { deviceId: device.device_id } },
          h(
            "span",
            { class: "person-text" },
            h(
              "span",
              { class: "person-name" },
              name,
              device.current ? h("span", { class: "tag" }, "This device") : null,
            ),
            h(
              "span",
              { class: "person-note", title: formatFull(device.created_at) },
              [`signed in ${formatWhen(device.created_at)}`, seen].filter(Boolean).join(" · "),
            ),
          ),
          h(
            "span",
            { class: "person-actions" },
            h(
              "button",
              {
                type: "button",
                class: "secondary small",
                "aria-label": `Sign out ${name}`,
                onclick: (event) => this.revoke(device, name, event.currentTarget),
              },
              "Sign out",
            ),
          ),
        );
      }),
    );
  }

  revoke(device, name, button) {
    confirmDialog({
      title: device.current ? "Sign out this device?" : `Sign out ${name}?`,
      text: device.current
        ? "You will need your password to sign in here again."
        : "That device will need the password to sign in again. Its notifications stop.",
      confirmLabel: "Sign out",
      confirm: async () => {
        try {
          await this.actions.revokeDevice(device.device_id);
        } catch (error) {
          this.devicesNote.textContent = `Not signed out: ${error.message}`;
          return;
        }
        if (device.current) this.actions.signOutHere(null);
        else {
          this.devicesNote.textContent = `${name} was signed out.`;
          this.loadDevices();
        }
      },
      onClose: () => button.isConnected && button.focus(),
    });
  }

  blockedCard() {
    this.blocked = h("ul", { class: "people blocked-list" });
    this.blockedNote = note();
    return card(
      "settings-blocked",
      "Blocked people",
      h(
        "p",
        { class: "hint" },
        "Block someone from their profile: click their name in a chat or in your friends.",
      ),
      this.blocked,
      this.blockedNote,
    );
  }

  renderBlocked() {
    const users = [...this.state.blocked]
      .map((id) => this.state.users.get(id))
      .filter(Boolean);
    replace(
      this.blocked,
      users.length
        ? users.map((user) =>
            h(
              "li",
              { class: "person", dataset: { userId: user.user_id, username: user.username } },
              h("span", { class: "avatar-wrap" }, avatar(user.display_name || user.username)),
              h(
                "span",
                { class: "person-text" },
                h("span", { class: "person-name" }, user.display_name || user.username),
                h("span", { class: "person-note" }, `@${user.username}`),
              ),
              h(
                "span",
                { class: "person-actions" },
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary small",
                    "aria-label": `Unblock ${user.username}`,
                    onclick: () =>
                      this.actions.unblock(user.user_id).catch((error) => {
                        this.blockedNote.textContent = `Not unblocked: ${error.message}`;
                      }),
                  },
                  "Unblock",
                ),
              ),
            ),
          )
        : [h("li", { class: "empty-hint" }, "You block no one.")],
    );
  }

  dataCard() {
    const result = note();
    const button = h("button", { type: "button", class: "secondary" }, "Download my data");
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.textContent = "Preparing the file…";
      try {
        const blob = await this.actions.exportData();
        const url = URL.createObjectURL(blob);
        const link = h("a", { href: url, download: `chatapp-${this.state.me.username}.ndjson` });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        result.textContent = "Your data was saved as a file (JSON lines).";
      } catch (error) {
        result.textContent = `Could not export: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    });
    return card(
      "settings-data",
      "Your data",
      h(
        "p",
        { class: "hint" },
        "Your profile, devices, friends, chats and every message you can read, as one file.",
      ),
      button,
      result,
    );
  }

  deleteCard() {
    const password = h("input", { type: "password", autocomplete: "current-password", required: true });
    const erase = h("input", { type: "checkbox", id: "delete-erase" });
    const result = note();
    const form = h(
      "form",
      { class: "settings-form" },
      h(
        "p",
        { class: "hint" },
        "Your profile is emptied, you leave every group and friendship, and every device is signed out. Your username stays taken.",
      ),
      field("Password", password),
      h(
        "div",
        { class: "menu-setting" },
        erase,
        h("label", { for: "delete-erase" }, "Also delete every message I sent"),
      ),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "danger" }, "Delete account")),
      result,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      confirmDialog({
        title: "Delete your account?",
        text: erase.checked
          ? "This cannot be undone. Every message you sent is deleted too."
          : "This cannot be undone. Your messages stay, shown as from a deleted user.",
        confirmLabel: "Delete account",
        confirm: async () => {
          try {
            await this.actions.deleteAccount(password.value, erase.checked);
          } catch (error) {
            result.textContent =
              error.code === "invalid_credentials"
                ? "The password is not right."
                : `Not deleted: ${error.message}`;
          }
        },
      });
    });
    return card("settings-delete", "Delete account", form);
  }
}
