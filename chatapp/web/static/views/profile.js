// A person's profile in a small dialog, opened from a sender's name, a
// friend's entry or a direct chat's menu: who they are, a message button,
// and block or unblock.

import { avatar, h, replace } from "../dom.js";
import { confirmDialog, openDialog } from "./dialogs.js";

/** `actions` are accountActions (account.js); `onClose` puts the focus back. */
export async function profileDialog(state, actions, userId, { onClose } = {}) {
  const user = (await actions.user(userId).catch(() => null)) ?? state.users.get(userId);
  if (!user) return null;
  const me = userId === state.me.user_id;
  const name = user.display_name || user.username;
  const note = h("p", { class: "form-note", role: "status" });
  const blockButton = h("button", { type: "button", class: "secondary" });
  const messageButton = h("button", { type: "button", class: "primary" }, "Message");
  const about = user.about
    ? h("p", { class: "profile-about" }, user.about)
    : h("p", { class: "hint" }, "No about text.");
  const body = h(
    "div",
    { class: "dialog-body profile" },
    h(
      "div",
      { class: "profile-head" },
      avatar(name, "large"),
      h(
        "div",
        { class: "profile-names" },
        h("span", { class: "profile-name" }, name),
        h("span", { class: "person-note" }, `@${user.username}`),
      ),
    ),
    about,
    me ? h("p", { class: "hint" }, "This is you.") : null,
    note,
    me ? null : h("div", { class: "dialog-actions" }, blockButton, messageButton),
  );
  const dialog = openDialog(`Profile: ${name}`, body, { onClose });
  const render = () => {
    const blocked = state.blocked.has(userId);
    replace(blockButton, blocked ? `Unblock ${user.username}` : `Block ${user.username}`);
    blockButton.className = blocked ? "secondary" : "danger";
    note.textContent = blocked
      ? `You block ${name}: they cannot message you, add you to groups or see when you are online.`
      : "";
  };
  blockButton.addEventListener("click", () => {
    if (state.blocked.has(userId)) {
      actions.unblock(userId).then(render, (error) => {
        note.textContent = `Not unblocked: ${error.message}`;
      });
      return;
    }
    confirmDialog({
      title: `Block ${name}?`,
      text: `${name} will not be able to message you, add you to groups, send you a friend request or see when you are online. A friendship between you ends. You can unblock them later.`,
      confirmLabel: "Block",
      confirm: () =>
        actions.block(userId).then(render, (error) => {
          note.textContent = `Not blocked: ${error.message}`;
        }),
      onClose: () => blockButton.isConnected && blockButton.focus(),
    });
  });
  messageButton.addEventListener("click", () => {
    dialog.close();
    actions.message(userId).catch((error) => actions.tell(`Cannot open the chat: ${error.message}`));
  });
  render();
  return dialog;
}
