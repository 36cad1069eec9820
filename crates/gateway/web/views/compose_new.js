// New conversation: search contacts, users and recent numbers, or type a number; texts go
// from one of my numbers (the From picker). Also: create a channel (joining one is on the
// Channels screen, from the organization's list or an invite link).

import { api, describe } from '../api.js';
import { h, fill, debounce, e164, displayName } from '../dom.js';
import { numbersOf, directoryReady, learnUser } from '../directory.js';

export async function openNewConversation(ctx, { number = '' } = {}) {
  await directoryReady();
  const mine = numbersOf(ctx.me.user_id);
  const error = h('p', { class: 'error', role: 'alert' });
  const results = h('ul', { class: 'results', 'aria-label': 'Matches', 'aria-live': 'polite' });
  const to = h('input', {
    id: 'new-to',
    type: 'search',
    autocomplete: 'off',
    placeholder: 'Name, extension or phone number',
    value: number,
  });
  const from = h(
    'select',
    { id: 'new-from', disabled: mine.length === 0 },
    mine.length ? mine.map((n) => h('option', { value: n }, displayName(n))) : h('option', { value: '' }, 'You have no texting number'),
  );
  const channelName = h('input', { id: 'new-channel', placeholder: 'e.g. support-team' });

  const done = (r) => {
    ctx.wrote(r.position);
    dialog.close();
    ctx.navigate(`#/interactions/all/${r.conversation_id}`);
  };
  const run = async (f) => {
    error.textContent = '';
    try {
      done(await f());
    } catch (e) {
      error.textContent = describe(e);
    }
  };
  const direct = (user) => run(() => api('/v1/conversations/direct', { method: 'POST', body: { with: user } }));
  const text = (their) =>
    run(() => {
      if (!from.value) throw new Error('You need a texting number to send texts.');
      return api('/v1/conversations/external', { method: 'POST', body: { our: from.value, their } });
    });

  const search = debounce(async () => {
    const q = to.value.trim();
    const rows = [];
    const typed = e164(q);
    if (typed) {
      rows.push(h('li', {}, h('span', { class: 'grow' }, `Text ${displayName(typed)}`), h('button', { type: 'button', onclick: () => text(typed) }, 'Text')));
    }
    if (q) {
      try {
        const r = await api(`/v1/contacts/search?q=${encodeURIComponent(q)}&limit=20`);
        for (const m of r.items) {
          if (m.source === 'directory') {
            learnUser(m);
            if (m.user_id === ctx.me.user_id) continue;
            rows.push(
              h(
                'li',
                {},
                h('span', { class: 'grow' }, `${m.name} · ext ${m.extension}`),
                h('button', { type: 'button', onclick: () => direct(m.user_id) }, 'Message'),
              ),
            );
          } else {
            for (const n of m.numbers) {
              if (n === typed) continue;
              rows.push(
                h(
                  'li',
                  {},
                  h('span', { class: 'grow' }, `${m.name || displayName(n)}${m.company ? ` (${m.company})` : ''} · ${displayName(n)}`),
                  h('button', { type: 'button', onclick: () => text(n) }, 'Text'),
                ),
              );
            }
          }
        }
      } catch (e) {
        error.textContent = describe(e);
      }
    }
    fill(results, rows.length ? rows : q ? h('li', { class: 'muted' }, 'No matches.') : null);
  }, 200);
  to.addEventListener('input', search);

  const dialog = h(
    'dialog',
    { 'aria-labelledby': 'new-title', id: 'new-conversation' },
    h('h2', { id: 'new-title' }, 'New conversation'),
    h('label', { for: 'new-to' }, 'To'),
    to,
    h('label', { for: 'new-from' }, 'From (for text messages)'),
    from,
    results,
    h(
      'details',
      {},
      h('summary', {}, 'Channels'),
      h('label', { for: 'new-channel' }, 'Create a channel'),
      h(
        'div',
        { class: 'form-row' },
        channelName,
        h(
          'button',
          {
            type: 'button',
            onclick: () =>
              run(() => api('/v1/conversations/channel', { method: 'POST', body: { name: channelName.value.trim() } })),
          },
          'Create',
        ),
      ),
      h('p', { class: 'small' }, h('a', { href: '#/channels', onclick: () => dialog.close() }, 'Browse the organization’s channels'), ' to join one.'),
    ),
    error,
    h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: () => dialog.close() }, 'Close')),
  );
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  to.focus();
  if (number) search();
}
