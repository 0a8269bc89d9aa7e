// The login kept across reloads: token, device and user, in localStorage.
// Each login is a device of its own; its last_seq and outbox are keyed by it.

const KEY = "chatapp.session";

export function loadSession(storage = window.localStorage) {
  try {
    const session = JSON.parse(storage.getItem(KEY) ?? "null");
    if (session?.token && session.device_id && session.user?.user_id) return session;
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

export function saveSession(answer, storage = window.localStorage) {
  const session = {
    token: answer.token,
    device_id: answer.device_id,
    user: answer.user,
    ws_url: answer.ws_url,
  };
  storage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function updateSessionUser(user, storage = window.localStorage) {
  const session = loadSession(storage);
  if (!session) return;
  session.user = user;
  storage.setItem(KEY, JSON.stringify(session));
}

/** Forget the login and everything kept for its device. */
export function clearSession(storage = window.localStorage) {
  const session = loadSession(storage);
  storage.removeItem(KEY);
  if (session) {
    storage.removeItem(`chatapp.lastSeq.${session.device_id}`);
    storage.removeItem(`chatapp.outbox.${session.device_id}`);
  }
}
