// Modal dialogs: start a direct chat, create a group, a group's members, and
// confirmations.
// Native <dialog> gives focus trapping and Escape to close.

import { avatar, h, presenceDot, reconcile, replace } from "../dom.js";
import { formatLastSeen } from "../format.js";

export function openDialog(titleText, body, { onClose } = {}) {
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: titleId }, titleText),
      h(
        "button",
        { type: "button", class: "icon", "aria-label": "Close", onclick: () => dialog.close() },
        "×",
      ),
    ),
    body,
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose?.();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/**
 * Ask before something that cannot be undone. `confirm()` runs on the
 * confirming button; `onClose()` runs however the dialog ends (to put the
 * focus back where it belongs). The safe choice has the focus first.
 */
export function confirmDialog({ title, text, confirmLabel, confirm, onClose }) {
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const accept = h("button", { type: "submit", class: "danger" }, confirmLabel);
  const form = h(
    "form",
    { class: "dialog-body" },
    h("p", {}, text),
    h("div", { class: "dialog-actions" }, cancel, accept),
  );
  const dialog = openDialog(title, form, { onClose });
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    dialog.close();
    confirm();
  });
  cancel.focus();
  return dialog;
}

function field(id, label, attributes = {}) {
  const input = h("input", {
    id,
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    ...attributes,
  });
  return [h("div", { class: "field" }, h("label", { for: id }, label), input), input];
}

/** Ask for a username; `start(username)` opens the chat and returns its id. */
export function newChatDialog({ start }) {
  const [row, input] = field("new-chat-username", "Username", {
    required: true,
    placeholder: "e.g. alice",
  });
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "dialog-body" },
    h("p", { class: "hint" }, "Start a direct chat with anyone on this server."),
    row,
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "submit", class: "primary" }, "Start chat"),
    ),
  );
  const dialog = openDialog("New chat", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await start(input.value);
      dialog.close();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  input.focus();
}

/** Name and members (usernames, separated by commas or spaces). */
export function newGroupDialog({ create }) {
  const [nameRow, name] = field("new-group-name", "Group name", { required: true, maxlength: 100 });
  const [membersRow, members] = field("new-group-members", "Members", {
    placeholder: "usernames, separated by commas",
    "aria-describedby": "new-group-members-hint",
  });
  membersRow.append(
    h("small", { class: "hint", id: "new-group-members-hint" }, "You can add more later."),
  );
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "dialog-body" },
    nameRow,
    membersRow,
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "submit", class: "primary" }, "Create group"),
    ),
  );
  const dialog = openDialog("New group", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) {
      error.textContent = "Give the group a name.";
      return;
    }
    const usernames = members.value.split(/[\s,]+/).filter(Boolean);
    try {
      await create(name.value.trim(), usernames);
      dialog.close();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  name.focus();
}

/**
 * A group's members with presence; the owner renames, adds and removes;
 * anyone leaves. `actions`: rename(name), add(username), remove(userId), leave().
 */
export function membersDialog(state, channelId, actions) {
  const body = h("div", { class: "dialog-body" });
  const dialog = openDialog("Group members", body, {
    onClose: () => state.removeEventListener("change", onChange),
  });
  const onChange = (event) => {
    if (["channels", "presence", "users"].includes(event.detail.what)) render();
  };
  state.addEventListener("change", onChange);
  const note = h("p", { class: "form-note", role: "status" });

  const attempt = (work) => async (event) => {
    event?.preventDefault();
    note.textContent = "";
    try {
      note.textContent = (await work()) ?? "";
    } catch (failure) {
      note.textContent = failure.message;
    }
  };

  const [renameRow, renameInput] = field("group-rename", "Group name", {
    maxlength: 100,
    required: true,
  });
  const renameForm = h(
    "form",
    { class: "inline-form" },
    renameRow,
    h("button", { type: "submit", class: "secondary" }, "Rename"),
  );
  renameForm.addEventListener(
    "submit",
    attempt(() => actions.rename(renameInput.value)),
  );

  const [addRow, addInput] = field("group-add", "Add a member", { placeholder: "username" });
  const addForm = h(
    "form",
    { class: "inline-form" },
    addRow,
    h("button", { type: "submit", class: "secondary" }, "Add"),
  );
  addForm.addEventListener(
    "submit",
    attempt(async () => {
      const text = await actions.add(addInput.value);
      addInput.value = "";
      return text;
    }),
  );

  const list = h("ul", { class: "people", "aria-label": "Members" });
  const leave = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: attempt(async () => {
        if (!window.confirm("Leave this group? You will no longer see its messages.")) return null;
        await actions.leave();
        dialog.close();
        return null;
      }),
    },
    "Leave group",
  );

  const heading = h("h3", {});
  const footer = h("div", { class: "dialog-actions" }, leave);
  let renamed = false;
  function render() {
    const channel = state.channels.get(channelId);
    if (!channel) {
      if (dialog.open) dialog.close();
      return;
    }
    const owner = channel.owner_id === state.me.user_id;
    if (!renamed) {
      renameInput.value = channel.name;
      renamed = true;
    }
    const members = [...channel.members].sort((a, b) => {
      if (a === channel.owner_id) return -1;
      if (b === channel.owner_id) return 1;
      return state.nameOf(a).localeCompare(state.nameOf(b));
    });
    replace(
      list,
      members.map((userId) => {
        const user = state.users.get(userId);
        const name = state.nameOf(userId);
        const tags = [
          userId === channel.owner_id ? "owner" : null,
          userId === state.me.user_id ? "you" : null,
        ];
        const removable = owner && userId !== state.me.user_id;
        return h(
          "li",
          { class: "person", dataset: { userId } },
          h("span", { class: "avatar-wrap" }, avatar(name), presenceDot(state.statusOf(userId))),
          h(
            "span",
            { class: "person-text" },
            h(
              "span",
              { class: "person-name" },
              name,
              ...tags.filter(Boolean).map((tag) => h("span", { class: "tag" }, tag)),
            ),
            h(
              "span",
              { class: "person-note" },
              `${user ? `@${user.username} · ` : ""}${formatLastSeen(state.presence.get(userId))}`,
            ),
          ),
          removable
            ? h(
                "button",
                {
                  type: "button",
                  class: "secondary small",
                  "aria-label": `Remove ${name} from the group`,
                  onclick: attempt(() => actions.remove(userId)),
                },
                "Remove",
              )
            : null,
        );
      }),
    );
    heading.textContent = `${channel.members.length} members`;
    // Reconciled, not rebuilt, so typing in a field survives presence updates.
    reconcile(
      body,
      [owner ? renameForm : null, owner ? addForm : null, note, heading, list, footer].filter(
        Boolean,
      ),
    );
  }
  render();
}
