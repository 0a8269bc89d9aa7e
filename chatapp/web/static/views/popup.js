// Small panels anchored to a button: a message's actions menu, the emoji
// picker, who has seen a message. One is open at a time. It takes the focus
// when it opens; Escape closes it and gives the focus back to its button;
// a click elsewhere or Tab closes it too. Menus move between their items with
// the arrow keys, Home and End.

import { h } from "../dom.js";

const GAP_PX = 4;
const EDGE_PX = 8;

export class Popups {
  /** `container` is positioned (relative) and does not scroll; panels go inside it. */
  constructor(container) {
    this.container = container;
    this.current = null;
    this.onPointerDown = (event) => {
      const open = this.current;
      if (open && !open.panel.contains(event.target) && !open.anchor.contains(event.target)) {
        this.close(false);
      }
    };
    document.addEventListener("pointerdown", this.onPointerDown, true);
  }

  destroy() {
    this.close(false);
    document.removeEventListener("pointerdown", this.onPointerDown, true);
  }

  isOpenFor(anchor) {
    return this.current?.anchor === anchor;
  }

  /**
   * Show `content` by `anchor`. `role` is "menu" (items are its
   * [role=menuitem] buttons) or "dialog" (focused as a whole).
   */
  show(anchor, content, { role = "menu", label, className = "" } = {}) {
    this.close(false);
    const panel = h(
      "div",
      { class: `popup ${className}`.trim(), role, "aria-label": label, tabindex: "-1" },
      content,
    );
    panel.addEventListener("keydown", (event) => this.keydown(event));
    anchor.setAttribute("aria-expanded", "true");
    this.current = { anchor, panel, role };
    this.container.append(panel);
    this.place();
    const first = this.items()[0];
    (role === "menu" && first ? first : panel).focus();
    return panel;
  }

  /** Close the open panel; with `refocus`, the focus goes back to its button. */
  close(refocus = true) {
    const open = this.current;
    if (!open) return;
    this.current = null;
    open.anchor.setAttribute("aria-expanded", "false");
    open.panel.remove();
    if (refocus && open.anchor.isConnected) open.anchor.focus();
  }

  /** Keep the panel by its button (after a scroll or a render); close it if the button went. */
  place() {
    const open = this.current;
    if (!open) return;
    if (!open.anchor.isConnected || open.anchor.closest("[hidden]")) {
      this.close(false);
      return;
    }
    const box = this.container.getBoundingClientRect();
    const at = open.anchor.getBoundingClientRect();
    const { panel } = open;
    const width = panel.offsetWidth;
    const height = panel.offsetHeight;
    let top = at.bottom - box.top + GAP_PX;
    if (top + height > box.height - EDGE_PX) top = at.top - box.top - height - GAP_PX;
    let left = at.right - box.left - width;
    if (left < EDGE_PX) left = Math.min(at.left - box.left, box.width - width - EDGE_PX);
    panel.style.top = `${Math.max(EDGE_PX, top)}px`;
    panel.style.left = `${Math.max(EDGE_PX, left)}px`;
  }

  items() {
    return this.current ? [...this.current.panel.querySelectorAll("[role^=menuitem]")] : [];
  }

  keydown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close(true);
      return;
    }
    if (event.key === "Tab") {
      // The focus goes on from the button, as if the panel had not been there.
      this.close(true);
      return;
    }
    if (this.current?.role !== "menu") return;
    const items = this.items();
    const index = items.indexOf(document.activeElement);
    const moves = {
      ArrowDown: index + 1,
      ArrowRight: index + 1,
      ArrowUp: index - 1,
      ArrowLeft: index - 1,
      Home: 0,
      End: items.length - 1,
    };
    if (!(event.key in moves) || !items.length) return;
    event.preventDefault();
    const next = (moves[event.key] + items.length) % items.length;
    items[next].focus();
  }
}

/** A menu's item: a button that runs `action` once the menu is closed. */
export function menuItem(popups, label, action, { className = "" } = {}) {
  return h(
    "button",
    {
      type: "button",
      role: "menuitem",
      class: `menu-item ${className}`.trim(),
      tabindex: "-1",
      onclick: () => {
        popups.close(false);
        action();
      },
    },
    label,
  );
}
