// Entry point: log in (or first-run bootstrap), then the workspace shell — navigation, the
// connection state, the live stream — and the screen named by the URL's hash.

import { api, session, setToken, setEmail, onUnauthorized } from './api.js';
import { h, fill, icon, menuButton, avatar } from './dom.js';
import { LiveStream, Activity } from './stream.js';
import { loadDirectory } from './directory.js';
import { flushOutbox } from './thread.js';
import * as login from './views/login.js';
import * as interactions from './views/interactions.js';
import * as channels from './views/channels.js';
import * as inboxes from './views/inboxes.js';
import * as queues from './views/queues.js';
import * as search from './views/search.js';
import * as contacts from './views/contacts.js';
import * as settings from './views/settings.js';
import * as webhooks from './views/webhooks.js';

// The first four are the phone's bottom tabs; the others are under its More menu.
const SCREENS = [
  { name: 'interactions', label: 'Interactions', icon: 'chat', view: interactions, tab: true },
  { name: 'channels', label: 'Channels', icon: 'hash', view: channels, tab: true },
  { name: 'inboxes', label: 'Inboxes', icon: 'inbox', view: inboxes, tab: true },
  { name: 'queues', label: 'Queues', icon: 'queue', view: queues, tab: true },
  { name: 'search', label: 'Search', icon: 'search', view: search },
  { name: 'contacts', label: 'Contacts', icon: 'contacts', view: contacts },
  { name: 'settings', label: 'Settings', icon: 'settings', view: settings },
  // Admins only (the server refuses everyone else anyway).
  { name: 'webhooks', label: 'Webhooks', icon: 'webhooks', view: webhooks, admin: true },
];

const root = document.getElementById('app');
const stream = new LiveStream();
// Exposed for the browser tests (they drop the connection to check the resume).
window.switchboard = { stream };

const ctx = {
  me: null,
  stream,
  /** The position of my last write, for the next list query (read your writes). */
  after: null,
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  wrote(position) {
    if (typeof position === 'number') ctx.after = Math.max(ctx.after || 0, position);
  },
  logout,
  /** The conversation shown now (set by the open thread): no notice for its messages. */
  openConversation: null,
};
const activity = new Activity(ctx);
ctx.activity = activity;
window.switchboard.activity = activity;
let screenTitle = 'Switchboard';

let current = null; // { screen, instance }
let navLinks = new Map();
let moreButton = null;
let connEl = null;

stream.addEventListener('state', (e) => {
  if (connEl) showConnection(connEl, e.detail);
  // The connection is back: what waited for it is sent (with its first key).
  if (e.detail === 'live' && ctx.me) flushOutbox(ctx);
});
window.addEventListener('online', () => {
  if (connEl) showConnection(connEl, stream.state);
  if (ctx.me) flushOutbox(ctx);
});
window.addEventListener('offline', () => connEl && showConnection(connEl, stream.state));
stream.addEventListener('frame', (e) => {
  current?.instance.onFrame?.(e.detail);
  activity.onFrame(e.detail);
});
stream.addEventListener('inbox', (e) => {
  current?.instance.onInbox?.(e.detail);
  activity.onInbox(e.detail);
});
stream.addEventListener('queue', (e) => {
  current?.instance.onQueue?.(e.detail);
  activity.onQueue(e.detail);
});
stream.addEventListener('typing', (e) => current?.instance.onTyping?.(e.detail));
stream.addEventListener('resumed', (e) => {
  current?.instance.onResumed?.(e.detail);
  activity.onResumed();
});
activity.addEventListener('change', (e) => showCounts(e.detail));

/** The sections' unread counts on the navigation, their sum in the tab's title. */
function showCounts(counts) {
  for (const [name, a] of navLinks) {
    const n = counts[name] || 0;
    const badge = a.querySelector('.nav-count');
    if (!badge) continue;
    badge.textContent = n > 99 ? '99+' : String(n);
    badge.hidden = n === 0;
    const what = name === 'queues' ? 'waiting' : 'unread';
    badge.setAttribute('aria-label', `${n} ${what}`);
  }
  document.title = counts.total > 0 ? `(${counts.total}) ${screenTitle}` : screenTitle;
}
// Logged out elsewhere (this session revoked) or expired: back to the login screen.
stream.addEventListener('ended', () => {
  if (session.token) logout(false);
});

async function boot() {
  onUnauthorized(() => {
    if (session.token) logout(false);
  });
  if (session.token) {
    try {
      ctx.me = session.me = await api('/v1/me');
    } catch {
      setToken(null);
    }
  }
  if (ctx.me) startWorkspace();
  else showLogin();
}

function showLogin() {
  root.removeAttribute('aria-busy');
  login.mount(root, async (token, email) => {
    setToken(token);
    setEmail(email);
    ctx.me = session.me = await api('/v1/me');
    startWorkspace();
  });
}

async function logout(callServer = true) {
  // The stream stops first, so the server closing it (4001) is not taken for a logout
  // from elsewhere.
  stream.stop();
  stream.since = null;
  activity.stop();
  if (callServer) {
    try {
      await api('/v1/sessions/current', { method: 'DELETE' });
    } catch {
      /* the token goes anyway */
    }
  }
  current?.instance.unmount?.();
  current = null;
  setToken(null);
  ctx.me = session.me = null;
  window.removeEventListener('hashchange', route);
  history.replaceState(null, '', '#/');
  showLogin();
}

function startWorkspace() {
  const conn = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite', hidden: true });
  navLinks = new Map();
  const shown = SCREENS.filter((s) => !s.admin || ctx.me.role === 'admin');
  const links = shown.map((s) => {
    const a = h(
      'a',
      { href: `#/${s.name}`, id: `nav-${s.name}` },
      h('span', { class: 'nav-icon' }, icon(s.icon), h('span', { class: 'nav-count badge', hidden: true })),
      h('span', { class: 'nav-label' }, s.label),
    );
    navLinks.set(s.name, a);
    return h('li', { class: s.tab ? 'tab' : 'secondary' }, a);
  });
  // On a phone the bottom bar has four tabs and More, which opens the other screens.
  const morePanel = h(
    'ul',
    { class: 'more-menu', id: 'nav-more-menu', 'aria-label': 'More screens' },
    shown.filter((s) => !s.tab).map((s) => h('li', {}, h('a', { href: `#/${s.name}` }, icon(s.icon), s.label))),
  );
  moreButton = h(
    'button',
    { type: 'button', class: 'nav-more-button', 'aria-haspopup': 'true' },
    h('span', { class: 'nav-icon' }, icon('more')),
    h('span', { class: 'nav-label' }, 'More'),
  );
  menuButton(moreButton, morePanel);
  links.push(h('li', { class: 'nav-more' }, moreButton, morePanel));
  const main = h('main', { id: 'main', tabindex: '-1' });
  fill(
    root,
    h(
      'div',
      { class: 'shell' },
      h(
        'header',
        { class: 'topbar' },
        h('span', { class: 'brand' }, 'Switchboard'),
        h('span', { class: 'muted' }, ctx.me.organization),
        conn,
        h('a', { class: 'who', href: '#/settings', 'aria-label': `Your profile: ${ctx.me.name}, extension ${ctx.me.extension}` }, avatar(ctx.me.name, { size: 'small' }), h('span', {}, `${ctx.me.name} · ext ${ctx.me.extension}`)),
      ),
      h('nav', { class: 'sidebar', 'aria-label': 'Workspace' }, h('ul', {}, links)),
      main,
    ),
  );
  root.removeAttribute('aria-busy');
  connEl = conn;
  stream.start(session.token);
  activity.start();
  loadDirectory().then(() => current?.instance.onDirectory?.());
  ctx.main = main;
  window.addEventListener('hashchange', route);
  route();
}

function showConnection(el, state) {
  const offline = !navigator.onLine;
  el.hidden = !offline && (state === 'live' || state === 'idle');
  el.classList.toggle('down', offline || state === 'reconnecting');
  el.textContent = offline ? 'Offline — what you send waits' : state === 'reconnecting' ? 'Reconnecting…' : state === 'connecting' ? 'Connecting…' : '';
  el.dataset.state = state;
}

function route() {
  if (!ctx.me) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const screen = SCREENS.find((s) => s.name === parts[0]) || SCREENS[0];
  const params = parts.slice(1);
  for (const [name, a] of navLinks) {
    if (name === screen.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  moreButton?.classList.toggle('current', !screen.tab);
  screenTitle = `${screen.label} · Switchboard`;
  showCounts(activity.counts());
  if (current && current.screen === screen) {
    current.instance.update?.(params);
    return;
  }
  current?.instance.unmount?.();
  fill(ctx.main);
  current = { screen, instance: screen.view.mount(ctx.main, params, ctx) };
}

boot();
