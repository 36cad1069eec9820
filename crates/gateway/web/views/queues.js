// SMS queues: the waiting list at the top (oldest first) with Claim; my claimed
// conversations with Release, Transfer and Close; logging in and out of my queues; the
// closed history with its own search. Route: #/queues.
//
// The queues shown are the organization's queue numbers (`GET /v1/numbers`), those seen in
// the views and any added by id. The API has no agent login state to read: "logged in" is
// what this browser last did (or a queue whose waiting work I am offered).

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, fmtFull, debounce } from '../dom.js';
import { userName, numberName, directoryReady, routedNumbers } from '../directory.js';
import { pickUser } from './inboxes.js';

const POLL_MS = 2000;

function storeKey(ctx) {
  return `switchboard.queues.${ctx.me.user_id}`;
}

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
  if (created) list.push((q = { id, name: null, loggedIn: null }));
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
  const addId = h('input', { id: 'queue-add-id', placeholder: 'Queue id' });
  const error = h('p', { class: 'error', role: 'alert' });
  let poll = null;
  let lastSig = {};

  const addForm = h(
    'form',
    { class: 'form-row' },
    h('div', {}, h('label', { for: 'queue-add-id' }, 'Add a queue by its id'), addId),
    h('button', { type: 'submit' }, 'Add'),
  );
  addForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (addId.value.trim()) rememberQueue(ctx, addId.value.trim());
    addId.value = '';
    renderQueues();
  });

  root.append(
    h(
      'div',
      { class: 'page' },
      h('h2', {}, 'Queues'),
      error,
      h('section', { class: 'card', 'aria-labelledby': 'waiting-title' }, h('h3', { id: 'waiting-title' }, 'Waiting'), waiting),
      h('section', { class: 'card', 'aria-labelledby': 'mine-title' }, h('h3', { id: 'mine-title' }, 'My conversations'), mine),
      h('section', { class: 'card', 'aria-labelledby': 'myqueues-title' }, h('h3', { id: 'myqueues-title' }, 'My queues'), queuesEl, addForm),
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

  const customer = (row) => {
    const el = h('span', {}, row.customer || 'Customer');
    if (row.customer) numberName(row.customer).then((n) => (el.textContent = n === row.customer ? n : `${n} (${row.customer})`));
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
    const after = ctx.after;
    try {
      const [pending, active] = await Promise.all([
        api(`/v1/queue-views/pending${qs({ after })}`),
        api(`/v1/queue-views/active${qs({ after })}`),
      ]);
      for (const r of [...pending, ...active]) rememberQueue(ctx, r.queue_id, { name: r.queue });
      for (const r of pending) rememberQueue(ctx, r.queue_id, { loggedIn: true });
      if (!same('pending', pending)) {
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
            : h('li', { class: 'muted' }, 'Nobody is waiting in the queues you are logged into.'),
        );
      }
      if (!same('active', active)) {
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
      renderQueues();
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  async function loadHistory() {
    try {
      const rows = await api(`/v1/queue-views/history${qs({ search: historySearch.value.trim(), after: ctx.after })}`);
      for (const r of rows) rememberQueue(ctx, r.queue_id, { name: r.queue });
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

  function renderQueues() {
    const queues = knownQueues(ctx);
    if (same('queues', queues)) return;
    fill(
      queuesEl,
      queues.length
        ? queues.map((q) =>
            h(
              'li',
              { dataset: { queue: q.id } },
              h('span', { class: 'grow' }, q.name || `Queue ${q.id.slice(0, 8)}`, h('span', { class: 'muted small' }, q.loggedIn == null ? '' : q.loggedIn ? ' · logged in' : ' · logged out')),
              h('button', { type: 'button', onclick: () => login(q, true), 'aria-label': `Log in to ${q.name || 'queue'}` }, 'Log in'),
              h('button', { type: 'button', onclick: () => login(q, false), 'aria-label': `Log out of ${q.name || 'queue'}` }, 'Log out'),
            ),
          )
        : h('li', { class: 'muted' }, 'No queues yet. An admin creates queues and adds agents in Settings.'),
    );
  }

  async function login(q, on) {
    error.textContent = '';
    try {
      const r = await api(`/v1/queues/${q.id}/${on ? 'login' : 'logout'}`, { method: 'POST' });
      ctx.wrote(r.position);
      rememberQueue(ctx, q.id, { loggedIn: on });
      renderQueues();
      load();
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  directoryReady().then(async () => {
    for (const r of routedNumbers().filter((x) => x.kind === 'queue')) {
      if (!knownQueues(ctx).some((q) => q.id === r.id && q.name)) rememberQueue(ctx, r.id, { name: await numberName(r.number) });
    }
    renderQueues();
  });
  load();
  loadHistory();
  poll = setInterval(() => {
    if (document.visibilityState === 'visible') load();
  }, POLL_MS);

  return {
    onFrame: () => load(),
    onResumed: () => load(),
    onDirectory: () => {
      lastSig = {};
      load();
    },
    unmount: () => clearInterval(poll),
  };
}
