// Shared inboxes: Open > Unassigned, Assigned to Me (and all open), or Done; per-viewer
// badges; the four actions (Assign to Me, Transfer, Return to Inbox, Mark as Done); the
// reply field only on a conversation assigned to me.
// Route: #/inboxes/<inbox id>/<unassigned|mine|open|done>/<conversation id>.
//
// My inboxes: those whose team I am on (`GET /v1/inboxes`), picked by name; Transfer
// offers the inbox's team.
//
// Live: the stream's inbox frames ({type: 'inbox', inbox_id, conversation_id, change,
// assignee}) and new messages refresh the open view (debounced, read `after` the frame's
// position so the read model has caught up); nothing is polled. After a reconnect the view
// is read once more.

import { api, qs, describe } from '../api.js';
import { h, fill, fmtTime, avatar, displayName } from '../dom.js';
import { userName, allUsers, directoryReady } from '../directory.js';
import { openThread, inboxStep } from '../thread.js';
import { previewText } from './interactions.js';

const VIEWS = [
  ['unassigned', 'Unassigned'],
  ['mine', 'Assigned to me'],
  ['open', 'All open'],
];
const REFRESH_MS = 150;

function storeKey(ctx) {
  return `switchboard.inboxes.${ctx.me.user_id}`;
}

export function knownInboxes(ctx) {
  try {
    return JSON.parse(localStorage.getItem(storeKey(ctx)) || '[]');
  } catch {
    return [];
  }
}

export function rememberInbox(ctx, id, name) {
  const list = knownInboxes(ctx);
  const found = list.find((i) => i.id === id);
  if (found) {
    if (name && found.name !== name) found.name = name;
    else return;
  } else list.push({ id, name: name || null });
  localStorage.setItem(storeKey(ctx), JSON.stringify(list));
}

/** Where my last choice of inbox and view is kept (per user, across reloads). */
function lastKey(ctx) {
  return `switchboard.inbox-view.${ctx.me.user_id}`;
}

function lastChoice(ctx) {
  try {
    return JSON.parse(localStorage.getItem(lastKey(ctx))) || {};
  } catch {
    return {};
  }
}

export function mount(root, params, ctx) {
  let inbox = null;
  let view = 'unassigned';
  let selected = null;
  let items = [];
  let thread = null;
  let refreshTimer = null;
  let seen = 0; // the newest relevant frame's position: the view is read after it
  let lastSig = null;
  const local = new Map(); // conversation → {status, assignee} after my own actions
  const outside = new Map(); // conversations opened that the current view does not hold

  const picker = h('select', { id: 'inbox-picker' });
  picker.addEventListener('change', () => ctx.navigate(`#/inboxes/${picker.value}/${view}`));
  const openDone = [
    h('button', { type: 'button', dataset: { f: 'open' }, onclick: () => go(view === 'done' ? 'unassigned' : view) }, 'Open'),
    h('button', { type: 'button', dataset: { f: 'done' }, onclick: () => go('done') }, 'Done'),
  ];
  const tabs = VIEWS.map(([v, label]) => h('button', { type: 'button', dataset: { v }, onclick: () => go(v) }, label));
  const tabRow = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Open conversations' }, tabs);
  const listEl = h('ul', { class: 'conv-list', 'aria-label': 'Inbox conversations' });
  const status = h('p', { class: 'empty', role: 'status' });
  let teams = []; // the inboxes I am on, from the server: [{inbox_id, name, number, members}]
  const threadPane = h('section', { class: 'thread-pane', 'aria-label': 'Conversation' });
  const split = h(
    'div',
    { class: 'split' },
    h(
      'section',
      { class: 'list-pane', 'aria-labelledby': 'inboxes-title' },
      h(
        'header',
        {},
        h('h1', { id: 'inboxes-title' }, 'Inboxes'),
        h(
          'div',
          { class: 'head-row' },
          h('label', { for: 'inbox-picker', class: 'visually-hidden' }, 'Inbox'),
          picker,
          h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' }, openDone),
        ),
        tabRow,
      ),
      h('div', { class: 'list-scroll' }, listEl, status),
    ),
    threadPane,
  );
  root.append(split);

  function go(v) {
    ctx.navigate(`#/inboxes/${inbox}/${v}`);
  }

  function renderPicker() {
    const known = teams.map((t) => ({ id: t.inbox_id, name: t.name }));
    // Opened by a link to an inbox not (yet) listed: it stays chosen.
    if (inbox && !known.some((i) => i.id === inbox)) known.push({ id: inbox, name: knownInboxes(ctx).find((i) => i.id === inbox)?.name || 'This inbox' });
    fill(picker, known.map((i) => h('option', { value: i.id, selected: i.id === inbox }, i.name)));
    picker.hidden = known.length === 0;
  }

  async function load() {
    if (!inbox) {
      items = [];
      render();
      status.textContent =
        ctx.me.role === 'admin'
          ? 'You are on no inbox’s team yet. Create an inbox, or add yourself to one, in Settings.'
          : 'You are on no inbox’s team yet. An admin adds you in Settings.';
      return;
    }
    try {
      const shown = `${inbox}/${view}`;
      const r = await api(`/v1/inboxes/${inbox}/conversations${qs({ view, limit: 100, after: Math.max(ctx.after || 0, seen) || null })}`);
      // The inbox or view changed meanwhile: that load answers.
      if (`${inbox}/${view}` !== shown) return;
      const sig = JSON.stringify(r.items);
      if (sig === lastSig) return syncThread();
      lastSig = sig;
      items = r.items;
      for (const it of items) local.delete(it.conversation_id);
      status.textContent = items.length ? '' : 'Nothing here.';
      render();
      syncThread();
    } catch (e) {
      items = [];
      lastSig = null;
      render();
      status.textContent = e.status === 404 ? 'You are not on this inbox’s team.' : describe(e);
    }
  }

  function render() {
    fill(listEl, items.map(row));
  }

  function row(it) {
    const b = it.badges || {};
    const indicators = [];
    if (b.blue_badge) indicators.push(h('span', { class: 'badge blue', 'aria-label': `${it.unread} new, unassigned` }, String(it.unread)));
    if (b.green_badge) indicators.push(h('span', { class: 'badge green', 'aria-label': `${it.unread} new on yours` }, String(it.unread)));
    if (b.green_flag) indicators.push(h('span', { class: 'flag green' }, 'Mine'));
    if (b.grey_flag) indicators.push(h('span', { class: 'flag grey' }, userName(it.assignee)));
    return h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: `conv${it.unread ? ' unread' : ''}`,
          'aria-current': it.conversation_id === selected ? 'true' : 'false',
          dataset: { conversation: it.conversation_id, status: it.status || '' },
          onclick: () => ctx.navigate(`#/inboxes/${inbox}/${view}/${it.conversation_id}`),
        },
        avatar(displayName(it.title)),
        h('span', { class: 'title' }, displayName(it.title)),
        h('span', { class: 'time' }, fmtTime(it.last_at_ms)),
        h('span', { class: 'preview' }, previewText(it.preview, it)),
        h('span', {}, indicators),
      ),
    );
  }

  function statusOf(conv) {
    return local.get(conv.conversation_id) || { status: conv.status, assignee: conv.assignee };
  }

  function compose(s) {
    if (s.status === 'assigned' && s.assignee === ctx.me.user_id) return { allowed: true };
    if (s.status === 'assigned') return { allowed: false, note: `Assigned to ${userName(s.assignee)}. Only the assignee replies.` };
    if (s.status === 'done') return { allowed: false, note: 'Done. A new text from the customer reopens it.' };
    return { allowed: false, note: 'Assign this conversation to yourself to reply.' };
  }

  function actionsFor(conv) {
    return (el) => {
      const s = statusOf(conv);
      const mineNow = s.status === 'assigned' && s.assignee === ctx.me.user_id;
      const admin = ctx.me.role === 'admin';
      const act = (name, label, enabled, body) =>
        h(
          'button',
          {
            type: 'button',
            disabled: !enabled,
            dataset: { action: name },
            onclick: () => run(conv, name, body),
          },
          label,
        );
      const items = [
        s.status === 'assigned' && !mineNow ? h('span', { class: 'flag grey' }, `Assigned to ${userName(s.assignee)}`) : null,
        act('assign-to-me', 'Assign to me', s.status === 'unassigned' || s.status === 'done' || (s.status === 'assigned' && !mineNow && admin)),
        act('transfer', 'Transfer', s.status !== 'done' && (mineNow || s.status === 'unassigned' || admin), true),
        act('return', 'Return to inbox', mineNow || (s.status === 'assigned' && admin)),
        act('done', 'Mark as done', s.status !== 'done' && (mineNow || s.status === 'unassigned' || admin)),
      ];
      el.append(...items.filter(Boolean));
    };
  }

  async function run(conv, action, needsTarget) {
    let body;
    if (needsTarget) {
      const team = teams.find((t) => t.inbox_id === inbox)?.members;
      const s = statusOf(conv);
      const to = await pickUser(`Transfer ${displayName(conv.title)} to`, {
        only: team ? team.filter((u) => u !== (s.status === 'assigned' ? s.assignee : ctx.me.user_id)) : null,
      });
      if (!to) return;
      body = { to };
    }
    try {
      const r = await api(`/v1/conversations/${conv.conversation_id}/${action}`, { method: 'POST', body });
      ctx.wrote(r.position);
      const next = {
        'assign-to-me': { status: 'assigned', assignee: ctx.me.user_id },
        transfer: { status: 'assigned', assignee: body?.to },
        return: { status: 'unassigned', assignee: null },
        done: { status: 'done', assignee: null },
      }[action];
      local.set(conv.conversation_id, next);
      refreshThread(conv);
      await load();
    } catch (e) {
      alert(describe(e));
    }
  }

  function refreshThread(conv) {
    if (!thread || thread.id !== conv.conversation_id) return;
    thread.setActions(actionsFor(conv));
    thread.setCompose(compose(statusOf(conv)));
  }

  /** Keeps the open thread's actions in step with the list (others act too). */
  function syncThread() {
    split.classList.toggle('has-thread', !!selected);
    if (!selected) {
      thread?.destroy();
      thread = null;
      fill(threadPane, h('p', { class: 'empty' }, 'Choose a conversation.'));
      return;
    }
    // The open conversation may leave the view (assigned, done): it stays open as it is.
    const meta =
      items.find((i) => i.conversation_id === selected) || outside.get(selected) || (thread && thread.id === selected ? thread.conv : null);
    if (!meta) {
      // Not in this view (opened from search or a link): its summary first, so the
      // header, the actions and the composer are right from the start.
      thread?.destroy();
      thread = null;
      fill(threadPane, h('p', { class: 'empty' }, 'Loading…'));
      const want = selected;
      api(`/v1/conversations/${encodeURIComponent(want)}${qs({ after: ctx.after })}`)
        .then((s) => {
          outside.set(want, s);
          if (selected === want) syncThread();
        })
        .catch((e) => {
          if (selected === want) fill(threadPane, h('p', { class: 'error' }, describe(e)));
        });
      return;
    }
    if (thread && thread.id === selected) {
      if (meta) {
        const before = JSON.stringify(statusOf(thread.conv));
        thread.conv.status = meta.status;
        thread.conv.assignee = meta.assignee;
        if (JSON.stringify(statusOf(thread.conv)) !== before) refreshThread(thread.conv);
      }
      return;
    }
    thread?.destroy();
    const conv = { ...meta };
    thread = openThread(threadPane, conv, ctx, {
      actions: actionsFor(conv),
      compose: compose(statusOf(conv)),
      onBack: () => ctx.navigate(`#/inboxes/${inbox}/${view}`),
      onRenamed: () => {
        lastSig = null;
        load();
      },
    });
  }

  function update(p) {
    // Coming back without a choice in the URL (the sidebar's link) shows the inbox and
    // view I had chosen last, not the first inbox's Unassigned.
    const last = lastChoice(ctx);
    const id = p[0] || last.inbox || knownInboxes(ctx)[0]?.id || null;
    const valid = (x) => ['unassigned', 'mine', 'open', 'done'].includes(x);
    const v = valid(p[1]) ? p[1] : id === last.inbox && valid(last.view) ? last.view : 'unassigned';
    if (id) {
      rememberInbox(ctx, id);
      localStorage.setItem(lastKey(ctx), JSON.stringify({ inbox: id, view: v }));
    }
    const changed = id !== inbox || v !== view;
    inbox = id;
    view = v;
    selected = p[2] || null;
    for (const b of openDone) b.setAttribute('aria-pressed', String((b.dataset.f === 'done') === (view === 'done')));
    for (const t of tabs) t.setAttribute('aria-pressed', String(t.dataset.v === view));
    tabRow.hidden = view === 'done';
    renderPicker();
    if (changed) {
      lastSig = null;
      load();
    } else {
      render();
      syncThread();
    }
  }

  /** The inboxes whose team I am on (an admin sees every inbox, but works only those). */
  async function discover() {
    try {
      teams = (await api('/v1/inboxes')).items.filter((i) => i.member);
    } catch {
      return;
    }
    for (const t of teams) rememberInbox(ctx, t.inbox_id, t.name);
    renderPicker();
    const first = teams[0];
    if (!inbox && first) ctx.navigate(`#/inboxes/${first.inbox_id}/unassigned`);
    else if (!inbox) load();
  }

  /** Something changed in the open inbox: read the view again once the burst is over. */
  function refreshSoon(position) {
    if (typeof position === 'number') seen = Math.max(seen, position);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => inbox && load(), REFRESH_MS);
  }

  update(params);
  if (!inbox) load();
  discover();

  return {
    update,
    onFrame(f) {
      thread?.onFrame(f);
      // A new text may open a conversation in this inbox (or reopen a done one); a message
      // in a listed one moves it up.
      const listed = items.some((i) => i.conversation_id === f.conversation_id);
      if (f.item.type === 'inbound' || (f.item.type === 'message' && listed)) refreshSoon(f.position);
      else if (typeof f.unread === 'number') {
        const it = items.find((i) => i.conversation_id === f.conversation_id);
        if (it) {
          it.unread = f.unread;
          if (it.badges) {
            it.badges.blue_badge = it.status === 'unassigned' && f.unread > 0;
            it.badges.green_badge = it.badges.green_flag && f.unread > 0;
          }
          render();
        }
      }
    },
    onInbox(f) {
      if (f.inbox_id === inbox) refreshSoon(f.position);
      const step = inboxStep(f);
      if (step && thread && f.conversation_id === thread.id) {
        thread.addStep(step, f.position);
        // Someone acted on the open conversation: its actions and reply field follow.
        const before = JSON.stringify(statusOf(thread.conv));
        local.delete(thread.id);
        thread.conv.assignee = f.assignee;
        thread.conv.status = f.change === 'marked_done' ? 'done' : f.assignee ? 'assigned' : 'unassigned';
        if (JSON.stringify(statusOf(thread.conv)) !== before) refreshThread(thread.conv);
      }
      // Added to or removed from a team: the picker follows.
      if (f.change === 'inbox_member_added' || f.change === 'inbox_member_removed' || f.change === 'inbox_renamed') discover();
    },
    onTyping: (t) => thread?.onTyping(t),
    onResumed() {
      refreshSoon();
      thread?.onResumed();
    },
    onDirectory: render,
    unmount() {
      clearTimeout(refreshTimer);
      inbox = null;
      thread?.destroy();
    },
  };
}

/**
 * A dialog to choose a user of the organization (or only those of `only`, e.g. an inbox's
 * team); resolves to a user id or null. With nobody to choose, it says
 * `empty`.
 */
export async function pickUser(title, { only = null, label = 'Team member', empty = 'There is nobody to choose.' } = {}) {
  await directoryReady();
  return new Promise((resolve) => {
    const users = allUsers().filter((u) => !only || only.includes(u.user_id));
    const select = h(
      'select',
      { id: 'pick-user' },
      users.map((u) => h('option', { value: u.user_id }, `${u.name} (ext ${u.extension})`)),
    );
    let chosen = null;
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'pick-user-title' },
      h('h2', { id: 'pick-user-title' }, title),
      users.length ? [h('label', { for: 'pick-user' }, label), select] : h('p', { class: 'muted', id: 'pick-user-none' }, empty),
      h(
        'div',
        { class: 'toolbar end' },
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            disabled: !users.length,
            onclick: () => {
              chosen = select.value || null;
              dialog.close();
            },
          },
          'Transfer',
        ),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(chosen);
    });
    document.body.append(dialog);
    dialog.showModal();
    (users.length ? select : dialog.querySelector('button')).focus();
  });
}
