// The service worker, served at /sw.js so its scope is the whole site.
// The server puts `SHELL` (every file of the page) and `VERSION` (a digest of
// them) above this text, so a new release installs a new worker.
//
// Offline: the page's files are fetched from the network first (a server
// upgrade never leaves old and new modules mixed) and kept; without a
// network the kept copy is served, and the page says it is offline. The API
// and the WebSocket are never cached.
//
// Web Push: a `push` event shows the notification the server sent; a click
// on it shows the channel in an open tab, or opens one.

/* global SHELL, VERSION */

const CACHE = `chatapp-shell-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith("chatapp-shell-") && name !== CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return (
    url.origin === self.location.origin &&
    (url.pathname === "/" || url.pathname.startsWith("/static/"))
  );
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return;
  event.respondWith(networkFirst(request, url));
});

async function networkFirst(request, url) {
  const cache = await caches.open(CACHE);
  // The page is one document whatever its #route: keep and find it as "/".
  const key = url.pathname === "/" ? "/" : url.pathname;
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw error;
  }
}

/** The notification for a push from the server (see docs/protocol.md, "Push notifications"). */
function notificationOf(push) {
  const sender = push.sender_name || "Someone";
  const count = Number(push.count) || 1;
  const title = count > 1 ? `${sender} (${count} new messages)` : sender;
  const body =
    typeof push.text === "string" && push.text ? push.text : "New message";
  return {
    title,
    options: {
      body,
      tag: `channel-${push.channel_id}`,
      renotify: true,
      icon: "/static/icon-192.png",
      badge: "/static/icon-192.png",
      data: { channel_id: push.channel_id, message_id: push.message_id },
    },
  };
}

function showPush(data) {
  let push;
  try {
    push = data ? data.json() : {};
  } catch {
    push = {};
  }
  if (push.type !== "message" || !Number.isInteger(push.channel_id)) {
    return self.registration.showNotification("chatapp", { body: "New activity" });
  }
  const { title, options } = notificationOf(push);
  return self.registration.showNotification(title, options);
}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event.data));
});

async function openChannel(channelId) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (open) {
    open.postMessage({ type: "open-channel", channel_id: channelId });
    try {
      await open.focus();
    } catch {
      // Focusing needs the click's permission; the page has the message either way.
    }
    return;
  }
  await self.clients.openWindow(`/#/chats/${channelId}`);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const channelId = event.notification.data?.channel_id;
  if (Number.isInteger(channelId)) event.waitUntil(openChannel(channelId));
});
