// Friends: requests in and out, accepting, removing, and who is online.

import { avatar, h, presenceDot, replace } from "../dom.js";
import { formatLastSeen } from "../format.js";

/**
 * `actions`: request(username) -> status text, accept(userId),
 * remove(userId), message(userId), refresh().
 */
export class FriendsView {
  constructor(state, actions) {
    this.state = state;
    this.actions = actions;
    this.onChange = (event) => {
      if (["friends", "presence", "users"].includes(event.detail.what)) this.render();
    };
    state.addEventListener("change", this.onChange);

    this.input = h("input", {
      id: "friend-username",
      name: "username",
      autocomplete: "off",
      autocapitalize: "none",
      spellcheck: "false",
      placeholder: "username",
      required: true,
    });
    this.result = h("p", { class: "form-note", role: "status" });
    const form = h(
      "form",
      { class: "inline-form", "aria-labelledby": "add-friend-title" },
      h("label", { for: this.input.id, class: "visually-hidden" }, "Username to add as a friend"),
      this.input,
      h("button", { type: "submit", class: "primary" }, "Send request"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = this.input.value;
      this.result.textContent = "";
      try {
        this.result.textContent = await actions.request(name);
        this.input.value = "";
      } catch (error) {
        this.result.textContent = error.message;
      }
    });

    this.incoming = h("ul", { class: "people", "aria-labelledby": "incoming-title" });
    this.outgoing = h("ul", { class: "people", "aria-labelledby": "outgoing-title" });
    this.friends = h("ul", { class: "people", "aria-labelledby": "friends-title" });
    this.incomingSection = h(
      "section",
      { class: "card" },
      h("h3", { id: "incoming-title" }, "Requests for you"),
      this.incoming,
    );
    this.outgoingSection = h(
      "section",
      { class: "card" },
      h("h3", { id: "outgoing-title" }, "Waiting for an answer"),
      this.outgoing,
    );
    this.element = h(
      "section",
      { class: "friends-page", "aria-labelledby": "friends-page-title" },
      h(
        "header",
        { class: "page-header" },
        h("a", { href: "#/chats", class: "back", "aria-label": "Back to chats" }, "‹"),
        h("h2", { id: "friends-page-title" }, "Friends"),
      ),
      h(
        "div",
        { class: "page-body" },
        h(
          "section",
          { class: "card" },
          h("h3", { id: "add-friend-title" }, "Add a friend"),
          form,
          this.result,
        ),
        this.incomingSection,
        this.outgoingSection,
        h(
          "section",
          { class: "card" },
          h("h3", { id: "friends-title" }, "Your friends"),
          this.friends,
        ),
      ),
    );
    this.render();
    actions.refresh();
  }

  destroy() {
    this.state.removeEventListener("change", this.onChange);
  }

  render() {
    const state = this.state;
    const { incoming, outgoing } = state.requests;
    this.incomingSection.hidden = incoming.length === 0;
    this.outgoingSection.hidden = outgoing.length === 0;
    replace(
      this.incoming,
      incoming.map((user) =>
        this.person(user, null, [
          this.button("Accept", `Accept ${user.username}`, "primary small", () =>
            this.actions.accept(user.user_id),
          ),
          this.button("Decline", `Decline ${user.username}`, "secondary small", () =>
            this.actions.remove(user.user_id),
          ),
        ]),
      ),
    );
    replace(
      this.outgoing,
      outgoing.map((user) =>
        this.person(user, "request sent", [
          this.button("Cancel", `Cancel the request to ${user.username}`, "secondary small", () =>
            this.actions.remove(user.user_id),
          ),
        ]),
      ),
    );
    const friends = [...state.friends]
      .map((id) => state.users.get(id))
      .filter(Boolean)
      .sort((a, b) => {
        const online = (user) => (state.statusOf(user.user_id) === "online" ? 0 : 1);
        return online(a) - online(b) || a.display_name.localeCompare(b.display_name);
      });
    replace(
      this.friends,
      friends.length
        ? friends.map((user) =>
            this.person(
              user,
              formatLastSeen(state.presence.get(user.user_id)),
              [
                this.button("Message", `Message ${user.username}`, "primary small", () =>
                  this.actions.message(user.user_id),
                ),
                this.button(
                  "Remove",
                  `Remove ${user.username} from friends`,
                  "secondary small",
                  () => {
                    if (window.confirm(`Remove ${user.display_name} from your friends?`))
                      this.actions.remove(user.user_id);
                  },
                ),
              ],
              true,
            ),
          )
        : [h("li", { class: "empty-hint" }, "No friends yet. Send a request by username above.")],
    );
  }

  person(user, note, buttons, withPresence = false) {
    const status = this.state.statusOf(user.user_id);
    return h(
      "li",
      { class: "person", dataset: { userId: user.user_id, username: user.username } },
      h(
        "span",
        { class: "avatar-wrap" },
        avatar(user.display_name),
        withPresence ? presenceDot(status) : null,
      ),
      h(
        "span",
        { class: "person-text" },
        h(
          "button",
          {
            type: "button",
            class: "person-name profile-link",
            "aria-haspopup": "dialog",
            "aria-label": `Profile of ${user.username}`,
            onclick: (event) => this.actions.profile(user.user_id, event.currentTarget),
          },
          user.display_name,
        ),
        h("span", { class: "person-note" }, `@${user.username}${note ? ` · ${note}` : ""}`),
      ),
      h("span", { class: "person-actions" }, buttons),
    );
  }

  button(text, label, className, onclick) {
    return h("button", { type: "button", class: className, "aria-label": label, onclick }, text);
  }
}
