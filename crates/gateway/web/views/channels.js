// Channels: the channels I am in (newest activity first, unread badges), creating one,
// browsing the organization's channels (joined or not, with their member counts) to join
// one, joining one by an invite link, and the open channel beside the list with its
// members (join, leave, add). Route: #/channels/<conversation id>.
//
// Both lists are re-read (debounced, `after=` the frame's or my write's position) when a
// message arrives in a channel I am in, after my own joins, leaves and creations, and after
// a reconnect; frames of channels I am not in do not reach me, so the browse list shows
// their newest state as of then.
//
// A channel's history and members are for its members only: a channel I am not in opens as
// an invitation to join it (members share this route as the channel's invite link).

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, announce, avatar } from '../dom.js';
import { openThread } from '../thread.js';
import { previewText } from './interactions.js';

const LIMIT = 200;
/** Channels per page of the browse list. */
const BROWSE_LIMIT = 50;

/** A channel id from what was typed: the id itself, or a link to `#/channels/<id>`. */
export function channelIdOf(typed) {
  const s = String(typed || '').trim();
  const m = s.match(/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i);
  return m ? m[1].toLowerCase() : null;
}

export function mount(root, params, ctx) {
  let items = [];
  let selected = null;
  let thread = null;
  let reloadTimer = null;
  let unmounted = false;
  let loaded = false;
  let browseItems = [];
  let browseNext = null;
  // The newest frame that asked for a reload: the lists are read once the model has it.
  let framePosition = 0;
  // Channels opened by link that my list does not hold: their summary (I am a member) or
  // null (I am not); asked once per visit.
  const outside = new Map();
  const asking = new Set();

  const listEl = h('ul', { class: 'conv-list', id: 'channel-list', 'aria-label': 'My channels' });
  const status = h('p', { class: 'empty', role: 'status' });
  const formError = h('p', { class: 'error small', role: 'alert' });
  const joinInput = h('input', { id: 'channel-join-id', placeholder: 'Paste an invite link', autocomplete: 'off' });
  const nameInput = h('input', { id: 'channel-new-name', placeholder: 'e.g. support-team', autocomplete: 'off' });
  const joinForm = h(
    'form',
    { class: 'form-row' },
    h('div', {}, h('label', { for: 'channel-join-id' }, 'Join by invite link'), joinInput),
    h('button', { type: 'submit' }, 'Join'),
  );
  const createForm = h(
    'form',
    { class: 'form-row' },
    h('div', {}, h('label', { for: 'channel-new-name' }, 'New channel'), nameInput),
    h('button', { type: 'submit', class: 'primary' }, 'Create'),
  );
  joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = channelIdOf(joinInput.value);
    if (!id) {
      formError.textContent = 'Paste an invite link (a member copies it from the channel’s Members).';
      return;
    }
    join(id);
  });
  createForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      formError.textContent = 'Give the channel a name.';
      return;
    }
    formError.textContent = '';
    try {
      const r = await api('/v1/conversations/channel', { method: 'POST', body: { name } });
      ctx.wrote(r.position);
      nameInput.value = '';
      announce(`Channel ${name} created`);
      await refresh();
      ctx.navigate(`#/channels/${r.conversation_id}`);
    } catch (e) {
      formError.textContent = describe(e);
    }
  });

  const browseList = h('ul', { class: 'conv-list browse-list', id: 'channel-browse', 'aria-labelledby': 'channel-browse-title' });
  const browseStatus = h('p', { class: 'empty small', role: 'status' });
  const browseMore = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => loadBrowse(true) }, 'More channels');
  const browse = h(
    'section',
    { class: 'browse', 'aria-labelledby': 'channel-browse-title' },
    h('h2', { id: 'channel-browse-title' }, 'Browse channels'),
    browseList,
    browseStatus,
    browseMore,
  );

  const threadPane = h('section', { class: 'thread-pane', 'aria-label': 'Channel' });
  const split = h(
    'div',
    { class: 'split' },
    h(
      'section',
      { class: 'list-pane', 'aria-labelledby': 'channels-title' },
      h('header', {}, h('h1', { id: 'channels-title' }, 'Channels'), createForm, joinForm, formError),
      h('div', { class: 'list-scroll' }, listEl, status, browse),
    ),
    threadPane,
  );
  root.append(split);

  async function join(id) {
    formError.textContent = '';
    try {
      const r = await api(`/v1/conversations/${encodeURIComponent(id)}/join`, { method: 'POST' });
      ctx.wrote(r.position);
      joinInput.value = '';
      outside.delete(id);
      await refresh();
      const name = items.find((i) => i.conversation_id === id)?.title;
      announce(name ? `You joined ${name}` : 'You joined the channel');
      // Open already (an invitation): the reload opened it; otherwise go there.
      if (selected !== id) ctx.navigate(`#/channels/${id}`);
    } catch (e) {
      const message = e.status === 404 || e.status === 403 ? 'No channel with that id in your organization.' : describe(e);
      if (selected === id && !items.some((i) => i.conversation_id === id)) fill(threadPane, invitation(id, message));
      else formError.textContent = message;
    }
  }

  /** What the lists must have caught up with: my last write and the last frame. */
  function after() {
    return Math.max(ctx.after || 0, framePosition) || null;
  }

  async function load() {
    try {
      const r = await api(`/v1/interactions${qs({ filter: 'channels', limit: LIMIT, after: after() })}`);
      if (unmounted) return;
      items = r.items;
      loaded = true;
      status.textContent = items.length ? '' : 'You are in no channel yet. Create one, or join one below or with an invite link.';
      render();
      openSelected();
      // The open channel is read as it shows (see interactions.js).
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

  /** The organization's channels: the first pages again, or (`more`) the next one. */
  async function loadBrowse(more = false) {
    const query = more
      ? { before: browseNext, limit: BROWSE_LIMIT, after: after() }
      : { limit: Math.min(LIMIT, Math.max(BROWSE_LIMIT, browseItems.length)), after: after() };
    try {
      const r = await api(`/v1/channels${qs(query)}`);
      if (unmounted) return;
      browseItems = more ? browseItems.concat(r.items) : r.items;
      browseNext = r.next_before ?? null;
      browseMore.hidden = browseNext == null;
      browseStatus.textContent = browseItems.length ? '' : 'Your organization has no channel yet.';
      fill(browseList, browseItems.map(browseRow));
    } catch (e) {
      browseStatus.textContent = describe(e);
    }
  }

  function refresh() {
    return Promise.all([load(), loadBrowse()]);
  }

  function reloadSoon(position) {
    if (typeof position === 'number') framePosition = Math.max(framePosition, position);
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(refresh, 150);
  }

  /** A channel of the organization: its name, size and last activity; Join or Open. */
  function browseRow(it) {
    const size = `${it.members} ${it.members === 1 ? 'member' : 'members'}`;
    const when = fmtTime(it.last_activity_at_ms);
    return h(
      'li',
      { dataset: { conversation: it.conversation_id } },
      h(
        'div',
        { class: 'info' },
        h('span', { class: 'title' }, h('span', { class: 'kind', 'aria-hidden': 'true' }, '#'), it.name),
        h('span', { class: 'muted small' }, [size, it.joined ? 'joined' : null, when].filter(Boolean).join(' · ')),
      ),
      it.joined
        ? h('button', { type: 'button', 'aria-label': `Open ${it.name}`, onclick: () => ctx.navigate(`#/channels/${it.conversation_id}`) }, 'Open')
        : h('button', { type: 'button', class: 'primary', 'aria-label': `Join ${it.name}`, onclick: () => join(it.conversation_id) }, 'Join'),
    );
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
          dataset: { conversation: it.conversation_id },
          onclick: () => ctx.navigate(`#/channels/${it.conversation_id}`),
        },
        avatar(it.title, { kind: 'channel' }),
        h('span', { class: 'title' }, it.title),
        h('span', { class: 'time' }, fmtTime(it.last_at_ms)),
        h('span', { class: 'preview' }, previewText(it.preview)),
        h('span', {}, unread ? h('span', { class: 'badge', 'aria-label': `${it.unread} unread` }, String(it.unread)) : ''),
      ),
    );
  }

  /** A channel I am not in: what it is and a Join button. */
  function invitation(id, message) {
    return h(
      'div',
      { class: 'page invitation' },
      h('button', { type: 'button', class: 'back', onclick: () => ctx.navigate('#/channels'), 'aria-label': 'Back to the list' }, '←'),
      h('h2', {}, 'Join this channel?'),
      h('p', { class: 'muted' }, 'You are not a member of this channel. Its messages and members show once you join.'),
      message ? h('p', { class: 'error', role: 'alert' }, message) : null,
      h('button', { type: 'button', class: 'primary', onclick: () => join(id) }, 'Join channel'),
    );
  }

  function openSelected() {
    split.classList.toggle('has-thread', !!selected);
    if (!selected) {
      thread?.destroy();
      thread = null;
      fill(threadPane, h('p', { class: 'empty' }, 'Choose a channel, create one, or join one from the list or with an invite link.'));
      return;
    }
    const meta = items.find((i) => i.conversation_id === selected) || outside.get(selected);
    if (!meta) {
      thread?.destroy();
      thread = null;
      if (loaded && outside.has(selected)) {
        fill(threadPane, invitation(selected));
        return;
      }
      fill(threadPane, h('p', { class: 'empty' }, 'Loading…'));
      // Not in my list (yet: a channel just made for me may not be listed at once): its
      // summary answers only a member; anyone else is invited to join.
      if (loaded && !asking.has(selected)) {
        const want = selected;
        asking.add(want);
        api(`/v1/conversations/${encodeURIComponent(want)}`)
          .then((s) => outside.set(want, s.kind === 'channel' ? s : null))
          .catch(() => outside.set(want, null))
          .finally(() => {
            asking.delete(want);
            if (selected === want && !unmounted) openSelected();
          });
      }
      return;
    }
    if (thread && thread.id === selected) return;
    thread?.destroy();
    thread = openThread(threadPane, { ...meta }, ctx, {
      onRead: readIn,
      onBack: () => ctx.navigate('#/channels'),
      onLeft: async () => {
        outside.clear();
        announce(`You left ${meta.title}`);
        await refresh();
        ctx.navigate('#/channels');
      },
    });
  }

  function update(p) {
    const sel = p[0] || null;
    const changed = sel !== selected;
    if (changed) outside.clear();
    selected = sel;
    render();
    if (changed) openSelected();
  }

  update(params);
  refresh();

  return {
    update,
    onFrame(f) {
      thread?.onFrame(f);
      const it = items.find((i) => i.conversation_id === f.conversation_id);
      // Membership and name lines: the member counts of the browse list change (and my
      // list, when I was added); a new name shows at once. They are not unread.
      const note = f.item.type === 'system' ? f.item.note || {} : {};
      const membership = ['member_joined', 'members_added', 'member_left', 'channel_renamed'].includes(note.type);
      if (!it) {
        // Perhaps a channel someone just added me to.
        if (f.item.type === 'message' || membership) reloadSoon(f.position);
        return;
      }
      if (typeof f.unread === 'number') it.unread = f.unread;
      if (note.type === 'channel_renamed' && note.name) it.title = note.name;
      if (f.item.type === 'message' || membership) reloadSoon(f.position);
      else render();
    },
    onTyping: (t) => thread?.onTyping(t),
    onResumed() {
      refresh();
      thread?.onResumed();
    },
    onDirectory: render,
    unmount() {
      unmounted = true;
      clearTimeout(reloadTimer);
      thread?.destroy();
    },
  };
}
