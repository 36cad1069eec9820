// SMS queues: the waiting list at the top (oldest first, what I am offered in the queues I
// am logged into, each with the customer's first words) with Claim, which opens the
// conversation; my claimed conversations; my queues with whether I am logged in
// (`GET /v1/queues`), a Log in / Log out toggle and each queue's own waiting list
// (`GET /v1/queues/{id}/waiting`); the closed history with its own search, whose rows open
// the conversation read only. The open conversation is beside the lists, with Release,
// Transfer and Close (confirmed) in its header while it is mine.
// Route: #/queues/<conversation id>.
//
// Live: the stream's queue frames ({type: 'queue', queue_id, change, …}) refresh the screen
// (debounced, reading the views `after` the frame's position); nothing is polled. After a
// reconnect the screen is read once more.

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, fmtFull, debounce, announce, displayName, avatar, confirmDialog } from '../dom.js';
import { userName, numberName } from '../directory.js';
import { openThread } from '../thread.js';
import { pickUser } from './inboxes.js';

const REFRESH_MS = 150;

export function mount(root, params, ctx) {
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
  let allQueues = [];
  let pendingRows = [];
  let activeRows = [];
  let historyRows = [];
  let selected = params[0] || null;
  let thread = null;
  const firstWords = new Map(); // conversation → the customer's first words while waiting

  const threadPane = h('section', { class: 'thread-pane', 'aria-label': 'Conversation' });
  const split = h(
    'div',
    { class: 'split queues' },
    h(
      'section',
      { class: 'list-pane', 'aria-labelledby': 'queues-title' },
      h('header', {}, h('h1', { id: 'queues-title' }, 'Queues'), error),
      h(
        'div',
        { class: 'list-scroll' },
        h('section', { class: 'group', 'aria-labelledby': 'waiting-title' }, h('h2', { id: 'waiting-title' }, 'Waiting'), waiting),
        h('section', { class: 'group', 'aria-labelledby': 'mine-title' }, h('h2', { id: 'mine-title' }, 'My conversations'), mine),
        h('section', { class: 'group', 'aria-labelledby': 'myqueues-title' }, h('h2', { id: 'myqueues-title' }, 'My queues'), queuesEl),
        h(
          'section',
          { class: 'group', 'aria-labelledby': 'history-title' },
          h('h2', { id: 'history-title' }, 'History'),
          h('label', { for: 'queue-history-search', class: 'visually-hidden' }, 'Search the history'),
          historySearch,
          history,
        ),
      ),
    ),
    threadPane,
  );
  root.append(split);
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

  const open = (id) => ctx.navigate(`#/queues/${encodeURIComponent(id)}`);

  async function act(row, action, body) {
    error.textContent = '';
    try {
      const r = await api(`/v1/queues/${row.queue_id}/interactions/${row.conversation_id}/${action}`, { method: 'POST', body });
      ctx.wrote(r.position);
      await load();
      return true;
    } catch (e) {
      error.textContent = describe(e);
      load();
      return false;
    }
  }

  async function claim(row) {
    if (await act(row, 'claim')) {
      announce('Claimed: the conversation is open');
      if (selected === row.conversation_id) syncThread(true);
      else open(row.conversation_id);
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
      // An admin's list is every queue of the organization: mine are those I am an agent of.
      allQueues = mineQueues.items;
      queues = allQueues.filter((q) => q.member);
      pendingRows = pending;
      activeRows = active;
      renderWaiting(pending);
      renderMine(active);
      renderQueues();
      syncThread();
      await Promise.all([...expanded].map((id) => loadQueueWaiting(id, at)));
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  /** What the customer wrote since they started waiting (the first of it), for the list. */
  function words(row) {
    const el = h('span', { class: 'words' }, firstWords.get(row.conversation_id) || '');
    if (!firstWords.has(row.conversation_id)) {
      firstWords.set(row.conversation_id, '');
      api(`/v1/conversations/${row.conversation_id}/messages${qs({ limit: 20 })}`)
        .then((r) => {
          // The page is oldest first; a customer back after a close starts after it.
          const items = r.items;
          let from = 0;
          items.forEach((it, i) => {
            if (it.type === 'system' && it.note?.type === 'closed') from = i + 1;
          });
          const first = items.slice(from).find((it) => it.type === 'inbound') || items.filter((it) => it.type === 'inbound').pop();
          const said = first ? first.text || '📎 Attachment' : '';
          firstWords.set(row.conversation_id, said);
          for (const x of document.querySelectorAll(`#queue-waiting li[data-conversation="${row.conversation_id}"] .words`)) x.textContent = said;
        })
        .catch(() => firstWords.delete(row.conversation_id));
    }
    return el;
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
              avatar(displayName(r.customer)),
              h(
                'span',
                { class: 'grow' },
                customer(r),
                h('span', { class: 'muted small' }, ` · ${r.queue} · waiting since `, h('time', { title: fmtFull(r.at_ms) }, fmtTime(r.at_ms))),
                h('br'),
                words(r),
              ),
              h('button', { type: 'button', class: 'primary', 'aria-label': `Claim ${displayName(r.customer)}`, onclick: () => claim(r) }, 'Claim'),
            ),
          )
        : h('li', { class: 'muted' }, loggedIn ? 'Nobody is waiting in the queues you are logged into.' : 'Log in to a queue below to be offered its waiting customers.'),
    );
  }

  function renderMine(active) {
    if (same('active', [active, selected])) return;
    fill(
      mine,
      active.length
        ? active.map((r) =>
            h(
              'li',
              { dataset: { conversation: r.conversation_id } },
              h(
                'a',
                {
                  class: 'row-link',
                  href: `#/queues/${encodeURIComponent(r.conversation_id)}`,
                  'aria-current': r.conversation_id === selected ? 'true' : null,
                },
                avatar(displayName(r.customer)),
                h('span', { class: 'grow' }, customer(r), h('br'), h('span', { class: 'muted small' }, `${r.queue} · since ${fmtTime(r.at_ms)}`)),
              ),
            ),
          )
        : h('li', { class: 'muted' }, 'No claimed conversations.'),
    );
  }

  async function loadHistory() {
    try {
      const rows = await api(`/v1/queue-views/history${qs({ search: historySearch.value.trim(), after: after() })}`);
      if (unmounted) return;
      historyRows = rows;
      if (same('history', [historySearch.value, rows, selected])) return;
      fill(
        history,
        rows.length
          ? rows.map((r) =>
              h(
                'li',
                { dataset: { conversation: r.conversation_id } },
                h(
                  'a',
                  { class: 'row-link', href: `#/queues/${encodeURIComponent(r.conversation_id)}`, 'aria-current': r.conversation_id === selected ? 'true' : null },
                  h('span', { class: 'grow' }, customer(r), h('br'), h('span', { class: 'muted small' }, `${r.queue} · ${r.agent ? userName(r.agent) : 'no agent'} · `, h('time', { title: fmtFull(r.at_ms) }, fmtTime(r.at_ms)))),
                ),
              ),
            )
          : h('li', { class: 'muted' }, 'No closed conversations.'),
      );
    } catch (e) {
      error.textContent = describe(e);
    }
  }

  /** The open conversation's place: mine (active), waiting for me, or neither (closed). */
  function placeOf(id) {
    const active = activeRows.find((r) => r.conversation_id === id);
    if (active) return { kind: 'active', row: active };
    const pending = pendingRows.find((r) => r.conversation_id === id);
    if (pending) return { kind: 'pending', row: pending };
    return { kind: 'other', row: historyRows.find((r) => r.conversation_id === id) || null };
  }

  function actionsFor(place) {
    return (el) => {
      if (place.kind === 'pending') {
        el.append(h('button', { type: 'button', class: 'primary', onclick: () => claim(place.row) }, 'Claim'));
      }
      if (place.kind !== 'active') return;
      const row = place.row;
      el.append(
        h('button', { type: 'button', onclick: () => act(row, 'release').then((ok) => ok && announce('Released to the queue')) }, 'Release'),
        h(
          'button',
          {
            type: 'button',
            onclick: async () => {
              // Only an agent of this queue who is logged in to it can take it (the server
              // refuses anyone else).
              let q = allQueues.find((x) => x.queue_id === row.queue_id);
              try {
                q = (await api('/v1/queues')).items.find((x) => x.queue_id === row.queue_id) || q;
              } catch {
                /* the list as last read */
              }
              const name = q?.name || row.queue;
              const to = await pickUser(`Transfer to an agent of ${name}`, {
                only: (q?.logged_in_members || []).filter((u) => u !== ctx.me.user_id),
                label: 'Agent (logged in)',
                empty: `No other agent of ${name} is logged in. Only a logged-in agent can take the conversation.`,
              });
              if (to && (await act(row, 'transfer', { to }))) announce(`Transferred to ${userName(to)}`);
            },
          },
          'Transfer',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: async () => {
              const ok = await confirmDialog({
                title: 'Close this conversation?',
                body: `${displayName(row.customer || 'The customer')} leaves your conversations and the queue; it stays in the history. A new text from them starts again in the queue.`,
                confirm: 'Close conversation',
                danger: true,
              });
              if (ok && (await act(row, 'close'))) announce('Closed');
            },
          },
          'Close',
        ),
      );
    };
  }

  function composeFor(place) {
    if (place.kind === 'active') return { allowed: true };
    if (place.kind === 'pending') return { allowed: false, note: 'Waiting in the queue: claim it to reply.' };
    return { allowed: false, note: place.row ? 'Closed. This conversation is read only.' : 'Read only: it is not yours (closed, or with another agent).' };
  }

  let openPlace = null;

  /** Opens the selected conversation, or brings its header and reply field up to date. */
  function syncThread(force = false) {
    split.classList.toggle('has-thread', !!selected);
    if (!selected) {
      thread?.destroy();
      thread = null;
      openPlace = null;
      fill(threadPane, h('p', { class: 'empty' }, 'Claim a waiting customer, or open one of your conversations or the history.'));
      return;
    }
    const place = placeOf(selected);
    const sig = `${place.kind}|${place.row?.queue_id || ''}`;
    if (thread && thread.id === selected) {
      if (force || sig !== openPlace) {
        openPlace = sig;
        thread.setActions(actionsFor(place));
        thread.setCompose(composeFor(place));
      }
      return;
    }
    thread?.destroy();
    thread = null;
    openPlace = sig;
    const want = selected;
    fill(threadPane, h('p', { class: 'empty' }, 'Loading…'));
    api(`/v1/conversations/${encodeURIComponent(want)}${qs({ after: ctx.after })}`)
      .then((conv) => {
        if (unmounted || selected !== want || (thread && thread.id === want)) return;
        const now = placeOf(want);
        openPlace = `${now.kind}|${now.row?.queue_id || ''}`;
        thread = openThread(threadPane, conv, ctx, {
          actions: actionsFor(now),
          compose: composeFor(now),
          onBack: () => ctx.navigate('#/queues'),
        });
      })
      .catch((e) => {
        if (selected === want) fill(threadPane, h('p', { class: 'error' }, describe(e)));
      });
  }

  function renderQueues() {
    if (same('queues', [queues, [...expanded]])) return;
    const focused = document.activeElement?.closest?.('#queue-list li')?.dataset.queue;
    const focusedAction = document.activeElement?.dataset?.queueAction;
    fill(
      queuesEl,
      queues.length
        ? queues.map((q) => {
            const listId = `queue-waiting-${q.queue_id}`;
            const isOpen = expanded.has(q.queue_id);
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
                  'aria-expanded': String(isOpen),
                  'aria-controls': listId,
                  onclick: () => toggleWaiting(q.queue_id),
                },
                'Waiting list',
              ),
              h('ul', { class: 'rows sub', id: listId, hidden: !isOpen, 'aria-label': `Waiting in ${q.name}` }),
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

  function update(p) {
    selected = p[0] || null;
    lastSig.active = null;
    lastSig.history = null;
    renderMine(activeRows);
    loadHistory();
    syncThread();
  }

  syncThread();
  load();
  loadHistory();

  return {
    update,
    onFrame: (f) => thread?.onFrame(f),
    onTyping: (t) => thread?.onTyping(t),
    onQueue: (f) => refreshSoon(f.position),
    onResumed: () => {
      refreshSoon();
      thread?.onResumed();
    },
    onDirectory: () => {
      lastSig = {};
      load();
      loadHistory();
    },
    unmount: () => {
      unmounted = true;
      clearTimeout(refreshTimer);
      thread?.destroy();
    },
  };
}
