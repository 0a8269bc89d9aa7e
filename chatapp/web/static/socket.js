// The WebSocket half of protocol version 1: hello with last_seq, replay and
// synced, heartbeats at the announced interval, a watchdog for silent paths,
// and reconnection with capped, jittered exponential backoff.

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_TOO_MANY_CONNECTIONS = 4429;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const BACKOFF_CROWDED_MS = 10_000;
const DEFAULT_HEARTBEAT_MS = 5_000;

/**
 * Events (all CustomEvent, the payload in `detail`):
 * - "state": {state, retryAt}; state is connecting | syncing | online | offline | stopped
 * - "frame": a server frame other than ready/synced/heartbeat_ack (inbox
 *   entries, `message` and `update`, advance last_seq once handled)
 * - "synced": {reconnected}, once caught up after each (re)connection
 * - "unauthorized": the token was refused or revoked (close code 4401)
 */
export class ChatSocket extends EventTarget {
  /**
   * `discover`, when given, is asked for the URL before each reconnection (an
   * async function answering a URL, or null to keep the one known): in a
   * cluster the node that dropped the socket may be gone for good.
   */
  constructor({ url, token, deviceId, storage = window.localStorage, discover = null }) {
    super();
    this.url = url;
    this.discover = discover;
    this.token = token;
    this.storage = storage;
    this.seqKey = `chatapp.lastSeq.${deviceId}`;
    this.state = "offline";
    this.retryAt = null;
    this.ws = null;
    this.attempts = 0;
    this.connections = 0;
    this.heartbeatMs = DEFAULT_HEARTBEAT_MS;
    this.timers = { heartbeat: null, retry: null };
    this.lastFrameAt = 0;
    this.onOnline = () => this.reconnectNow();
  }

  get lastSeq() {
    const raw = this.storage.getItem(this.seqKey);
    const value = raw === null ? null : Number(raw);
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  }

  set lastSeq(seq) {
    const current = this.lastSeq;
    if (current === null || seq > current) this.storage.setItem(this.seqKey, String(seq));
  }

  forgetLastSeq() {
    this.storage.removeItem(this.seqKey);
  }

  start() {
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    window.removeEventListener("online", this.onOnline);
    this.setState("stopped");
    this.clearTimers();
    if (this.ws) {
      this.detach(this.ws);
      this.ws.close(1000, "bye");
      this.ws = null;
    }
  }

  /** Send a frame now; false when the connection is not up (the caller keeps it). */
  send(frame) {
    if (this.state !== "online" || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Skip the backoff wait, e.g. when the browser says the network is back. */
  reconnectNow() {
    if (this.state !== "offline") return;
    this.attempts = 0;
    this.reconnect();
  }

  /** Ask where to connect (when there is a `discover`), then connect there. */
  async reconnect() {
    this.clearTimers();
    this.setState("connecting");
    if (this.discover) {
      try {
        this.url = (await this.discover()) || this.url;
      } catch {
        // Discovery is down too: the URL known may still work.
      }
      if (this.state !== "connecting") return; // stopped, or reconnected meanwhile
    }
    this.connect();
  }

  connect() {
    this.clearTimers();
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: "hello", token: this.token };
      const lastSeq = this.lastSeq;
      // Without last_seq nothing is replayed: a new device reads history per channel.
      if (lastSeq !== null) hello.last_seq = lastSeq;
      ws.send(JSON.stringify(hello));
      this.lastFrameAt = Date.now();
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.dropped(event.code);
    ws.onerror = () => {}; // onclose follows and decides
  }

  receive(data) {
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "ready":
        this.heartbeatMs = frame.heartbeat_interval_ms || DEFAULT_HEARTBEAT_MS;
        this.startHeartbeat();
        this.setState("syncing");
        break;
      case "synced":
        this.lastSeq = frame.seq;
        if (frame.has_more) {
          this.ws.send(JSON.stringify({ type: "sync", since: frame.seq }));
        } else if (this.state === "syncing") {
          this.attempts = 0;
          this.setState("online");
          this.connections += 1;
          this.emit("synced", { reconnected: this.connections > 1 });
        }
        break;
      case "heartbeat_ack":
        break;
      case "message":
      case "update":
        this.emit("frame", frame);
        // Only after the frame is handled: a crash in between replays it.
        this.lastSeq = frame.seq;
        break;
      default:
        this.emit("frame", frame);
    }
  }

  startHeartbeat() {
    clearInterval(this.timers.heartbeat);
    // A path that silently stopped delivering shows as no answer to
    // heartbeats; waiting for TCP to notice could take minutes.
    const silentLimit = this.heartbeatMs * 2.5 + 1000;
    this.timers.heartbeat = setInterval(() => {
      if (Date.now() - this.lastFrameAt > silentLimit) {
        this.dropped(1006);
        return;
      }
      if (this.ws?.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "heartbeat" }));
      }
    }, this.heartbeatMs);
  }

  dropped(code) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      this.detach(ws);
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
    }
    this.clearTimers();
    if (this.state === "stopped") return;
    if (code === CLOSE_UNAUTHORIZED) {
      this.setState("stopped");
      this.emit("unauthorized", {});
      return;
    }
    this.scheduleReconnect(code === CLOSE_TOO_MANY_CONNECTIONS ? BACKOFF_CROWDED_MS : 0);
  }

  scheduleReconnect(atLeastMs = 0) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempts);
    // Full jitter on the upper half: many clients cut at once do not return at once.
    const delay = Math.max(atLeastMs, ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempts += 1;
    this.retryAt = Date.now() + delay;
    this.setState("offline");
    this.timers.retry = setTimeout(() => this.reconnect(), delay);
  }

  detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  clearTimers() {
    clearInterval(this.timers.heartbeat);
    clearTimeout(this.timers.retry);
    this.timers.heartbeat = this.timers.retry = null;
  }

  setState(state) {
    if (state !== "offline") this.retryAt = null;
    this.state = state;
    this.emit("state", { state, retryAt: this.retryAt });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Where to open the socket: the ws_url the server announced, unless it names
 * an address this browser cannot mean (0.0.0.0, or a loopback name other than
 * the one the page was loaded from); then the page's own server.
 */
export function socketUrl(announced, page = window.location) {
  const own = `${page.protocol === "https:" ? "wss:" : "ws:"}//${page.host}/ws`;
  let url;
  try {
    url = new URL(announced);
  } catch {
    return own;
  }
  const host = url.hostname;
  const unspecified = host === "0.0.0.0" || host === "[::]";
  const loopback = host === "localhost" || host === "[::1]" || host.startsWith("127.");
  if (unspecified || (loopback && host !== page.hostname)) return own;
  return url.href;
}
