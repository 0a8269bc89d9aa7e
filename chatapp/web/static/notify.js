// Browser notifications for new messages while the tab is hidden, once the
// person has allowed them. They need a secure context (https or localhost).

export function notificationsAvailable() {
  return "Notification" in window && window.isSecureContext;
}

export function notificationsAllowed() {
  return notificationsAvailable() && Notification.permission === "granted";
}

/** Ask, from a click (browsers ignore requests without a user gesture). */
export async function askForNotifications() {
  if (!notificationsAvailable()) return "unavailable";
  return Notification.requestPermission();
}

/** Show one notification per channel (a newer one replaces the older). */
export function notifyMessage({ title, body, channelId, onOpen }) {
  if (!notificationsAllowed() || document.visibilityState === "visible") return null;
  try {
    const notification = new Notification(title, {
      body: body.length > 200 ? `${body.slice(0, 199)}…` : body,
      tag: `channel-${channelId}`,
      icon: "/static/icon.svg",
    });
    notification.onclick = () => {
      window.focus();
      onOpen?.();
      notification.close();
    };
    return notification;
  } catch {
    // Some browsers allow notifications only from a service worker.
    return null;
  }
}
