// Pages of a channel's history over HTTP: the newest page, older pages as the
// person scrolls up (or reaches for a quoted message), gaps after a live
// message, and single messages fetched only to be quoted.
//
// Each page is merged with the update clock read when it was asked for, so
// an edit or reaction that arrived on the socket meanwhile is not lost.

const PAGE = 50;
const MAX_PAGE = 200;
// Messages shown above a quoted one that history was paged back to.
const CONTEXT = 5;

export class HistoryPages {
  /** `ensurePeople(messages)` fetches the users that messages name. */
  constructor(api, state, ensurePeople) {
    this.api = api;
    this.state = state;
    this.ensurePeople = ensurePeople;
  }

  /** One page load at a time per channel; a second caller waits for the first. */
  run(channelId, work) {
    const history = this.state.history(channelId);
    if (history.pendingPage) return history.pendingPage;
    history.loading = true;
    this.state.changed("messages", { channelId });
    history.pendingPage = (async () => {
      try {
        await work(history, this.state.updateClock);
      } finally {
        history.loading = false;
        history.pendingPage = null;
        this.state.changed("messages", { channelId });
      }
    })();
    return history.pendingPage;
  }

  loadLatest(channelId) {
    return this.run(channelId, async (history, since) => {
      const page = await this.api.messages(channelId, { limit: PAGE });
      await this.ensurePeople(page.messages);
      history.merge(page.messages, since);
      history.hasMoreBefore = page.has_more;
      history.loaded = true;
      if (page.messages.length)
        this.state.setPreview(channelId, page.messages[page.messages.length - 1]);
    });
  }

  /** The page just below the oldest loaded message (`limit` up to 200). */
  loadOlder(channelId, { limit = PAGE } = {}) {
    const history = this.state.history(channelId);
    if (!history.pendingPage && !history.hasMoreBefore) return Promise.resolve();
    return this.run(channelId, async (current, since) => {
      if (!current.hasMoreBefore) return;
      const page = await this.api.messages(channelId, { before: current.oldestId, limit });
      await this.ensurePeople(page.messages);
      current.merge(page.messages, since);
      current.hasMoreBefore = page.has_more;
    });
  }

  /**
   * Page back until `messageId` is loaded, in pages as large as needed so the
   * run of history stays unbroken. True when it is there.
   */
  async reach(channelId, messageId) {
    const history = this.state.history(channelId);
    while (!history.byId.has(messageId)) {
      if (history.pendingPage) {
        await history.pendingPage;
        continue;
      }
      const oldest = history.oldestId;
      if (!history.hasMoreBefore || oldest === undefined || oldest <= messageId) return false;
      const limit = Math.min(MAX_PAGE, oldest - messageId + CONTEXT);
      await this.loadOlder(channelId, { limit });
    }
    return true;
  }

  /** Fetch what lies between the newest loaded message and a newer live one. */
  async fillGap(channelId, afterId) {
    const history = this.state.history(channelId);
    let after = afterId;
    for (;;) {
      const since = this.state.updateClock;
      const page = await this.api.messages(channelId, { after, limit: MAX_PAGE });
      await this.ensurePeople(page.messages);
      history.merge(page.messages, since);
      this.state.changed("messages", { channelId });
      if (!page.has_more || !page.messages.length) return;
      after = page.messages[page.messages.length - 1].message_id;
    }
  }

  /** A message older than the loaded ones, fetched once to show it in a reply's quote. */
  async quote(channelId, messageId) {
    const history = this.state.history(channelId);
    if (history.get(messageId) || history.quoting.has(messageId)) return;
    history.quoting.add(messageId);
    try {
      const since = this.state.updateClock;
      const page = await this.api.messages(channelId, { before: messageId + 1, limit: 1 });
      const [message] = page.messages;
      if (message?.message_id !== messageId) {
        history.missing.add(messageId);
        return;
      }
      await this.ensurePeople([message]);
      history.addQuoted(message, since);
    } catch {
      history.quoting.delete(messageId); // asked again at the next render
      return;
    } finally {
      this.state.changed("messages", { channelId });
    }
  }
}
