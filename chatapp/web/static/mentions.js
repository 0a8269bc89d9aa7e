// `@username` in message text, found as the server finds it: `@` and the
// longest run of username characters after it, trailing `.`, `-` and `_`
// dropped, the `@` at the start or after a character that is not a username
// character (so `a@b` names nobody). Which runs are mentions is the
// message's `mentions` list (members only), not this file's guess.

const NAME_CHAR = /^[A-Za-z0-9_.-]$/;
const TRAILING = "._-";

function isNameChar(char) {
  return char !== undefined && NAME_CHAR.test(char);
}

/** Every `@name` run of `text`: [{start, end, name}], `name` lower-cased, `end` exclusive. */
export function mentionRuns(text) {
  const runs = [];
  if (!text.includes("@")) return runs;
  for (let at = text.indexOf("@"); at !== -1; at = text.indexOf("@", at + 1)) {
    if (isNameChar(text[at - 1])) continue;
    let end = at + 1;
    while (isNameChar(text[end])) end += 1;
    let stop = end;
    while (stop > at + 1 && TRAILING.includes(text[stop - 1])) stop -= 1;
    if (stop > at + 1)
      runs.push({ start: at, end: stop, name: text.slice(at + 1, stop).toLowerCase() });
    at = end - 1;
  }
  return runs;
}

/**
 * The text cut into plain strings and mentions: [{text}] or [{text, userId}],
 * a run counting as a mention only when it names one of `mentionIds` (the
 * message's own list). `usernameOf(id)` answers a known user's username.
 */
export function mentionParts(text, mentionIds, usernameOf) {
  if (!mentionIds?.length) return [{ text }];
  const ids = new Map();
  for (const id of mentionIds) {
    const name = usernameOf(id);
    if (name) ids.set(name.toLowerCase(), id);
  }
  const parts = [];
  let cursor = 0;
  for (const run of mentionRuns(text)) {
    const userId = ids.get(run.name);
    if (userId === undefined) continue;
    if (run.start > cursor) parts.push({ text: text.slice(cursor, run.start) });
    parts.push({ text: text.slice(run.start, run.end), userId });
    cursor = run.end;
  }
  if (cursor < text.length) parts.push({ text: text.slice(cursor) });
  return parts;
}

/**
 * The mention being typed where the caret is: {start, query} with `start` the
 * index of its `@` and `query` what follows it up to the caret; null when the
 * caret is not in one.
 */
export function mentionAt(text, caret) {
  let start = caret;
  while (start > 0 && isNameChar(text[start - 1])) start -= 1;
  if (text[start - 1] !== "@") return null;
  const at = start - 1;
  if (isNameChar(text[at - 1])) return null;
  return { start: at, query: text.slice(start, caret) };
}
