// The installed app's half: the service worker (the page works offline and
// receives Web Push with its tab closed) and this device's push
// subscription, registered with the server as the device's `webpush` target.
// A notification click in the worker asks an open page to show the channel.

const WORKER_URL = "/sw.js";

export function workerAvailable() {
  return "serviceWorker" in navigator && window.isSecureContext;
}

export function pushAvailable() {
  return workerAvailable() && "PushManager" in window && "Notification" in window;
}

/** Register the worker once the page is up; `onOpenChannel(id)` for notification clicks. */
export function startWorker(onOpenChannel) {
  if (!workerAvailable()) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    const { type, channel_id: channelId } = event.data ?? {};
    if (type === "open-channel" && Number.isInteger(channelId)) onOpenChannel(channelId);
  });
  navigator.serviceWorker.register(WORKER_URL, { scope: "/" }).catch((error) => {
    console.warn("service worker not registered", error);
  });
}

/**
 * Subscribe this browser with the server's VAPID key and register the
 * subscription as this device's target. Asks for permission first (call from
 * a click). Returns a sentence for the person.
 */
export async function enablePush(api, deviceId) {
  if (!pushAvailable()) return "This browser cannot receive notifications here.";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    return "Notifications are blocked. You can allow them in the browser's site settings.";
  }
  const registered = await registerPush(api, deviceId);
  return registered
    ? "Notifications are on for this device, also when its tab is closed."
    : "Notifications are on while this tab is open; this server does not send Web Push.";
}

/**
 * With permission already given, make sure the server has this device's
 * subscription (a new login is a new device without a target). False when
 * the server does not offer Web Push.
 */
export async function registerPush(api, deviceId) {
  const config = await api.pushConfig();
  const key = config.webpush_public_key;
  if (!config.providers.includes("webpush") || !key) return false;
  const registration = await navigator.serviceWorker.ready;
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    // Made for another server key (the server's data was replaced): start over.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: fromBase64Url(key),
  });
  const { endpoint, keys } = subscription.toJSON();
  await api.setPushTarget(deviceId, "webpush", { endpoint, keys });
  return true;
}

/** Keep the server's copy current on start-up, when the person said yes before. */
export async function refreshPush(api, deviceId) {
  if (!pushAvailable() || Notification.permission !== "granted") return;
  try {
    await registerPush(api, deviceId);
  } catch (error) {
    console.warn("push subscription not registered", error);
  }
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function sameKey(buffer, key) {
  if (!buffer) return true; // not told: keep the subscription
  const bytes = new Uint8Array(buffer);
  const wanted = fromBase64Url(key);
  return bytes.length === wanted.length && bytes.every((byte, index) => byte === wanted[index]);
}
