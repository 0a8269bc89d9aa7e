// How times, counts and devices read to a person.

const MAX_TEXT = 100_000;

export { MAX_TEXT };

/** Length as the server counts it: code points, not UTF-16 units. */
export function codePoints(text) {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}

const number = new Intl.NumberFormat();

export function formatCount(value) {
  return number.format(value);
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const shortDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "full" });
const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function startOfDay(ms) {
  const date = new Date(ms);
  date.setHours(0, 0, 0, 0);
  return date.getTime();
}

/** For the channel list: the time today, the weekday this week, else the date. */
export function formatWhen(ms, now = Date.now()) {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days <= 0) return timeOfDay.format(ms);
  if (days < 7) return weekday.format(ms);
  return shortDate.format(ms);
}

export function formatTime(ms) {
  return timeOfDay.format(ms);
}

export function formatFull(ms) {
  return fullTime.format(ms);
}

/** A day separator's label. */
export function formatDay(ms, now = Date.now()) {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return fullDate.format(ms);
}

export function sameDay(a, b) {
  return startOfDay(a) === startOfDay(b);
}

/** "online", or when the user was last active. */
export function formatLastSeen(presence) {
  if (!presence) return "offline";
  if (presence.status === "online") return "online";
  if (!presence.last_active_at) return "offline";
  return `last seen ${formatWhen(presence.last_active_at)}`;
}

/** A device name from the browser, e.g. "Firefox on Linux". */
export function browserDeviceName(agent = navigator.userAgent, hints = navigator.userAgentData) {
  const browsers = [
    ["Edg/", "Edge"],
    ["OPR/", "Opera"],
    ["Firefox/", "Firefox"],
    ["Chrome/", "Chrome"],
    ["Chromium/", "Chromium"],
    ["Safari/", "Safari"],
  ];
  const systems = [
    ["Android", "Android"],
    ["iPhone", "iPhone"],
    ["iPad", "iPad"],
    ["Windows", "Windows"],
    ["Mac OS X", "macOS"],
    ["CrOS", "ChromeOS"],
    ["Linux", "Linux"],
  ];
  const brands = hints?.brands?.map((entry) => entry.brand) ?? [];
  const named = brands.find((brand) => !/not.?a.?brand|^chromium$/i.test(brand));
  const browser =
    named ??
    (brands.includes("Chromium") ? "Chromium" : null) ??
    browsers.find(([mark]) => agent.includes(mark))?.[1] ??
    "Browser";
  const system = hints?.platform || systems.find(([mark]) => agent.includes(mark))?.[1];
  return (system ? `${browser} on ${system}` : browser).replace(/^Google /, "").slice(0, 100);
}
