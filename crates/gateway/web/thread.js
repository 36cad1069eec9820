// One open conversation: its history (newest page first, older pages as you scroll back),
// live messages from the stream, read receipts under my messages, the typing indicator,
// and the composer (Enter sends, Shift+Enter is a new line; emoji; attachments).

import { api, qs, describe, ApiError } from './api.js';
import { h, fill, fmtTime, fmtFull, fmtSize, fmtDay, announce, uuid, avatar, displayName, linkify, icon, menuButton } from './dom.js';
import { userName, numberName, allUsers, directoryReady, forgetNumberNames } from './directory.js';
import { editContact } from './views/contacts.js';

const PAGE = 30;

const EMOJI = [
  ['😀', 'grinning face'], ['😂', 'tears of joy'], ['😊', 'smiling face'], ['😉', 'winking face'],
  ['😍', 'heart eyes'], ['🤔', 'thinking face'], ['😢', 'crying face'], ['😮', 'surprised face'],
  ['👍', 'thumbs up'], ['👎', 'thumbs down'], ['👏', 'clapping hands'], ['🙏', 'folded hands'],
  ['🎉', 'party popper'], ['❤️', 'red heart'], ['🔥', 'fire'], ['✅', 'check mark'],
  ['❌', 'cross mark'], ['⚠️', 'warning'], ['📞', 'telephone'], ['📅', 'calendar'],
  ['⏰', 'alarm clock'], ['📎', 'paperclip'], ['👋', 'waving hand'], ['☕', 'hot beverage'],
];

const KIND_LABEL = { external: 'Text messages', direct: 'Direct message', channel: 'Channel', group: 'Group' };

/** "Bob", "Bob and Cara", "Bob, Cara and Dan". */
function andList(names) {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/**
 * What a system item says, from the server's structured note, with names resolved and
 * "you" for `me`: a queue's lifecycle (`{"type": "claimed_by", "queue", "agent"}`…), an
 * inbox conversation's steps (`inbox_assigned {to, taken_from}`, `inbox_transferred {from,
 * to, by}`…; `by` null is the platform) and a channel's membership (`member_joined {user}`,
 * `members_added {users, by}`, `member_left {user}`, `channel_renamed {name, by}`).
 */
export function systemText(note, fallback, me = null) {
  const fields = note && typeof note === 'object' ? note : {};
  // A name as the subject of a sentence ("You", "Ada"), or as its object ("you", "Ada").
  const who = (field, fallbackName = null) => (fields[field] ? (fields[field] === me ? 'you' : userName(fields[field])) : fallbackName);
  const subject = (field) => {
    const w = who(field);
    return w === 'you' ? 'You' : w;
  };
  switch (fields.type) {
    case 'queued':
      return 'Waiting in the queue';
    case 'claimed_by':
      return `Claimed by ${who('agent') || 'an agent'}`;
    case 'transferred_to':
      return `Transferred to ${who('to') || 'an agent'}`;
    case 'released':
      return 'Released to the queue';
    case 'closed':
      return who('by') ? `Closed by ${who('by')}` : 'Closed';
    case 'timed_out':
      return 'Timed out';
    // An inbox conversation's steps.
    case 'inbox_assigned':
      // Only "Assign to me" assigns: whoever it went to took it (from someone, perhaps).
      if (!fields.to) return 'Assigned';
      return fields.taken_from ? `${subject('to')} took it over from ${who('taken_from')}` : `${subject('to')} took it`;
    case 'inbox_transferred':
      return fields.by ? `${subject('by')} transferred it to ${who('to', 'a teammate')}` : `Transferred to ${who('to', 'a teammate')}`;
    case 'inbox_returned':
      return fields.by ? `Returned to the inbox by ${who('by')}` : 'Returned to the inbox';
    case 'inbox_done':
      return fields.by ? `Marked done by ${who('by')}` : 'Marked done';
    case 'inbox_reopened':
      return 'Reopened by a new text';
    // A channel's members and name.
    case 'member_joined':
      return `${subject('user') || 'Someone'} joined`;
    case 'member_left':
      return `${subject('user') || 'Someone'} left`;
    case 'members_added': {
      const users = Array.isArray(fields.users) ? fields.users : [];
      const names = andList(users.map((u) => (u === me ? 'you' : userName(u))));
      if (fields.by) return `${subject('by')} added ${names || 'people'}`;
      return `${names ? names.charAt(0).toUpperCase() + names.slice(1) : 'People'} ${users.length === 1 ? 'was' : 'were'} added`;
    }
    case 'channel_renamed':
      return fields.by ? `${subject('by')} renamed the channel to ${fields.name}` : `The channel was renamed to ${fields.name}`;
    default:
      return fallback || 'System message';
  }
}

/** The note of an inbox frame's change (`conversation_assigned`…), or null. Frames say
 *  only who has it after the step: the history's item says who acted, and when. */
export function inboxStep(frame) {
  const type = {
    conversation_assigned: 'inbox_assigned',
    conversation_transferred: 'inbox_transferred',
    returned_to_inbox: 'inbox_returned',
    marked_done: 'inbox_done',
    reopened_by_inbound_text: 'inbox_reopened',
  }[frame.change];
  return type ? { type, to: frame.assignee } : null;
}

/** What a frame's step says before the history has it: "Assigned to Ina", "Marked done". */
function stepTextFromFrame(note, me) {
  const to = note.to ? (note.to === me ? 'you' : userName(note.to)) : null;
  switch (note.type) {
    case 'inbox_assigned':
      return to ? `Assigned to ${to}` : 'Assigned';
    case 'inbox_transferred':
      return `Transferred to ${to || 'a teammate'}`;
    default:
      return systemText(note, null, me);
  }
}

/** A system item's identity, the same however its note's fields are ordered. */
function systemKey(item) {
  const note = item.note && typeof item.note === 'object' ? Object.fromEntries(Object.entries(item.note).sort(([a], [b]) => a.localeCompare(b))) : item.note;
  return `${item.at_ms}|${JSON.stringify(note)}`;
}

/** Whether a note is an inbox conversation's step. */
function isStep(note) {
  return typeof note?.type === 'string' && note.type.startsWith('inbox_');
}

/** Whether a history step is the one a frame reported (its type, and who has it after). */
function sameStep(note, frameNote) {
  if (note.type !== frameNote.type) return false;
  if (note.type === 'inbox_assigned' || note.type === 'inbox_transferred') return (note.to || null) === (frameNote.to || null);
  return true;
}

/** How far along an SMS delivery status is: a later report never moves it back. */
const DELIVERY_STAGE = { requested: 0, queued: 1, sent: 2, delivered: 3, failed: 3, undelivered: 3, withheld: 3 };
const DELIVERY_LABEL = {
  requested: 'Sending',
  queued: 'Queued',
  sent: 'Sent',
  delivered: 'Delivered',
  failed: 'Failed',
  undelivered: 'Not delivered',
  withheld: 'Not sent (opted out)',
};

// Drafts and the outbox. A draft (text and uploaded attachments) is kept per user and
// conversation in localStorage as it is typed, so it survives switching conversations and
// reloads. A send that fails for want of a connection (no answer at all) goes to the
// outbox with its Idempotency-Key and is sent again, with that same key, when the
// connection returns (the stream is live again, the browser is online, or the next
// start): if the first attempt did reach the server, the retry writes nothing twice.

const draftKey = (user, conversation) => `switchboard.draft.${user}.${conversation}`;

function readDraft(user, conversation) {
  try {
    return JSON.parse(localStorage.getItem(draftKey(user, conversation))) || null;
  } catch {
    return null;
  }
}

function writeDraft(user, conversation, draft) {
  if (!draft || (!draft.text && !draft.attachments?.length)) localStorage.removeItem(draftKey(user, conversation));
  else localStorage.setItem(draftKey(user, conversation), JSON.stringify(draft));
}

const outboxKey = (user) => `switchboard.outbox.${user}`;

function readOutbox(user) {
  try {
    return JSON.parse(localStorage.getItem(outboxKey(user))) || [];
  } catch {
    return [];
  }
}

function writeOutbox(user, entries) {
  if (entries.length) localStorage.setItem(outboxKey(user), JSON.stringify(entries));
  else localStorage.removeItem(outboxKey(user));
}

/** 'queued', 'sent' and 'refused' of outbox entries ({entry, message_id | reason}). */
const outboxEvents = new EventTarget();
let flushing = null;
let flushAgain = false;

/**
 * Sends what waits in the outbox, oldest first, each with the key of its first attempt.
 * Stops at the first that finds no connection still; one the server refuses leaves the
 * outbox (and goes back to its conversation's draft).
 */
export function flushOutbox(ctx) {
  if (flushing) {
    flushAgain = true;
    return flushing;
  }
  const user = ctx.me.user_id;
  flushing = (async () => {
    do {
      flushAgain = false;
      for (const entry of readOutbox(user)) {
        let outcome;
        try {
          const r = await api(`/v1/conversations/${entry.conversation}/messages`, {
            method: 'POST',
            body: { text: entry.text, attachments: entry.attachments.map((a) => a.attachment_id) },
            headers: { 'idempotency-key': entry.key },
          });
          ctx.wrote(r.position);
          outcome = { type: 'sent', message_id: r.message_id };
        } catch (e) {
          if (!(e instanceof ApiError) || e.status >= 500) return;
          outcome = { type: 'refused', reason: describe(e) };
        }
        writeOutbox(user, readOutbox(user).filter((x) => x.key !== entry.key));
        outboxEvents.dispatchEvent(new CustomEvent(outcome.type, { detail: { entry, ...outcome } }));
      }
    } while (flushAgain);
  })().finally(() => {
    flushing = null;
  });
  return flushing;
}

async function fetchBlob(url) {
  const r = await api(url, { raw: true });
  return r.blob();
}

/**
 * Opens conversation `conv` ({conversation_id, kind, title, our_number, status, …}) in
 * `pane`. `opts.actions(el)` fills the header's action area; `opts.compose` is
 * {allowed, note}; `opts.onBack` goes back to the list on phones.
 */
export function openThread(pane, conv, ctx, opts = {}) {
  const id = conv.conversation_id;
  const me = ctx.me.user_id;
  const texts = conv.kind === 'external' || conv.kind === 'group';
  const st = {
    messages: new Map(),
    systems: new Set(),
    stepOf: new Map(), // a history step's element (inbox steps) → {note, linked to a frame}
    pendingSteps: [], // steps seen live, not yet in the history: [{note, li}]
    catchingUp: false,
    catchUpAgain: false,
    readers: new Map(),
    myRead: 0,
    lastSeq: 0,
    nextBefore: null,
    loaded: false,
    loading: false,
    queued: [],
    destroyed: false,
    typing: new Map(),
    pending: [],
    draftKey: null,
    urls: [],
    delivery: new Map(),
    mine: new Map(), // message id → my message item (a failed text is retried from it)
    retryKeys: new Map(),
    outbox: new Map(), // Idempotency-Key → the element of a text waiting for the connection
  };

  ctx.openConversation = id;
  // What people read: a number as "+1 555 777 0001", a name as it is.
  let title = displayName(conv.title || 'Conversation');
  const list = h('ol', { class: 'messages' });
  const earlier = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => loadEarlier() }, 'Load earlier messages');
  const status = h('p', { class: 'muted small', role: 'status' });
  const timeline = h(
    'div',
    { class: 'timeline', tabindex: '0', role: 'region', 'aria-label': `Messages with ${title}` },
    h('div', { class: 'centered-earlier' }, earlier, status),
    list,
  );
  const typingEl = h('div', { class: 'typing', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions', id: `actions-${id}`, role: 'group', 'aria-label': 'Conversation actions' });
  // On a phone the actions are a menu behind this button (on wider screens it is hidden
  // and they show in the header).
  const actionsToggle = h('button', { type: 'button', class: 'actions-toggle', 'aria-label': 'Conversation actions' }, icon('actions'));
  menuButton(actionsToggle, actions);
  const titleEl = h('h2', { id: `thread-title-${id}` }, title);
  const headAvatar = avatar(conv.kind === 'channel' ? conv.title : title, { kind: conv.kind === 'channel' ? 'channel' : 'person' });
  // "via" the inbox's or queue's name (or the line's owner) rather than its number.
  const via = h('span', { class: 'via' }, conv.our_number ? ` · via ${displayName(conv.our_number)}` : '');
  if (conv.our_number) {
    numberName(conv.our_number).then((n) => {
      if (n && n !== conv.our_number) via.textContent = ` · via ${n}`;
    });
  }
  // An External conversation with a number nobody has named yet can be named here.
  const unnamed = conv.kind === 'external' && conv.their_number && conv.title === conv.their_number;
  const addContact = unnamed
    ? h('button', { type: 'button', class: 'link add-contact', onclick: () => addToContacts() }, 'Add to contacts')
    : null;
  const theirNumber = conv.their_number && displayName(conv.their_number) !== title ? ` · ${displayName(conv.their_number)}` : '';
  const sub = h('div', { class: 'sub' }, KIND_LABEL[conv.kind] || '', h('span', { class: 'their' }, theirNumber), via, addContact && h('span', { class: 'add-contact-sep' }, ' · '), addContact);
  const head = h(
    'header',
    { class: 'thread-head' },
    h('button', { type: 'button', class: 'back', onclick: () => opts.onBack?.(), 'aria-label': 'Back to the list' }, '←'),
    headAvatar,
    h('div', { class: 'head-text' }, titleEl, sub),
    actionsToggle,
    actions,
  );
  const composer = h('div', { class: 'composer' });
  // A channel's members, shown on demand under the header.
  const membersPanel =
    conv.kind === 'channel'
      ? h('section', { class: 'members-panel', id: `members-${id}`, hidden: true, 'aria-label': `Members of ${title}` })
      : null;
  fill(pane, head, membersPanel, timeline, typingEl, composer);

  // On a phone the header's "Add to contacts" is in the actions menu.
  const addContactItem = unnamed ? h('button', { type: 'button', class: 'phone-only', onclick: () => addToContacts() }, 'Add to contacts') : null;
  if (addContactItem) actions.append(addContactItem);
  if (conv.kind === 'channel') channelActions();
  opts.actions?.(actions);
  renderComposer(opts.compose || { allowed: true });
  composer.querySelector('textarea')?.focus({ preventScroll: true });

  timeline.addEventListener('scroll', () => {
    if (timeline.scrollTop < 60 && st.nextBefore != null && !st.loading) loadEarlier();
  });
  document.addEventListener('visibilitychange', onVisible);
  for (const type of ['queued', 'sent', 'refused']) outboxEvents.addEventListener(type, onOutbox);
  load();

  // History.

  async function load() {
    st.loading = true;
    status.textContent = 'Loading…';
    try {
      const r = await api(`/v1/conversations/${id}/messages${qs({ limit: PAGE })}`);
      if (st.destroyed) return;
      const lis = r.items.map((item) => add(item)).filter(Boolean);
      list.append(...lis);
      renderDays();
      st.nextBefore = r.next_before;
      status.textContent = r.items.length ? '' : 'No messages yet.';
      st.loaded = true;
      for (const f of st.queued.splice(0)) onFrame(f);
      for (const entry of readOutbox(me)) if (entry.conversation === id) showWaiting(entry);
      // Names in the pills once the directory has them.
      directoryReady().then(() => {
        for (const li of list.querySelectorAll(':scope > li.system')) li.render?.();
      });
      renderReceipts();
      scrollToEnd();
      markRead();
    } catch (e) {
      status.textContent = e.status === 404 ? 'You cannot open this conversation.' : describe(e);
    } finally {
      st.loading = false;
      earlier.hidden = st.nextBefore == null;
    }
  }

  async function loadEarlier() {
    if (st.nextBefore == null || st.loading) return;
    st.loading = true;
    earlier.disabled = true;
    try {
      const r = await api(`/v1/conversations/${id}/messages${qs({ before: st.nextBefore, limit: PAGE })}`);
      if (st.destroyed) return;
      const before = timeline.scrollHeight;
      const lis = r.items.map((item) => add(item)).filter(Boolean);
      list.prepend(...lis);
      renderDays();
      timeline.scrollTop += timeline.scrollHeight - before;
      st.nextBefore = r.next_before;
      renderReceipts();
    } catch (e) {
      status.textContent = describe(e);
    } finally {
      st.loading = false;
      earlier.disabled = false;
      earlier.hidden = st.nextBefore == null;
    }
  }

  /** Missed items (the stream was down): the newest page, merged. */
  async function refreshNewest() {
    try {
      const r = await api(`/v1/conversations/${id}/messages${qs({ limit: PAGE })}`);
      if (st.destroyed) return;
      const stick = nearEnd();
      const added = r.items.map((item) => add(item)).filter(Boolean);
      list.append(...added);
      reconcileSteps();
      if (added.length) renderDays();
      renderReceipts();
      if (stick) scrollToEnd();
      // Caught up while open: read, as if it had arrived live.
      if (added.length) markRead();
    } catch {
      /* the next frame or reload brings it */
    }
  }

  // Items.

  /** Records `item`; answers its new element, or null (a duplicate, a read marker). */
  function add(item) {
    switch (item.type) {
      case 'message':
      case 'inbound': {
        if (st.messages.has(item.message_id)) return null;
        st.lastSeq = Math.max(st.lastSeq, item.seq);
        if (item.type === 'message' && item.author === me) st.myRead = Math.max(st.myRead, item.seq);
        const li = messageEl(item);
        st.messages.set(item.message_id, li);
        if (item.type === 'message' && item.author === me) st.mine.set(item.message_id, item);
        noteDeliveries(item);
        status.textContent = '';
        return li;
      }
      case 'auto_reply': {
        if (st.messages.has(item.message_id)) return null;
        st.lastSeq = Math.max(st.lastSeq, item.seq);
        const li = messageEl({ ...item, type: 'message', author: null, auto: true });
        st.messages.set(item.message_id, li);
        noteDeliveries(item);
        return li;
      }
      case 'delivery':
        noteDelivery(item.message_id, item);
        return null;
      case 'read':
        if (item.user === me) st.myRead = Math.max(st.myRead, item.up_to);
        else st.readers.set(item.user, Math.max(st.readers.get(item.user) || 0, item.up_to));
        return null;
      case 'system': {
        // The same item read again (the history after the stream, a later page) is known.
        const key = systemKey(item);
        if (st.systems.has(key)) return null;
        st.systems.add(key);
        const li = systemEl(item.at_ms, () => systemText(item.note, item.text, me));
        if (isStep(item.note)) st.stepOf.set(li, { note: item.note, linked: false });
        return li;
      }
      default:
        return null;
    }
  }

  /** A centred pill: what happened, and when (the full date on hover). Its words are
   *  made again once the directory has everyone's names. */
  function systemEl(at, text) {
    const pill = h('span', { class: 'pill', title: fmtFull(at) });
    const li = h('li', { class: 'system', dataset: { at } }, pill);
    li.render = () => (pill.textContent = `${text()} · ${fmtTime(at)}`);
    li.render();
    return li;
  }

  /**
   * An inbox step seen live (its frame) and the history's item of it are one step, shown
   * once. The frame's pill waits at the end until the history has the step (the item says
   * who acted, and when); the steps seen live are the newest of the conversation, in order,
   * so they are the history's newest steps that no frame has claimed yet.
   */
  function reconcileSteps() {
    if (!st.pendingSteps.length) return;
    const history = [...list.querySelectorAll(':scope > li.system')].filter((li) => st.stepOf.has(li));
    let free = history.length;
    while (free > 0 && !st.stepOf.get(history[free - 1]).linked) free -= 1;
    const unclaimed = history.slice(free);
    const pending = st.pendingSteps;
    for (let m = Math.min(unclaimed.length, pending.length); m > 0; m -= 1) {
      const tail = unclaimed.slice(unclaimed.length - m);
      if (!tail.every((li, i) => sameStep(st.stepOf.get(li).note, pending[i].note))) continue;
      for (const li of tail) st.stepOf.get(li).linked = true;
      for (const p of pending.splice(0, m)) p.li.remove();
      renderDays();
      return;
    }
  }

  /** Reads the newest page until the history has the steps seen live (a few tries). */
  async function catchUpSteps() {
    if (st.catchingUp) {
      st.catchUpAgain = true;
      return;
    }
    st.catchingUp = true;
    try {
      for (let attempt = 0; attempt < 6 && !st.destroyed; attempt += 1) {
        st.catchUpAgain = false;
        await refreshNewest();
        if (!st.pendingSteps.length && !st.catchUpAgain) return;
        if (!st.catchUpAgain) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    } finally {
      st.catchingUp = false;
    }
  }

  function authorName(item) {
    if (item.auto) return 'Automatic reply';
    if (item.type === 'message') return item.author === me ? 'You' : userName(item.author);
    return conv.kind === 'external' && conv.title ? title : displayName(item.from);
  }

  /**
   * One message. Where the conversation texts a customer, everything the business sent
   * (mine, a teammate's, an automatic reply) is on the right and the customer on the
   * left; elsewhere mine are on the right. Others' messages carry their author's name.
   */
  function messageEl(item) {
    const mine = item.type === 'message' && item.author === me;
    const ours = !mine && texts && (item.type === 'message' || item.auto);
    const who = h('span', { class: 'author' }, authorName(item));
    if (item.type === 'inbound' && !(conv.kind === 'external' && conv.title)) {
      numberName(item.from).then((n) => (who.textContent = displayName(n)));
    }
    const iso = new Date(item.at_ms).toISOString();
    const face = mine || item.auto || conv.kind === 'direct' ? null : avatar(item.type === 'message' ? userName(item.author) : authorName(item), { size: 'small' });
    return h(
      'li',
      {
        class: `msg ${mine ? 'mine' : ours ? 'ours' : 'theirs'}${item.auto ? ' auto' : ''}`,
        dataset: { seq: item.seq, messageId: item.message_id, author: item.author || item.from, at: item.at_ms },
      },
      h('div', { class: 'meta' }, face, who, ' · ', h('time', { datetime: iso, title: fmtFull(item.at_ms) }, fmtTime(item.at_ms))),
      h('div', { class: 'bubble' }, linkify(item.text), (item.attachments || []).map(attachmentEl)),
      mine && h('div', { class: 'receipt' }),
      (mine || ours) && texts && h('div', { class: 'delivery', 'aria-live': 'polite' }),
    );
  }

  /** A text of mine waiting in the outbox for the connection, at the end of the timeline. */
  function showWaiting(entry) {
    if (st.outbox.has(entry.key)) return;
    const li = h(
      'li',
      { class: 'msg mine waiting', dataset: { key: entry.key, at: entry.at } },
      h('div', { class: 'meta' }, h('span', { class: 'author' }, 'You')),
      h('div', { class: 'bubble' }, linkify(entry.text), entry.attachments.length ? ` 📎 ${entry.attachments.length}` : ''),
      h('div', { class: 'delivery waiting-note', role: 'status' }, 'Waiting for the connection — sent when it returns'),
    );
    st.outbox.set(entry.key, { li, text: entry.text });
    list.append(li);
    renderDays();
    scrollToEnd();
  }

  function onOutbox(e) {
    const { entry } = e.detail;
    if (entry.conversation !== id || st.destroyed) return;
    if (e.type === 'queued') {
      if (st.loaded) showWaiting(entry);
      return;
    }
    st.outbox.get(entry.key)?.li.remove();
    st.outbox.delete(entry.key);
    if (e.type === 'sent') {
      announce('Sent now that the connection is back');
      if (!st.messages.has(e.detail.message_id)) refreshNewest();
    } else {
      // Refused (not a lost connection): the words come back to the composer.
      const box = composer.querySelector('textarea');
      if (box && !box.value) {
        box.value = entry.text;
        writeDraft(me, id, { text: entry.text, attachments: [] });
      }
      const err = composer.querySelector('.error');
      if (err) err.textContent = `Not sent: ${e.detail.reason}`;
    }
  }

  /** A separator before the first item of each day ("Today", "Yesterday", a date). */
  function renderDays() {
    for (const d of list.querySelectorAll(':scope > li.day')) d.remove();
    let last = null;
    for (const li of [...list.children]) {
      const at = Number(li.dataset.at);
      if (!at) continue;
      const day = new Date(at).toDateString();
      if (day !== last) li.before(h('li', { class: 'day' }, h('span', {}, fmtDay(at))));
      last = day;
    }
  }

  /** Names the customer's number: a contact, then the name everywhere it shows. */
  function addToContacts() {
    editContact(null, {
      numbers: [conv.their_number],
      onSaved: (c) => {
        forgetNumberNames();
        conv.title = c.name;
        title = c.name;
        titleEl.textContent = c.name;
        headAvatar.replaceWith(avatar(c.name));
        fill(sub.querySelector('.their'), ` · ${displayName(conv.their_number)}`);
        for (const a of list.querySelectorAll('li.msg.theirs .author')) a.textContent = c.name;
        addContact?.previousSibling?.remove();
        addContact?.remove();
        addContactItem?.remove();
        announce(`${c.name} added to your contacts`);
        opts.onRenamed?.();
      },
    });
  }

  /** A history item's `deliveries`: where each of its texts stood when it was read. */
  function noteDeliveries(item) {
    for (const d of item.deliveries || []) noteDelivery(item.message_id, d);
    if (st.delivery.has(item.message_id)) showDelivery(item.message_id);
  }

  /** Sends a text that failed again: the same words and attachments, as a new message. */
  async function retry(item, button) {
    button.disabled = true;
    // One key per failed message: a double click sends it again once.
    if (!st.retryKeys.has(item.message_id)) st.retryKeys.set(item.message_id, uuid());
    try {
      const r = await api(`/v1/conversations/${id}/messages`, {
        method: 'POST',
        body: { text: item.text, attachments: (item.attachments || []).map((a) => a.id) },
        headers: { 'idempotency-key': st.retryKeys.get(item.message_id) },
      });
      ctx.wrote(r.position);
      button.replaceWith('Sent again below');
    } catch (e) {
      button.disabled = false;
      button.replaceWith(h('span', { class: 'error' }, describe(e)), ' ', button);
    }
  }

  /** One recipient's delivery state of a message, kept unless it is behind what is known. */
  function noteDelivery(messageId, d) {
    const per = st.delivery.get(messageId) || new Map();
    const known = per.get(d.to);
    if (!known || (DELIVERY_STAGE[d.status] ?? 0) >= (DELIVERY_STAGE[known.status] ?? 0)) per.set(d.to, d);
    st.delivery.set(messageId, per);
    showDelivery(messageId);
  }

  /** The SMS delivery state of a text we sent, per recipient, with the reason of a failure. */
  function showDelivery(messageId) {
    const li = st.messages.get(messageId);
    const per = st.delivery.get(messageId);
    const el = li?.querySelector('.delivery');
    if (!el || !per) return;
    const states = [...per.values()].map((d) => {
      const label = DELIVERY_LABEL[d.status] || d.status;
      const bad = d.status === 'failed' || d.status === 'undelivered';
      const why = bad ? d.reason || d.error_code : null;
      return { text: `${per.size > 1 ? `${displayName(d.to)}: ` : ''}${label}${why ? ` — ${why}` : ''}`, bad };
    });
    const failed = states.some((x) => x.bad);
    const item = st.mine.get(messageId);
    fill(
      el,
      states.map((x) => x.text).join(' · '),
      failed && item && ' ',
      failed && item && h('button', { type: 'button', class: 'link retry', onclick: (ev) => retry(item, ev.currentTarget) }, 'Retry'),
    );
    el.classList.toggle('failed', failed);
  }

  function attachmentEl(att) {
    const url = `/v1/attachments/${encodeURIComponent(att.id)}?conversation=${id}`;
    if (att.mime.startsWith('image/')) {
      // A thumbnail; pressed, the viewer shows the whole image.
      const img = h('img', { class: 'attachment', alt: '' });
      const thumb = h('button', { type: 'button', class: 'thumb', 'aria-label': `View image (${fmtSize(att.size_bytes)})`, disabled: true }, img);
      fetchBlob(url)
        .then((b) => {
          const u = URL.createObjectURL(b);
          st.urls.push(u);
          img.src = u;
          thumb.disabled = false;
          thumb.addEventListener('click', () => viewImage(u, att));
        })
        .catch(() => {
          thumb.replaceWith(h('span', { class: 'muted small' }, 'The image could not be loaded'));
        });
      return thumb;
    }
    return h(
      'button',
      {
        type: 'button',
        class: 'file',
        onclick: async () => {
          const b = await fetchBlob(url);
          const u = URL.createObjectURL(b);
          st.urls.push(u);
          h('a', { href: u, download: `attachment-${att.id}` }).click();
        },
      },
      `📎 Download file (${att.mime}, ${fmtSize(att.size_bytes)})`,
    );
  }

  /** The image viewer: the whole image in a dialog (Escape or Close), and Download. */
  function viewImage(src, att) {
    const dialog = h(
      'dialog',
      { class: 'viewer', 'aria-label': `Image (${fmtSize(att.size_bytes)})` },
      h('img', { src, alt: `Image sent in the conversation (${fmtSize(att.size_bytes)})` }),
      h(
        'div',
        { class: 'toolbar end' },
        h('a', { class: 'button', href: src, download: `image-${att.id}` }, 'Download'),
        h('button', { type: 'button', class: 'primary', onclick: () => dialog.close() }, 'Close'),
      ),
    );
    const opener = document.activeElement;
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener?.isConnected) opener.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector('button.primary').focus();
  }

  /** "Read by …" under the latest of my messages each participant has read. */
  function renderReceipts() {
    const mine = [...list.querySelectorAll('li.msg.mine')];
    const names = new Map();
    for (const [user, upTo] of st.readers) {
      let best = null;
      for (const li of mine) {
        const seq = Number(li.dataset.seq);
        if (seq <= upTo && (best == null || seq > Number(best.dataset.seq))) best = li;
      }
      if (best) names.set(best, [...(names.get(best) || []), userName(user)]);
    }
    for (const li of mine) {
      const el = li.querySelector('.receipt');
      const who = names.get(li);
      el.textContent = who ? (conv.kind === 'direct' ? 'Read' : `Read by ${who.join(', ')}`) : '';
    }
  }

  function nearEnd() {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
  }

  function scrollToEnd() {
    timeline.scrollTop = timeline.scrollHeight;
  }

  async function markRead() {
    if (st.destroyed || st.readRefused || document.visibilityState !== 'visible' || st.lastSeq <= st.myRead) return;
    const upTo = st.lastSeq;
    const before = st.myRead;
    st.myRead = upTo;
    try {
      await api(`/v1/conversations/${id}/read`, { method: 'POST', body: { up_to: upTo } });
      opts.onRead?.(id);
    } catch (e) {
      st.myRead = before;
      // A refusal (not a network failure) is not retried on every new message.
      if (e.status >= 400 && e.status < 500) st.readRefused = true;
    }
  }

  function onVisible() {
    if (document.visibilityState === 'visible') markRead();
  }

  // Live.

  function onFrame(f) {
    if (f.conversation_id !== id) return;
    if (!st.loaded) {
      st.queued.push(f);
      return;
    }
    const item = f.item;
    if (item.type === 'message' && item.author === me) {
      // A text waiting in the outbox whose first attempt did arrive: shown once, as sent
      // (the outbox still sends it again with its key, which writes nothing).
      for (const [key, w] of st.outbox) {
        if (w.text === item.text) {
          w.li.remove();
          st.outbox.delete(key);
          break;
        }
      }
    }
    const stick = nearEnd() || (item.type === 'message' && item.author === me);
    const li = add(item);
    // A channel renamed while open: its header follows.
    if (li && item.type === 'system' && item.note?.type === 'channel_renamed' && item.note.name && conv.kind === 'channel') {
      conv.title = item.note.name;
      title = item.note.name;
      titleEl.textContent = title;
      timeline.setAttribute('aria-label', `Messages with ${title}`);
      membersPanel?.setAttribute('aria-label', `Members of ${title}`);
    }
    // Someone joined, was added or left while the members are shown: they follow.
    const membership = ['member_joined', 'members_added', 'member_left'].includes(item.note?.type);
    if (li && item.type === 'system' && membership && membersPanel && !membersPanel.hidden) loadMembers();
    if (li) {
      list.append(li);
      renderDays();
      if (stick) scrollToEnd();
      const theirs = item.type === 'inbound' || (item.type === 'message' && item.author !== me);
      if (theirs) {
        announce(`New message from ${authorName(item)}: ${item.text}`);
        if (item.author) clearTyping(item.author);
        markRead();
      }
    }
    if (li || item.type === 'read') renderReceipts();
    if (item.type === 'auto_reply' && li) announce(`Automatic reply sent: ${item.text}`);
  }

  function onTyping(t) {
    if (t.conversation_id !== id || t.user === me) return;
    // They sent their message or cleared what they typed.
    if (t.stopped) {
      clearTyping(t.user);
      return;
    }
    const left = t.expires_at_ms - Date.now();
    const ms = left > 0 && left < 10000 ? left : 5000;
    clearTimeout(st.typing.get(t.user));
    st.typing.set(t.user, setTimeout(() => clearTyping(t.user), ms));
    renderTyping();
  }

  function clearTyping(user) {
    if (!st.typing.has(user)) return;
    clearTimeout(st.typing.get(user));
    st.typing.delete(user);
    renderTyping();
  }

  function renderTyping() {
    const names = [...st.typing.keys()].map(userName);
    typingEl.textContent = names.length
      ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…`
      : '';
  }

  // Composer.

  /** "From Support · +1 555 010 0200": the number the text goes from, by its name. */
  function fromLine() {
    const el = h('p', { class: 'from' }, `From ${displayName(conv.our_number)}`);
    numberName(conv.our_number).then((n) => {
      if (n && n !== conv.our_number) el.textContent = `From ${n} · ${displayName(conv.our_number)}`;
    });
    return el;
  }

  function renderComposer(compose) {
    if (compose.allowed === false) {
      fill(composer, h('p', { class: 'note' }, compose.note || 'You cannot reply here.'));
      return;
    }
    const error = h('p', { class: 'error small', role: 'alert' });
    const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Attachments to send' });
    const textarea = h('textarea', {
      id: `compose-${id}`,
      rows: 1,
      placeholder: texts ? 'Text message' : 'Message',
      'aria-label': texts ? `Text message to ${title}` : `Message to ${title}`,
      'aria-describedby': `compose-help-${id}`,
    });
    const help = h('span', { id: `compose-help-${id}`, class: 'visually-hidden' }, 'Enter sends, Shift+Enter starts a new line.');
    // The draft of this conversation, as it was left (here or before a reload).
    const saved = readDraft(me, id);
    if (saved) {
      textarea.value = saved.text || '';
      st.pending = saved.attachments || [];
      st.draftKey = saved.key || null;
    }
    const keepDraft = () => writeDraft(me, id, { text: textarea.value, attachments: st.pending, key: st.draftKey || undefined });
    const file = h('input', { type: 'file', class: 'file-input', hidden: true, accept: texts ? 'image/jpeg,image/png,image/gif' : null });
    const send = h('button', { type: 'button', class: 'primary', onclick: () => submit() }, 'Send');
    const emojiButton = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Insert emoji', 'aria-haspopup': 'true', 'aria-expanded': 'false' }, '😊');
    const attach = h('button', { type: 'button', class: 'icon-button', 'aria-label': texts ? 'Attach an image' : 'Attach a file', onclick: () => file.click() }, icon('attach'));
    let picker = null;

    const closePicker = () => {
      picker?.remove();
      picker = null;
      emojiButton.setAttribute('aria-expanded', 'false');
    };
    emojiButton.addEventListener('click', () => {
      if (picker) return closePicker();
      picker = h(
        'div',
        { class: 'emoji-picker', role: 'group', 'aria-label': 'Emoji' },
        EMOJI.map(([e, name]) =>
          h('button', {
            type: 'button',
            'aria-label': name,
            title: name,
            onclick: () => {
              insert(e);
              closePicker();
            },
          }, e),
        ),
      );
      picker.addEventListener('keydown', (ev) => {
        if (ev.key === 'Escape') {
          closePicker();
          emojiButton.focus();
        }
      });
      composer.append(picker);
      emojiButton.setAttribute('aria-expanded', 'true');
      picker.querySelector('button').focus();
    });

    const insert = (s) => {
      const { selectionStart: a, selectionEnd: b, value } = textarea;
      textarea.value = value.slice(0, a) + s + value.slice(b);
      textarea.selectionStart = textarea.selectionEnd = a + s.length;
      textarea.focus();
    };

    const renderChips = () =>
      fill(
        chips,
        st.pending.map((p, i) =>
          h(
            'span',
            { class: 'chip' },
            p.name,
            h('button', {
              type: 'button',
              'aria-label': `Remove ${p.name}`,
              onclick: () => {
                st.pending.splice(i, 1);
                st.draftKey = null;
                renderChips();
                keepDraft();
              },
            }, '×'),
          ),
        ),
      );

    file.addEventListener('change', async () => {
      for (const f of file.files) {
        const form = new FormData();
        form.append('file', f, f.name);
        error.textContent = `Uploading ${f.name}…`;
        try {
          const r = await api(`/v1/attachments${texts ? '?mms=true' : ''}`, { method: 'POST', form });
          st.pending.push({ attachment_id: r.attachment_id, name: f.name });
          st.draftKey = null;
          keepDraft();
          error.textContent = '';
        } catch (e) {
          error.textContent = `${f.name}: ${describe(e)}`;
        }
      }
      file.value = '';
      renderChips();
    });

    textarea.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        submit();
      }
    });
    textarea.addEventListener('input', () => {
      // Other words are another request: a new key when it is sent.
      st.draftKey = null;
      keepDraft();
      textarea.style.height = 'auto';
      textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
      if (conv.kind === 'external') return;
      if (textarea.value.trim()) ctx.stream.sendTyping(id);
      else ctx.stream.stopTyping(id);
    });

    async function submit() {
      const text = textarea.value.replace(/\s+$/, '');
      if (!text.trim() && !st.pending.length) return;
      send.disabled = true;
      error.textContent = '';
      // The same key for retries of this draft: a retried post writes nothing twice.
      st.draftKey ||= uuid();
      keepDraft();
      const clear = () => {
        st.draftKey = null;
        textarea.value = '';
        textarea.style.height = 'auto';
        st.pending = [];
        renderChips();
        writeDraft(me, id, null);
      };
      try {
        const r = await api(`/v1/conversations/${id}/messages`, {
          method: 'POST',
          body: { text, attachments: st.pending.map((p) => p.attachment_id) },
          headers: { 'idempotency-key': st.draftKey },
        });
        clear();
        ctx.wrote(r.position);
        ctx.stream.sent(id);
        setTimeout(() => {
          if (!st.destroyed && !st.messages.has(r.message_id)) refreshNewest();
        }, 1500);
      } catch (e) {
        if (e instanceof ApiError) {
          error.textContent = describe(e);
        } else {
          // No answer at all: it waits in the outbox with its key, and goes when the
          // connection returns (if it did arrive, the retry writes nothing).
          const entry = { conversation: id, text, attachments: st.pending, key: st.draftKey, at: Date.now() };
          writeOutbox(me, [...readOutbox(me), entry]);
          clear();
          announce('Not sent yet: it is sent when the connection returns');
          outboxEvents.dispatchEvent(new CustomEvent('queued', { detail: { entry } }));
          if (navigator.onLine && ctx.stream.state === 'live') flushOutbox(ctx);
        }
      } finally {
        send.disabled = false;
        // Back to the composer, unless the keyboard went elsewhere while the send was on
        // its way (the Send button, disabled meanwhile, drops the focus to the page).
        const here = document.activeElement;
        if (!here || here === document.body || here === send) textarea.focus();
      }
    }

    renderChips();
    fill(
      composer,
      texts && conv.our_number ? fromLine() : null,
      chips,
      h('div', { class: 'row' }, emojiButton, attach, file, textarea, send),
      help,
      error,
    );
  }

  // Channels: members, adding, leaving.

  function channelActions() {
    const toggle = h(
      'button',
      {
        type: 'button',
        'aria-expanded': String(!membersPanel.hidden),
        'aria-controls': membersPanel.id,
        onclick: () => {
          membersPanel.hidden = !membersPanel.hidden;
          toggle.setAttribute('aria-expanded', String(!membersPanel.hidden));
          if (!membersPanel.hidden) loadMembers();
        },
      },
      'Members',
    );
    actions.append(
      toggle,
      h('button', { type: 'button', onclick: addMembers }, 'Add members'),
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            if (!confirm(`Leave ${title}?`)) return;
            try {
              const r = await api(`/v1/conversations/${id}/leave`, { method: 'POST' });
              ctx.wrote(r.position);
              opts.onLeft?.();
            } catch (e) {
              alert(describe(e));
            }
          },
        },
        'Leave',
      ),
    );
  }

  /** The members list (members only: a refusal says so). */
  async function loadMembers() {
    const shareId = `channel-share-${id}`;
    const link = `${location.origin}${location.pathname}#/channels/${id}`;
    try {
      const r = await api(`/v1/conversations/${id}/members`);
      if (st.destroyed) return;
      fill(
        membersPanel,
        h('h3', {}, `Members (${r.members.length})`),
        h(
          'ul',
          { class: 'rows members' },
          r.members.map((m) =>
            h(
              'li',
              { dataset: { user: m.user_id } },
              avatar(m.name, { size: 'small' }),
              h('span', { class: 'grow' }, m.name, m.user_id === me ? h('span', { class: 'muted' }, ' (you)') : null),
              h('span', { class: 'muted small' }, `ext ${m.extension}`),
            ),
          ),
        ),
        h('label', { for: shareId, class: 'small' }, 'Invite link'),
        h(
          'div',
          { class: 'form-row share-row' },
          h('input', { id: shareId, readonly: true, value: link, class: 'share', onfocus: (e) => e.target.select() }),
          h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(link).then(() => announce('Invite link copied')) }, 'Copy'),
        ),
      );
    } catch (e) {
      fill(membersPanel, h('p', { class: 'error' }, e.status === 404 ? 'Only members see who is in this channel.' : describe(e)));
    }
  }

  /** A people picker: everyone not in the channel yet, with a filter; tick and Add. */
  async function addMembers() {
    await directoryReady();
    let members = new Set([me]);
    try {
      members = new Set((await api(`/v1/conversations/${id}/members`)).members.map((m) => m.user_id));
    } catch {
      /* everyone but me is offered; the server ignores those already in */
    }
    const boxes = allUsers()
      .filter((u) => !members.has(u.user_id))
      .map((u) => h('label', { class: 'inline person' }, h('input', { type: 'checkbox', value: u.user_id }), avatar(u.name, { size: 'small' }), `${u.name} (ext ${u.extension})`));
    const error = h('p', { class: 'error', role: 'alert' });
    const filter = h('input', { id: 'add-members-filter', type: 'search', placeholder: 'Name or extension', autocomplete: 'off' });
    const none = h('p', { class: 'muted', hidden: boxes.length > 0 }, 'Everyone is in this channel already.');
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const b of boxes) b.parentElement.hidden = q && !b.textContent.toLowerCase().includes(q);
    });
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'add-members-title' },
      h('h2', { id: 'add-members-title' }, `Add members to ${title}`),
      h('label', { for: 'add-members-filter' }, 'Find people'),
      filter,
      h('div', { class: 'results', role: 'group', 'aria-label': 'People' }, boxes.map((b) => h('div', {}, b)), none),
      error,
      h(
        'div',
        { class: 'toolbar' },
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            onclick: async () => {
              const users = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
              if (!users.length) return dialog.close();
              try {
                const r = await api(`/v1/conversations/${id}/members`, { method: 'POST', body: { users } });
                ctx.wrote(r.position);
                dialog.close();
                announce(`${users.length === 1 ? 'One member' : `${users.length} members`} added`);
                if (!membersPanel.hidden) loadMembers();
              } catch (e) {
                error.textContent = describe(e);
              }
            },
          },
          'Add',
        ),
      ),
    );
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  return {
    id,
    conv,
    onFrame,
    onTyping,
    onResumed: refreshNewest,
    /** Marks what is shown read (if it can be now): whether everything shown is read. */
    async readAll() {
      await markRead();
      return st.loaded && !st.readRefused && st.lastSeq <= st.myRead;
    },
    setCompose: renderComposer,
    /**
     * A step of the conversation's life seen live (an inbox's assign, transfer, return,
     * done, reopen): a grey pill at once, which the history's item of the step (who acted,
     * and when) then replaces — never both.
     */
    addStep(note, position) {
      if (!st.loaded) return;
      const key = `step|${position}`;
      if (st.systems.has(key)) return;
      st.systems.add(key);
      const stick = nearEnd();
      const li = systemEl(Date.now(), () => stepTextFromFrame(note, me));
      st.pendingSteps.push({ note, li });
      list.append(li);
      renderDays();
      if (stick) scrollToEnd();
      catchUpSteps();
    },
    setActions(f) {
      fill(actions, addContactItem && conv.title === conv.their_number ? addContactItem : null);
      if (conv.kind === 'channel') channelActions();
      f?.(actions);
    },
    destroy() {
      st.destroyed = true;
      if (ctx.openConversation === id) ctx.openConversation = null;
      document.removeEventListener('visibilitychange', onVisible);
      for (const type of ['queued', 'sent', 'refused']) outboxEvents.removeEventListener(type, onOutbox);
      for (const t of st.typing.values()) clearTimeout(t);
      for (const u of st.urls) URL.revokeObjectURL(u);
    },
  };
}
