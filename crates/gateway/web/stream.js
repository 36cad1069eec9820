// The live stream: one WebSocket to /v1/stream. Every frame carries its log position; after
// a drop the client reconnects with `since=<last position>` and the server resumes right
// after it (no gap, no duplicate). Listeners get 'frame' (a conversation's item), 'inbox'
// and 'queue' (something changed in an inbox or queue of mine: {inbox_id | queue_id,
// conversation_id, change, assignee | agent, position}), 'typing', 'state', 'resumed' and
// 'ended' (the session was revoked or expired: the server closed with 4001).

export class LiveStream extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.since = null;
    this.state = 'idle';
    this.failures = 0;
    this.stopped = true;
    this.typingSent = new Map();
  }

  start(token) {
    this.token = token;
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'logged out');
    this.setState('idle');
  }

  /** Drops the connection as a network failure would (the client then resumes). */
  drop() {
    if (this.ws) this.ws.close(4000, 'dropped by the client');
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  open() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${proto}//${location.host}/v1/stream?token=${encodeURIComponent(this.token)}`;
    const resuming = this.since != null;
    if (resuming) url += `&since=${this.since}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    if (this.failures > 0) this.setState('reconnecting');
    else if (this.state === 'idle') this.setState('connecting');
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const wasDown = this.failures > 0;
      this.failures = 0;
      this.setState('live');
      // Without a position to resume from, what happened while down is fetched again.
      if (wasDown) this.dispatchEvent(new CustomEvent('resumed', { detail: { resumed: resuming } }));
    };
    ws.onmessage = (m) => {
      let f;
      try {
        f = JSON.parse(m.data);
      } catch {
        return;
      }
      if (f.type === 'typing') {
        this.dispatchEvent(new CustomEvent('typing', { detail: f }));
        return;
      }
      if (typeof f.position === 'number') {
        if (this.since != null && f.position <= this.since) return;
        this.since = f.position;
      }
      if (f.type === 'inbox' || f.type === 'queue') {
        this.dispatchEvent(new CustomEvent(f.type, { detail: f }));
        return;
      }
      // Conversation frames carry no type; anything else is for a newer client.
      if (f.type != null || !f.item) return;
      this.dispatchEvent(new CustomEvent('frame', { detail: f }));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      // 4001: the session was revoked or expired; only a new login opens a stream.
      if (e.code === 4001) {
        this.stopped = true;
        this.setState('idle');
        this.dispatchEvent(new CustomEvent('ended', { detail: e.reason }));
        return;
      }
      this.failures += 1;
      this.setState('reconnecting');
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.failures, 5));
      this.timer = setTimeout(() => this.open(), delay);
    };
  }

  /** Tells the others in `conversationId` that I am typing (at most every 2 s). */
  sendTyping(conversationId) {
    const now = Date.now();
    if (now - (this.typingSent.get(conversationId) || 0) < 2000) return;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.typingSent.set(conversationId, now);
    this.ws.send(JSON.stringify({ type: 'typing', conversation_id: conversationId }));
  }

  /** The input was cleared: the others stop showing me typing (if they were). */
  stopTyping(conversationId) {
    if (!this.typingSent.has(conversationId)) return;
    this.typingSent.delete(conversationId);
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ type: 'typing_stopped', conversation_id: conversationId }));
  }

  /** After sending, the next keystroke announces typing again at once. */
  sent(conversationId) {
    this.typingSent.delete(conversationId);
  }
}
