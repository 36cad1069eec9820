// The phonebook: my personal contacts and the organization's; search (phonebook, users,
// recent numbers); add, edit, delete; text a contact. Route: #/contacts.

import { api, describe, qs } from '../api.js';
import { h, fill, debounce, e164, uuid, avatar, displayName } from '../dom.js';
import { openNewConversation } from './compose_new.js';

export function mount(root, _params, ctx) {
  const q = h('input', { id: 'contacts-q', type: 'search', placeholder: 'Name, company, extension or number' });
  const list = h('ul', { class: 'rows', id: 'contacts-list', 'aria-label': 'Contacts' });
  const status = h('p', { class: 'muted', role: 'status' });
  root.append(
    h(
      'div',
      { class: 'page' },
      h('h1', {}, 'Contacts'),
      h(
        'div',
        { class: 'toolbar' },
        h('label', { for: 'contacts-q', class: 'visually-hidden' }, 'Search contacts'),
        q,
        h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'Add contact'),
      ),
      status,
      list,
    ),
  );
  q.addEventListener('input', debounce(() => load(), 200));

  async function load() {
    const text = q.value.trim();
    try {
      const items = text
        ? (await api(`/v1/contacts/search${qs({ q: text, limit: 50 })}`)).items
        : (await api('/v1/contacts')).items.map((c) => ({ ...c, source: 'phonebook' }));
      status.textContent = items.length ? '' : text ? 'No matches.' : 'No contacts yet.';
      fill(list, items.map(row));
    } catch (e) {
      status.textContent = describe(e);
    }
  }

  function row(c) {
    const where =
      c.source === 'directory' ? `User · ext ${c.extension}` : c.source === 'recent' ? 'Recent number' : c.scope === 'organization' ? 'Company phonebook' : 'Personal';
    return h(
      'li',
      {},
      avatar(c.name || c.numbers[0]),
      h(
        'div',
        { class: 'grow' },
        h('strong', {}, c.name || displayName(c.numbers[0]) || ''),
        c.company ? ` · ${c.company}` : '',
        h('div', { class: 'small muted' }, `${where}${c.numbers.length ? ` · ${c.numbers.map(displayName).join(', ')}` : ''}`),
      ),
      c.numbers[0] && h('button', { type: 'button', onclick: () => openNewConversation(ctx, { number: c.numbers[0] }) }, 'Text'),
      c.contact_id && h('button', { type: 'button', onclick: () => edit(c) }, 'Edit'),
      c.contact_id &&
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: async () => {
              if (!confirm(`Delete ${c.name}?`)) return;
              try {
                await api(`/v1/contacts/${c.contact_id}`, { method: 'DELETE' });
                load();
              } catch (e) {
                status.textContent = describe(e);
              }
            },
          },
          'Delete',
        ),
    );
  }

  function edit(c) {
    editContact(c, { onSaved: () => load() });
  }

  load();
  return {};
}

/**
 * The contact form in a dialog: editing `c`, or (null) adding one with `numbers` filled
 * in. `onSaved({name, company, numbers})` once the server took it.
 */
export function editContact(c, { numbers: given = [], onSaved } = {}) {
  const error = h('p', { class: 'error', role: 'alert' });
  const field = (id, label, value, attrs = {}) => [h('label', { for: id }, label), h('input', { id, value: value || '', ...attrs })];
  const form = h(
    'form',
    {},
    h('h2', { id: 'contact-title' }, c ? `Edit ${c.name}` : 'Add contact'),
    field('contact-name', 'Name', c?.name, { required: true }),
    field('contact-company', 'Company', c?.company),
    field('contact-numbers', 'Phone numbers (comma separated)', (c?.numbers || given).join(', ')),
    !c &&
      h(
        'div',
        {},
        h('label', { for: 'contact-scope' }, 'Phonebook'),
        h('select', { id: 'contact-scope' }, h('option', { value: 'personal' }, 'Personal'), h('option', { value: 'organization' }, 'Company (shared)')),
      ),
    error,
    h(
      'div',
      { class: 'toolbar' },
      h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
    ),
  );
  const dialog = h('dialog', { 'aria-labelledby': 'contact-title' }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const raw = value('contact-numbers').split(',').map((s) => s.trim()).filter(Boolean);
    const numbers = raw.map((n) => e164(n) || n);
    const body = { name: value('contact-name'), company: value('contact-company'), numbers };
    try {
      if (c) await api(`/v1/contacts/${c.contact_id}`, { method: 'PATCH', body });
      else
        await api('/v1/contacts', {
          method: 'POST',
          body: { ...body, scope: value('contact-scope') },
          headers: { 'idempotency-key': uuid() },
        });
      dialog.close();
      onSaved?.(body);
    } catch (e) {
      error.textContent = describe(e);
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
