// Sign up and log in. A sign-up logs in at once; the device is named after
// the browser unless the person names it.

import { ApiError } from "../api.js";
import { h, replace } from "../dom.js";
import { browserDeviceName } from "../format.js";

const MESSAGES = {
  invalid_credentials: "Wrong username or password.",
  username_taken: "That username is taken. Try another one.",
  invalid_username: "Usernames are 3 to 32 letters, digits, dots, dashes or underscores.",
  weak_password: "Passwords are at least 8 characters long.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  invite_required:
    "This server needs an invite to sign up. Enter the code from your invite link," +
    " or ask an admin for one.",
  invite_unusable:
    "That invite code does not work: it may be used up, expired or revoked." +
    " Ask an admin for a new invite link.",
  registration_closed:
    "This server is not taking new accounts. Ask its operator to make one for you.",
};

/** The invite code of an invite link (`/?invite=CODE`), or "". */
export function inviteFromUrl(location = window.location) {
  return (new URLSearchParams(location.search).get("invite") ?? "").trim();
}

export function explain(error) {
  if (error instanceof ApiError) return MESSAGES[error.code] ?? error.message;
  return String(error?.message ?? error);
}

/**
 * Render the form for `mode` ("login" or "signup") into `root`.
 * `onSession(answer)` gets the login answer {token, device_id, user, ws_url}.
 */
export function renderAuth(root, { api, mode, onSession }) {
  const signup = mode === "signup";
  const error = h("p", { class: "form-error", role: "alert", id: "auth-error" });
  const username = h("input", {
    id: "auth-username",
    name: "username",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
    minlength: 3,
    maxlength: 32,
    pattern: "[A-Za-z0-9_.\\-]+",
    "aria-describedby": signup ? "username-hint" : false,
  });
  const password = h("input", {
    id: "auth-password",
    name: "password",
    type: "password",
    autocomplete: signup ? "new-password" : "current-password",
    required: true,
    minlength: signup ? 8 : 1,
    maxlength: 1024,
    "aria-describedby": signup ? "password-hint" : false,
  });
  const displayName = h("input", {
    id: "auth-display-name",
    name: "display_name",
    autocomplete: "name",
    maxlength: 64,
  });
  // Shown with a code from the link, or once the server asks for one.
  const invite = h("input", {
    id: "auth-invite",
    name: "invite_code",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    maxlength: 100,
  });
  invite.value = inviteFromUrl();
  const inviteField = field("Invite code", invite, "From your invite link", "invite-hint");
  inviteField.hidden = !signup || !invite.value;
  const device = h("input", { id: "auth-device", name: "device_name", maxlength: 100 });
  device.value = browserDeviceName();
  const submit = h(
    "button",
    { type: "submit", class: "primary wide" },
    signup ? "Create account" : "Log in",
  );

  const form = h(
    "form",
    { class: "auth-form", "aria-labelledby": "auth-title", novalidate: true },
    h("h1", { id: "auth-title" }, signup ? "Create your account" : "Log in to chat"),
    field("Username", username, signup ? "3 to 32 of a–z, 0–9, . _ -" : null, "username-hint"),
    signup ? field("Display name (optional)", displayName) : null,
    field("Password", password, signup ? "At least 8 characters" : null, "password-hint"),
    signup ? inviteField : null,
    h(
      "details",
      { class: "device-details" },
      h("summary", {}, "This device"),
      field("Device name", device, "Shown in your list of devices", "device-hint"),
    ),
    error,
    submit,
    h(
      "p",
      { class: "switch" },
      signup ? "Already have an account? " : "New here? ",
      h("a", { href: signup ? "#/login" : "#/signup" }, signup ? "Log in" : "Create an account"),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const problem = check(signup, username.value, password.value);
    if (problem) {
      error.textContent = problem;
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      if (signup) {
        await api.signup(
          username.value.trim(),
          password.value,
          displayName.value.trim(),
          invite.value.trim(),
        );
        forgetInviteLink();
      }
      const answer = await api.login(
        username.value.trim(),
        password.value,
        device.value.trim() || browserDeviceName(),
      );
      onSession(answer);
    } catch (failure) {
      error.textContent = explain(failure);
      if (failure instanceof ApiError && failure.code === "invite_required") {
        if (invite.value.trim()) error.textContent = MESSAGES.invite_unusable;
        inviteField.hidden = false;
        invite.focus();
      }
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });

  replace(
    root,
    h("main", { id: "main", class: "auth" }, h("div", { class: "auth-card" }, brand(), form)),
  );
  username.focus();
}

/** The code is spent: a later visit (or a log-out) must not open the signup form again. */
function forgetInviteLink() {
  if (!inviteFromUrl()) return;
  const url = new URL(window.location.href);
  url.searchParams.delete("invite");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function check(signup, username, password) {
  if (!username.trim()) return "Enter a username.";
  if (!password) return "Enter a password.";
  if (signup && !/^[a-z0-9_.-]{3,32}$/i.test(username.trim())) return MESSAGES.invalid_username;
  if (signup && password.length < 8) return MESSAGES.weak_password;
  return null;
}

function field(label, input, hint = null, hintId = null) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: input.id }, label),
    input,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null,
  );
}

function brand() {
  return h(
    "div",
    { class: "auth-brand" },
    h("img", { src: "/static/icon.svg", alt: "", width: 40, height: 40 }),
    h("span", {}, "chatapp"),
  );
}
