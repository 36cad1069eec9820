// The live stream: one WebSocket to /v1/stream. Every frame carries its log position; after
// a drop the client reconnects with `since=<last position>` and the server resumes right
// after it (no gap, no duplicate). Listeners get 'frame' (a conversation's item), 'inbox'
// and 'queue' (something changed in an inbox or queue of mine: {inbox_id | queue_id,
// conversation_id, change, assignee | agent, position}), 'typing', 'state', 'resumed' and
// 'ended' (the session was revoked or expired: the server closed with 4001).
//
// Also what the stream brings to notice (`Activity`): the unread count of each sidebar
// section (Interactions: direct, external and group conversations; Channels; Inboxes: the
// unassigned and mine of the inboxes I am on; Queues: customers waiting in the queues I am
// logged into), their sum as "(N)" in the tab title, and for a message that arrives
// outside the open conversation (or while the tab is hidden) a desktop notification and a
// short sound, each if this user turned it on in this browser (Settings). The counts are
// read once (`/v1/interactions`, each inbox's open view, the pending queue view), then
// kept by the stream: a message frame and my own read frames carry my unread count of
// their conversation; a conversation the counts do not know yet, an inbox change and a
// queue change make them read again (debounced, `after` the frame's position). Nothing is
// polled.

import { api, qs } from './api.js';
import { userName, numberName } from './directory.js';
import { displayName } from './dom.js';

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

const RELOAD_MS = 200;

/** This browser's notification choices for `userId`: {desktop, sound}. */
export function notifyPrefs(userId) {
  try {
    return { desktop: false, sound: false, ...JSON.parse(localStorage.getItem(`switchboard.notify.${userId}`) || '{}') };
  } catch {
    return { desktop: false, sound: false };
  }
}

export function setNotifyPrefs(userId, prefs) {
  localStorage.setItem(`switchboard.notify.${userId}`, JSON.stringify(prefs));
}

/** Whether this browser can show desktop notifications at all. */
export function notificationsSupported() {
  return typeof window.Notification === 'function';
}

let audio = null;

/** A short two-tone chime (no sound file to fetch). Browsers allow it after a user gesture. */
export function chime() {
  try {
    audio ||= new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const t = audio.currentTime;
    for (const [freq, at] of [[880, 0], [1320, 0.12]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + at);
      gain.gain.exponentialRampToValueAtTime(0.15, t + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + at);
      osc.stop(t + at + 0.2);
    }
  } catch {
    /* no audio here */
  }
}

export class Activity extends EventTarget {
  constructor(ctx) {
    super();
    this.ctx = ctx;
    this.convs = new Map(); // conversation → {kind, title, unread}
    this.inboxConvs = new Map(); // conversation → {inbox, status, assignee, title, unread}
    this.inboxes = []; // the inboxes I am on: [{inbox_id, name}]
    this.waiting = 0;
    this.queueConvs = new Set(); // my claimed queue conversations (not in the lists above)
    this.loggedIn = new Set(); // the queues I am logged into (offered their customers)
    this.seen = 0;
    this.timers = {};
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.reloadAll();
  }

  stop() {
    this.stopped = true;
    for (const t of Object.values(this.timers)) clearTimeout(t);
  }

  after() {
    return Math.max(this.ctx.after || 0, this.seen) || null;
  }

  /** The count of each section, and their sum. */
  counts() {
    let interactions = 0;
    let channels = 0;
    for (const c of this.convs.values()) {
      if (c.kind === 'channel') channels += c.unread;
      else interactions += c.unread;
    }
    let inboxes = 0;
    for (const c of this.inboxConvs.values()) if (this.countsForMe(c)) inboxes += c.unread;
    const queues = this.waiting;
    return { interactions, channels, inboxes, queues, total: interactions + channels + inboxes + queues };
  }

  /** An inbox conversation's unread counts for me unless someone else has it. */
  countsForMe(c) {
    return c.status !== 'done' && !(c.status === 'assigned' && c.assignee !== this.ctx.me.user_id);
  }

  changed() {
    if (!this.stopped) this.dispatchEvent(new CustomEvent('change', { detail: this.counts() }));
  }

  soon(key, f, position) {
    if (typeof position === 'number') this.seen = Math.max(this.seen, position);
    clearTimeout(this.timers[key]);
    this.timers[key] = setTimeout(() => !this.stopped && f(), RELOAD_MS);
  }

  async reloadAll() {
    await Promise.all([this.loadInteractions(), this.loadInboxes(), this.loadQueues()]);
  }

  async loadInteractions() {
    try {
      const r = await api(`/v1/interactions${qs({ filter: 'all', limit: 200, after: this.after() })}`);
      if (this.stopped) return;
      this.convs = new Map(r.items.map((i) => [i.conversation_id, { kind: i.kind, title: i.title, unread: i.unread }]));
      this.changed();
    } catch {
      /* the next frame or reconnect reads again */
    }
  }

  async loadInboxes() {
    try {
      const r = await api('/v1/inboxes');
      this.inboxes = r.items.filter((i) => i.member);
      const views = await Promise.all(
        this.inboxes.map((i) =>
          api(`/v1/inboxes/${i.inbox_id}/conversations${qs({ view: 'open', limit: 100, after: this.after() })}`)
            .then((v) => v.items.map((c) => [c.conversation_id, { inbox: i.inbox_id, status: c.status, assignee: c.assignee, title: c.title, unread: c.unread }]))
            .catch(() => []),
        ),
      );
      if (this.stopped) return;
      this.inboxConvs = new Map(views.flat());
      this.changed();
    } catch {
      /* as above */
    }
  }

  async loadQueues() {
    try {
      const [pending, active, mine] = await Promise.all([
        api(`/v1/queue-views/pending${qs({ after: this.after() })}`),
        api(`/v1/queue-views/active${qs({ after: this.after() })}`),
        api(`/v1/queues${qs({ after: this.after() })}`),
      ]);
      if (this.stopped) return;
      this.loggedIn = new Set(mine.items.filter((q) => q.logged_in).map((q) => q.queue_id));
      this.waiting = pending.length;
      this.queueConvs = new Set(active.map((r) => r.conversation_id));
      this.changed();
    } catch {
      /* as above */
    }
  }

  /** The route that opens conversation `id` where it lives. */
  routeOf(id) {
    const inboxConv = this.inboxConvs.get(id);
    if (inboxConv) return `#/inboxes/${inboxConv.inbox}/open/${id}`;
    if (this.convs.get(id)?.kind === 'channel') return `#/channels/${id}`;
    if (this.queueConvs.has(id)) return `#/queues/${id}`;
    return `#/interactions/all/${id}`;
  }

  onFrame(f) {
    const id = f.conversation_id;
    const item = f.item;
    const known = this.convs.get(id) || this.inboxConvs.get(id);
    const isMessage = item.type === 'message' || item.type === 'inbound';
    if (known && typeof f.unread === 'number') {
      known.unread = f.unread;
      this.changed();
    } else if (!known && !this.queueConvs.has(id) && (isMessage || typeof f.unread === 'number')) {
      // A conversation new to me (or an inbox conversation reopened): read both again.
      this.soon('interactions', () => this.loadInteractions(), f.position);
      this.soon('inboxes', () => this.loadInboxes(), f.position);
    }
    const fromOthers = item.type === 'inbound' || (item.type === 'message' && item.author !== this.ctx.me.user_id);
    if (fromOthers) this.notify(f, known);
  }

  onInbox(f) {
    if (f.conversation_id) {
      const c = this.inboxConvs.get(f.conversation_id);
      if (c) {
        c.assignee = f.assignee;
        c.status = f.change === 'marked_done' ? 'done' : f.assignee ? 'assigned' : 'unassigned';
        this.changed();
      }
    }
    this.soon('inboxes', () => this.loadInboxes(), f.position);
  }

  onQueue(f) {
    this.soon('queues', () => this.loadQueues(), f.position);
    if (f.change === 'interaction_queued' && this.loggedIn.has(f.queue_id) && this.waitingNoticeWanted()) this.notifyWaiting(f);
  }

  onResumed() {
    this.reloadAll();
  }

  /** Whether a message of `f` deserves a notice: not the conversation I am looking at. */
  outsideView(id) {
    return document.visibilityState !== 'visible' || this.ctx.openConversation !== id;
  }

  waitingNoticeWanted() {
    return document.visibilityState !== 'visible' || !location.hash.startsWith('#/queues');
  }

  async notify(f, known) {
    const id = f.conversation_id;
    if (!this.outsideView(id)) return;
    // An inbox conversation someone else holds is theirs to answer.
    const inboxConv = this.inboxConvs.get(id);
    if (inboxConv && !this.countsForMe(inboxConv)) return;
    const prefs = notifyPrefs(this.ctx.me.user_id);
    if (!prefs.desktop && !prefs.sound) return;
    const item = f.item;
    let title = known?.title ? displayName(known.title) : null;
    if (!title) title = item.type === 'inbound' ? displayName(await numberName(item.from)) : userName(item.author);
    if (known?.kind === 'channel') title = `#${known.title}`;
    const who = item.type === 'message' && known?.kind !== 'direct' ? `${userName(item.author)}: ` : '';
    const body = `${who}${item.text || '📎 Attachment'}`.slice(0, 180);
    this.show(title, body, id, () => this.ctx.navigate(this.routeOf(id)), prefs);
  }

  notifyWaiting(f) {
    const prefs = notifyPrefs(this.ctx.me.user_id);
    if (!prefs.desktop && !prefs.sound) return;
    this.show('A customer is waiting', 'Open Queues to claim the conversation.', `queue-${f.queue_id}`, () => this.ctx.navigate('#/queues'), prefs);
  }

  show(title, body, tag, open, prefs) {
    if (prefs.sound) chime();
    if (!prefs.desktop || !notificationsSupported() || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(title, { body, tag, icon: '/assets/favicon.svg' });
      n.onclick = () => {
        window.focus();
        open();
        n.close?.();
      };
    } catch {
      /* some browsers only notify from a service worker */
    }
  }
}
