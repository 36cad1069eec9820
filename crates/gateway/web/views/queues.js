// SMS queues: the waiting list at the top (oldest first, what I am offered in the queues I
// am logged into) with Claim; my claimed conversations with Release, Transfer and Close; my
// queues with whether I am logged in (`GET /v1/queues`), a Log in / Log out toggle and each
// queue's own waiting list (`GET /v1/queues/{id}/waiting`); the closed history with its own
// search. Route: #/queues.
//
// Live: the stream's queue frames ({type: 'queue', queue_id, change, …}) refresh the screen
// (debounced, reading the views `after` the frame's position); nothing is polled. After a
// reconnect the screen is read once more.

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, fmtFull, debounce, announce, displayName } from '../dom.js';
import { userName, numberName } from '../directory.js';
import { pickUser } from './inboxes.js';

const REFRESH_MS = 150;

function storeKey(ctx) {
  return `switchboard.queues.${ctx.me.user_id}`;
}

/** Queues this browser created or saw (an admin's picker in Settings): [{id, name}]. */
export function knownQueues(ctx) {
  try {
    return JSON.parse(localStorage.getItem(storeKey(ctx)) || '[]');
  } catch {
    return [];
  }
}

export function rememberQueue(ctx, id, patch = {}) {
  const list = knownQueues(ctx);
  let q = list.find((x) => x.id === id);
  const created = !q;
  if (created) list.push((q = { id, name: null }));
  const before = JSON.stringify(q);
  Object.assign(q, Object.fromEntries(Object.entries(patch).filter(([, v]) => v != null)));
  if (created || JSON.stringify(q) !== before) localStorage.setItem(storeKey(ctx), JSON.stringify(list));
}

export function mount(root, _params, ctx) {
  const waiting = h('ul', { class: 'rows', id: 'queue-waiting', 'aria-label': 'Waiting' });
  const mine = h('ul', { class: 'rows', id: 'queue-mine', 'aria-label': 'My queue conversations' });
  const queuesEl = h('ul', { class: 'rows', id: 'queue-list', 'aria-label': 'My queues' });
  const history = h('ul', { class: 'rows', id: 'queue-history', 'aria-label': 'History' });
  const historySearch = h('input', { id: 'queue-history-search', type: 'search', placeholder: 'Customer number or queue' });
  const error = h('p', { class: 'error', role: 'alert' });
  let lastSig = {};
  let seen = 0; // the newest queue frame's position: views are read after it
  let refreshTimer = null;
  let unmounted = false;
  const expanded = new Set(); // queues whose own waiting list is shown
  let queues = [];

  root.append(
    h(
      'div',
      { class: 'page' },
      h('h2', {}, 'Queues'),
      error,
      h('section', { class: 'card', 'aria-labelledby': 'waiting-title' }, h('h3', { id: 'waiting-title' }, 'Waiting'), waiting),
      h('section', { class: 'card', 'aria-labelledby': 'mine-title' }, h('h3', { id: 'mine-title' }, 'My conversations'), mine),
      h('section', { class: 'card', 'aria-labelledby': 'myqueues-title' }, h('h3', { id: 'myqueues-title' }, 'My queues'), queuesEl),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'history-title' },
        h('h3', { id: 'history-title' }, 'History'),
        h('label', { for: 'queue-history-search', class: 'visually-hidden' }, 'Search the history'),
        historySearch,
        history,
      ),
    ),
  );
  historySearch.addEventListener('input', debounce(() => loadHistory(), 250));

  /** The position the views must include: my last write or the last frame, whichever is newer. */
  const after = () => Math.max(ctx.after || 0, seen) || null;

  const customer = (row) => {
    const el = h('span', { class: 'customer' }, row.customer ? displayName(row.customer) : 'Customer');
    if (row.customer) {
      numberName(row.customer).then((n) => {
        if (n !== row.customer) el.textContent = `${n} (${displayName(row.customer)})`;
      });
    }
    return el;
  };

  async function act(row, action, body) {
    error.textContent = '';
    try {
      const r = await api(`/v1/queues/${row.queue_id}/interactions/${row.conversation_id}/${action}`, { method: 'POST', body });
      ctx.wrote(r.position);
      await load();
    } catch (e) {
      error.textContent = describe(e);
      load();
    }
  }

  function same(key, rows) {
    const sig = JSON.stringify(rows);
    if (lastSig[key] === sig) return true;
    lastSig[key] = sig;
    return false;
  }

  async function load() {
    const at = after();
    try {
      const [pending, active, mineQueues] = await Promise.all([
        api(`/v1/queue-views/pending${qs({ after: at })}`),
        api(`/v1/queue-views/active${qs({ after: at })}`),
        api(`/v1/queues${qs({ after: at })}`),
      ]);
      if (unmounted) return;
      queues = mineQueues.items;
      for (const q of queues) rememberQueue(ctx, q.queue_id, { name: q.name });
      renderWaiting(pending);
      renderMine(active);
      renderQueues();
      await Promise.all([...expanded].map((id) => loadQueueWaiting(id, at)));
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  function renderWaiting(pending) {
    const loggedIn = queues.some((q) => q.logged_in);
    if (same('pending', [pending, loggedIn])) return;
    fill(
      waiting,
      pending.length
        ? pending.map((r) =>
            h(
              'li',
              { dataset: { conversation: r.conversation_id } },
              h('span', { class: 'grow' }, customer(r), h('span', { class: 'muted small' }, ` · ${r.queue} · waiting since `, h('time', { title: fmtFull(r.at_ms) }, fmtTime(r.at_ms)))),
              h('button', { type: 'button', class: 'primary', onclick: () => act(r, 'claim') }, 'Claim'),
            ),
          )
        : h('li', { class: 'muted' }, loggedIn ? 'Nobody is waiting in the queues you are logged into.' : 'Log in to a queue below to be offered its waiting customers.'),
    );
  }

  function renderMine(active) {
    if (same('active', active)) return;
    fill(
      mine,
      active.length
        ? active.map((r) =>
            h(
              'li',
              { dataset: { conversation: r.conversation_id } },
              h('span', { class: 'grow' }, customer(r), h('span', { class: 'muted small' }, ` · ${r.queue} · since ${fmtTime(r.at_ms)}`)),
              // The agent on a claimed conversation reads and replies in its thread.
              h('a', { class: 'button', href: `#/interactions/external/${encodeURIComponent(r.conversation_id)}` }, 'Open'),
              h('button', { type: 'button', onclick: () => act(r, 'release') }, 'Release'),
              h(
                'button',
                {
                  type: 'button',
                  onclick: async () => {
                    const to = await pickUser('Transfer to agent');
                    if (to) act(r, 'transfer', { to });
                  },
                },
                'Transfer',
              ),
              h('button', { type: 'button', class: 'danger', onclick: () => act(r, 'close') }, 'Close'),
            ),
          )
        : h('li', { class: 'muted' }, 'No claimed conversations.'),
    );
  }

  async function loadHistory() {
    try {
      const rows = await api(`/v1/queue-views/history${qs({ search: historySearch.value.trim(), after: after() })}`);
      if (unmounted || same('history', [historySearch.value, rows])) return;
      fill(
        history,
        rows.length
          ? rows.map((r) =>
              h(
                'li',
                {},
                h('span', { class: 'grow' }, customer(r), h('span', { class: 'muted small' }, ` · ${r.queue} · ${r.agent ? userName(r.agent) : 'no agent'} · ${fmtFull(r.at_ms)}`)),
              ),
            )
          : h('li', { class: 'muted' }, 'No closed conversations.'),
      );
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  /** My queues: name, whether I am logged in, how many wait; the toggle; its waiting list. */
  function renderQueues() {
    if (same('queues', [queues, [...expanded]])) return;
    const focused = document.activeElement?.closest?.('#queue-list li')?.dataset.queue;
    const focusedAction = document.activeElement?.dataset?.queueAction;
    fill(
      queuesEl,
      queues.length
        ? queues.map((q) => {
            const listId = `queue-waiting-${q.queue_id}`;
            const open = expanded.has(q.queue_id);
            return h(
              'li',
              { dataset: { queue: q.queue_id, loggedIn: String(q.logged_in) } },
              h(
                'span',
                { class: 'grow' },
                h('strong', {}, q.name),
                h('span', { class: `state ${q.logged_in ? 'on' : 'off'}` }, q.logged_in ? 'Logged in' : 'Logged out'),
                h('span', { class: 'muted small' }, ` · ${q.waiting} waiting`),
              ),
              h(
                'button',
                {
                  type: 'button',
                  class: q.logged_in ? null : 'primary',
                  dataset: { queueAction: 'toggle' },
                  'aria-label': q.logged_in ? `Log out of ${q.name}` : `Log in to ${q.name}`,
                  onclick: () => login(q, !q.logged_in),
                },
                q.logged_in ? 'Log out' : 'Log in',
              ),
              h(
                'button',
                {
                  type: 'button',
                  dataset: { queueAction: 'expand' },
                  'aria-expanded': String(open),
                  'aria-controls': listId,
                  onclick: () => toggleWaiting(q.queue_id),
                },
                'Waiting list',
              ),
              h('ul', { class: 'rows sub', id: listId, hidden: !open, 'aria-label': `Waiting in ${q.name}` }),
            );
          })
        : h('li', { class: 'muted' }, 'You are not an agent of any queue. An admin adds agents in Settings.'),
    );
    // A re-render keeps the keyboard where it was.
    if (focused && focusedAction) queuesEl.querySelector(`li[data-queue="${focused}"] [data-queue-action="${focusedAction}"]`)?.focus();
    for (const id of expanded) lastSig[`waiting-${id}`] = null;
  }

  function toggleWaiting(id) {
    if (expanded.has(id)) expanded.delete(id);
    else expanded.add(id);
    renderQueues();
    if (expanded.has(id)) loadQueueWaiting(id, after());
  }

  /** One queue's own waiting list (members see as many as its policy shows). */
  async function loadQueueWaiting(id, at) {
    const el = queuesEl.querySelector(`li[data-queue="${id}"] ul.sub`);
    if (!el) return;
    try {
      const r = await api(`/v1/queues/${id}/waiting${qs({ after: at })}`);
      if (unmounted || same(`waiting-${id}`, r.items)) return;
      fill(
        el,
        r.items.length
          ? r.items.map((w) =>
              h(
                'li',
                { dataset: { conversation: w.conversation_id } },
                h('span', { class: 'grow' }, customer(w), h('span', { class: 'muted small' }, ' · waiting since ', h('time', { title: fmtFull(w.since_ms) }, fmtTime(w.since_ms)))),
              ),
            )
          : h('li', { class: 'muted' }, 'Nobody is waiting.'),
      );
    } catch (e) {
      fill(el, h('li', { class: 'error' }, describe(e)));
    }
  }

  async function login(q, on) {
    error.textContent = '';
    try {
      const r = await api(`/v1/queues/${q.queue_id}/${on ? 'login' : 'logout'}`, { method: 'POST' });
      ctx.wrote(r.position);
      announce(on ? `Logged in to ${q.name}` : `Logged out of ${q.name}`);
      await load();
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  /** A frame about one of my queues: read the views again once the burst is over. */
  function refreshSoon(position) {
    if (typeof position === 'number') seen = Math.max(seen, position);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      load();
      loadHistory();
    }, REFRESH_MS);
  }

  load();
  loadHistory();

  return {
    onQueue: (f) => refreshSoon(f.position),
    onResumed: () => refreshSoon(),
    onDirectory: () => {
      lastSig = {};
      load();
      loadHistory();
    },
    unmount: () => {
      unmounted = true;
      clearTimeout(refreshTimer);
    },
  };
}
