// Building DOM nodes. User text only ever becomes a Text node (or
// textContent), never markup: there is no innerHTML anywhere in the client.

/**
 * h("button", {class: "primary", onclick: fn, "aria-label": "Send"}, "Send")
 * Attributes starting with "on" become listeners; `false`/`null` are skipped;
 * children are nodes or strings (turned into Text nodes).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of `element` with `children`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A presence dot that screen readers hear as "online" or "offline". */
export function presenceDot(status) {
  const online = status === "online";
  return h("span", {
    class: `presence ${online ? "online" : "offline"}`,
    role: "img",
    "aria-label": online ? "online" : "offline",
    title: online ? "online" : "offline",
  });
}

/** The first letters of a name, for an avatar. */
export function avatar(name, extraClass = "") {
  const letters = [...(name || "?").trim()].slice(0, 1).join("").toUpperCase() || "?";
  let hash = 0;
  for (const char of name || "") hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return h(
    "span",
    { class: `avatar hue-${hash % 8} ${extraClass}`, "aria-hidden": "true" },
    letters,
  );
}

/**
 * Make `parent`'s children exactly `nodes`, in order, touching only what
 * differs: nodes already in place stay put (keeping focus and not being
 * announced again by screen readers).
 */
export function reconcile(parent, nodes) {
  const wanted = new Set(nodes);
  for (const child of [...parent.children]) if (!wanted.has(child)) child.remove();
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(node, cursor);
    }
  }
}
