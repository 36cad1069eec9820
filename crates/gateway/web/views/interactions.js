// Interactions: my conversations, newest activity first, with the All / External / Direct /
// Channels filters, unread badges and last-message previews; the open conversation beside
// the list (alone on a phone). Route: #/interactions/<filter>/<conversation id>.

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, avatar, displayName } from '../dom.js';
import { userName } from '../directory.js';
import { openThread } from '../thread.js';
import { openNewConversation } from './compose_new.js';

const FILTERS = [
  ['all', 'All'],
  ['external', 'External'],
  ['direct', 'Direct'],
  ['channels', 'Channels'],
];
const KINDS = { external: 'SMS', direct: 'DM', channel: '#', group: 'Group' };

/** A list row's last message: "Who: text", without the who when the row is already them. */
export function previewText(p, conv = null) {
  if (!p) return '';
  const text = p.text || '📎 Attachment';
  if (p.author_kind === 'system') return text;
  if (p.author_kind === 'external' && conv?.kind === 'external') return text;
  const who = p.author_kind === 'user' ? p.author_name || userName(p.author) : displayName(p.author_name || p.author);
  return `${who}: ${text}`;
}

export function mount(root, params, ctx) {
  let filter = 'all';
  let selected = null;
  let items = [];
  let nextBefore = null;
  let thread = null;
  let reloadTimer = null;
  // Conversations opened from elsewhere (search, a link) that the list does not hold.
  const outside = new Map();

  const listEl = h('ul', { class: 'conv-list', id: 'conversations', 'aria-label': 'Conversations' });
  const status = h('p', { class: 'empty', role: 'status' });
  const more = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => load(true) }, 'Load more');
  const filterButtons = FILTERS.map(([f, label]) =>
    h('button', { type: 'button', 'aria-pressed': 'false', dataset: { filter: f }, onclick: () => ctx.navigate(`#/interactions/${f}`) }, label),
  );
  const threadPane = h('section', { class: 'thread-pane', 'aria-label': 'Conversation' });
  const split = h(
    'div',
    { class: 'split' },
    h(
      'section',
      { class: 'list-pane', 'aria-labelledby': 'interactions-title' },
      h(
        'header',
        {},
        h(
          'div',
          { class: 'title-row' },
          h('h1', { id: 'interactions-title' }, 'Interactions'),
          h('button', { type: 'button', class: 'primary', onclick: () => openNewConversation(ctx) }, 'New'),
        ),
        h('div', { class: 'segmented', role: 'group', 'aria-label': 'Filter' }, filterButtons),
      ),
      h('div', { class: 'list-scroll' }, listEl, status, more),
    ),
    threadPane,
  );
  root.append(split);

  async function load(append = false) {
    try {
      const after = ctx.after;
      const r = await api(
        `/v1/interactions${qs({ filter, limit: 50, before: append ? nextBefore : null, after })}`,
      );
      items = append ? items.concat(r.items) : r.items;
      nextBefore = r.next_before;
      status.textContent = items.length ? '' : 'No conversations yet. Press New to start one.';
      more.hidden = nextBefore == null;
      render();
      openSelected();
      // The open conversation is read as it shows: a count fetched before its last read
      // was recorded is not left on the list.
      if (thread && (await thread.readAll())) readIn(thread.id);
    } catch (e) {
      status.textContent = describe(e);
    }
  }

  /** Nothing of `id` is unread any more (its open thread recorded the read). */
  function readIn(id) {
    const it = items.find((i) => i.conversation_id === id);
    if (it && it.unread) {
      it.unread = 0;
      render();
    }
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load(), 150);
  }

  function render() {
    fill(listEl, items.map(row));
  }

  function row(it) {
    const unread = it.unread > 0;
    return h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: `conv${unread ? ' unread' : ''}`,
          'aria-current': it.conversation_id === selected ? 'true' : 'false',
          dataset: { conversation: it.conversation_id, kind: it.kind },
          onclick: () => ctx.navigate(`#/interactions/${filter}/${it.conversation_id}`),
        },
        avatar(it.title, { kind: it.kind === 'channel' ? 'channel' : 'person' }),
        h('span', { class: 'title' }, h('span', { class: 'kind', 'aria-hidden': 'true' }, KINDS[it.kind] || ''), displayName(it.title)),
        h('span', { class: 'time' }, fmtTime(it.last_at_ms)),
        h('span', { class: 'preview' }, previewText(it.preview, it)),
        h('span', {}, unread ? h('span', { class: 'badge', 'aria-label': `${it.unread} unread` }, String(it.unread)) : ''),
      ),
    );
  }

  function openSelected() {
    split.classList.toggle('has-thread', !!selected);
    const meta = items.find((i) => i.conversation_id === selected) || outside.get(selected);
    if (selected && !meta) summarize(selected);
    if (!selected) {
      thread?.destroy();
      thread = null;
      fill(threadPane, h('p', { class: 'empty' }, 'Choose a conversation, or start a new one.'));
      return;
    }
    // A conversation just started may not be in the list yet: open it, and again with its
    // name once the list has it.
    if (thread && thread.id === selected && (thread.conv.kind !== 'unknown' || !meta)) return;
    // Reopened with its name: the draft being typed stays (drafts are kept as typed).
    thread?.destroy();
    const conv = meta || { conversation_id: selected, kind: 'unknown', title: 'Conversation' };
    thread = openThread(threadPane, conv, ctx, {
      onRead: readIn,
      onBack: () => ctx.navigate(`#/interactions/${filter}`),
      onLeft: () => ctx.navigate(`#/interactions/${filter}`),
      onRenamed: () => load(),
    });
  }

  /** Opens `id` (not in the list) as the lists show it: an inbox conversation in its
   *  inbox, with the inbox's actions; any other with its kind and title. */
  async function summarize(id) {
    if (outside.has(id)) return;
    outside.set(id, null);
    try {
      const s = await api(`/v1/conversations/${encodeURIComponent(id)}${qs({ after: ctx.after })}`);
      if (s.inbox_id) {
        outside.delete(id);
        if (selected === id) location.replace(`#/inboxes/${s.inbox_id}/${s.status === 'done' ? 'done' : 'open'}/${id}`);
        return;
      }
      outside.set(id, s);
      if (selected === id) openSelected();
    } catch {
      outside.delete(id); // it stays open as it is; a later visit asks again
    }
  }

  function update(p) {
    const f = FILTERS.some(([x]) => x === p[0]) ? p[0] : 'all';
    const sel = p[1] || null;
    for (const b of filterButtons) b.setAttribute('aria-pressed', String(b.dataset.filter === f));
    const changedFilter = f !== filter || !items.length;
    filter = f;
    selected = sel;
    if (changedFilter || (sel && !items.some((i) => i.conversation_id === sel))) load();
    else {
      render();
      openSelected();
    }
  }

  update(params);

  return {
    update,
    onFrame(f) {
      thread?.onFrame(f);
      const it = items.find((i) => i.conversation_id === f.conversation_id);
      const isMessage = f.item.type === 'message' || f.item.type === 'inbound';
      if (!it) {
        if (isMessage) reloadSoon();
        return;
      }
      if (typeof f.unread === 'number') it.unread = f.unread;
      if (isMessage) {
        it.preview =
          f.item.type === 'message'
            ? { author_kind: 'user', author: f.item.author, author_name: userName(f.item.author), text: f.item.text }
            : { author_kind: 'external', author: f.item.from, author_name: it.kind === 'external' ? it.title : null, text: f.item.text };
        it.last_at_ms = f.item.at_ms;
        it.last_position = f.position;
        items = [it, ...items.filter((i) => i !== it)];
      }
      render();
    },
    onTyping(t) {
      thread?.onTyping(t);
    },
    onResumed() {
      load();
      thread?.onResumed();
    },
    onDirectory() {
      render();
    },
    unmount() {
      clearTimeout(reloadTimer);
      thread?.destroy();
    },
  };
}
