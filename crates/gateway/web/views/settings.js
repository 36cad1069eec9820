// Settings: my account, log out, the desk-phone setting (not offered by the server yet),
// and for admins the organization's set-up: users, numbers, inboxes, queues.
// Route: #/settings.

import { api, describe } from '../api.js';
import { h, fill, e164 } from '../dom.js';
import { allUsers, loadDirectory, directoryReady } from '../directory.js';
import { notifyPrefs, setNotifyPrefs, notificationsSupported, chime } from '../stream.js';
import { knownInboxes, rememberInbox } from './inboxes.js';
import { knownQueues, rememberQueue } from './queues.js';

export function mount(root, _params, ctx) {
  const me = ctx.me;
  const page = h('div', { class: 'page' });
  root.append(page);
  const userSelects = [];

  const userSelect = (id) => {
    const s = h('select', { id, name: 'user', required: true });
    userSelects.push(s);
    return s;
  };
  const fillUsers = () => {
    for (const s of userSelects) {
      const v = s.value;
      fill(s, allUsers().map((u) => h('option', { value: u.user_id, selected: u.user_id === v }, `${u.name} (ext ${u.extension})`)));
    }
  };

  // Every admin form's answer line: a success anywhere clears the refusals still shown.
  const outs = [];
  /** A small admin form: fields [id, label, element], then `submit(values)` → message. */
  const adminForm = (title, fields, submit) => {
    const out = h('p', { class: 'small', role: 'status' });
    outs.push(out);
    const form = h(
      'form',
      { class: 'card', 'aria-label': title },
      h('h3', {}, title),
      h('div', { class: 'form-row' }, fields.map(([id, label, el]) => h('div', {}, h('label', { for: id }, label), el)), h('button', { type: 'submit' }, 'Save')),
      out,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(fields.map(([id, , el]) => [id, el.value.trim()]));
      out.className = 'small';
      try {
        out.textContent = await submit(values);
        for (const o of outs) {
          if (o !== out && o.classList.contains('error')) {
            o.className = 'small';
            o.textContent = '';
          }
        }
        for (const [, , el] of fields) if (el.tagName === 'INPUT') el.value = '';
      } catch (e) {
        out.className = 'small error';
        out.textContent = describe(e);
      }
    });
    return form;
  };
  const input = (id, attrs = {}) => h('input', { id, required: true, ...attrs });
  const number = (v) => e164(v) || v;

  const admin = me.role === 'admin';
  // Text messages to desk phone: on a server without the settings API it stays disabled.
  const deskPhone = h('input', { type: 'checkbox', id: 'desk-phone', disabled: true, 'aria-describedby': 'desk-phone-note' });
  const deskNote = h('p', { class: 'small muted', id: 'desk-phone-note', role: 'status' }, 'Loading…');
  const INBOUND = 'Inbound texts also reach the apps, whatever this says.';
  api('/v1/me/settings')
    .then((s) => {
      deskPhone.checked = !!s.text_messages_to_desk_phone;
      deskPhone.disabled = false;
      deskNote.textContent = INBOUND;
    })
    .catch((e) => {
      deskNote.textContent =
        e.status === 404 || e.status === 405
          ? 'Not available: this server has no settings API. Inbound texts always reach the apps.'
          : describe(e);
    });
  deskPhone.addEventListener('change', async () => {
    const wanted = deskPhone.checked;
    deskPhone.disabled = true;
    try {
      await api('/v1/me/settings', { method: 'PUT', body: { text_messages_to_desk_phone: wanted } });
      deskNote.textContent = `Saved. ${INBOUND}`;
    } catch (e) {
      deskPhone.checked = !wanted;
      deskNote.textContent = describe(e);
    } finally {
      deskPhone.disabled = false;
    }
  });
  fill(
    page,
    h('h1', {}, 'Settings'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'account-title' },
      h('h2', { id: 'account-title' }, 'Account'),
      h('p', {}, `${me.name} · extension ${me.extension} · ${me.role === 'admin' ? 'Admin' : 'Member'} · ${me.organization}`),
      h('button', { type: 'button', onclick: () => ctx.logout() }, 'Log out'),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'notify-title' },
      h('h2', { id: 'notify-title' }, 'Notifications'),
      browserNotices(),
      h('label', { class: 'inline' }, deskPhone, 'Text messages to desk phone'),
      deskNote,
    ),
    admin && [
      h('h2', {}, 'Organization'),
      h('p', {}, h('a', { href: '#/webhooks' }, 'Webhooks'), ' — notify your other systems of texts, deliveries, inbox and queue work.'),
      adminForm(
        'Add a user',
        [
          ['u-name', 'Name', input('u-name')],
          ['u-ext', 'Extension', input('u-ext', { inputmode: 'numeric', pattern: '[0-9]{2,8}' })],
          ['u-email', 'Email', input('u-email', { type: 'email', autocomplete: 'off' })],
          ['u-password', 'Password', input('u-password', { type: 'password', minlength: 12, autocomplete: 'new-password' })],
          ['u-role', 'Role', h('select', { id: 'u-role' }, h('option', { value: 'member' }, 'Member'), h('option', { value: 'admin' }, 'Admin'))],
        ],
        async (v) => {
          await api('/v1/users', {
            method: 'POST',
            body: { name: v['u-name'], extension: v['u-ext'], email: v['u-email'], password: v['u-password'], role: v['u-role'] },
          });
          await loadDirectory();
          fillUsers();
          return `${v['u-name']} can now log in.`;
        },
      ),
      adminForm(
        'Give a user a texting number',
        [
          ['n-number', 'Number', input('n-number', { placeholder: '+15550100100' })],
          ['n-user', 'User', userSelect('n-user')],
        ],
        async (v) => {
          const r = await api('/v1/numbers', { method: 'POST', body: { number: number(v['n-number']), user: v['n-user'] } });
          await loadDirectory();
          return `${r.number} added.`;
        },
      ),
      adminForm(
        'Create a shared inbox',
        [
          ['i-name', 'Name', input('i-name')],
          ['i-number', 'New number', input('i-number', { placeholder: '+15550100200' })],
        ],
        async (v) => {
          const n = number(v['i-number']);
          const r = await api('/v1/inboxes', { method: 'POST', body: { name: v['i-name'], number: n } });
          // The team replies by text from the inbox's number: register it for SMS.
          await api(`/v1/numbers/${encodeURIComponent(n)}/sms-registration`, { method: 'POST', body: { registered: true } });
          rememberInbox(ctx, r.inbox_id, v['i-name']);
          return `Inbox created. Its id (to share with the team): ${r.inbox_id}`;
        },
      ),
      adminForm(
        'Add an inbox member',
        [
          ['im-inbox', 'Inbox id', input('im-inbox', { list: 'known-inboxes' })],
          ['im-user', 'User', userSelect('im-user')],
        ],
        async (v) => {
          await api(`/v1/inboxes/${encodeURIComponent(v['im-inbox'])}/members`, { method: 'POST', body: { user: v['im-user'] } });
          return 'Member added.';
        },
      ),
      adminForm(
        'Create an SMS queue',
        [
          ['q-name', 'Name', input('q-name')],
          ['q-number', 'New number', input('q-number', { placeholder: '+15550100300' })],
        ],
        async (v) => {
          const n = number(v['q-number']);
          const r = await api('/v1/queues', { method: 'POST', body: { name: v['q-name'], number: n } });
          await api(`/v1/numbers/${encodeURIComponent(n)}/sms-registration`, { method: 'POST', body: { registered: true } });
          rememberQueue(ctx, r.queue_id, { name: v['q-name'] });
          return `Queue created. Its id (to share with agents): ${r.queue_id}`;
        },
      ),
      adminForm(
        'Add a queue agent',
        [
          ['qm-queue', 'Queue id', input('qm-queue', { list: 'known-queues' })],
          ['qm-user', 'User', userSelect('qm-user')],
        ],
        async (v) => {
          await api(`/v1/queues/${encodeURIComponent(v['qm-queue'])}/members`, { method: 'POST', body: { user: v['qm-user'] } });
          return 'Agent added.';
        },
      ),
      h('datalist', { id: 'known-inboxes' }, knownInboxes(ctx).map((i) => h('option', { value: i.id }, i.name || ''))),
      h('datalist', { id: 'known-queues' }, knownQueues(ctx).map((q) => h('option', { value: q.id }, q.name || ''))),
    ],
  );
  /** This browser's notices of new messages: asked for only when the box is ticked. */
  function browserNotices() {
    const prefs = notifyPrefs(me.user_id);
    const supported = notificationsSupported();
    const granted = () => supported && Notification.permission === 'granted';
    const desktop = h('input', { type: 'checkbox', id: 'notify-desktop', checked: prefs.desktop && granted(), disabled: !supported, 'aria-describedby': 'notify-desktop-note' });
    const sound = h('input', { type: 'checkbox', id: 'notify-sound', checked: prefs.sound });
    const note = h('p', { class: 'small muted', id: 'notify-desktop-note', role: 'status' });
    const explain = () => {
      if (!supported) note.textContent = 'This browser does not show desktop notifications.';
      else if (Notification.permission === 'denied') note.textContent = 'Your browser blocks notifications from this site: allow them in its site settings, then tick the box again.';
      else note.textContent = 'For new messages outside the conversation you have open, and customers waiting in your queues. This browser only.';
    };
    explain();
    desktop.addEventListener('change', async () => {
      let on = desktop.checked;
      if (on && Notification.permission !== 'granted') {
        desktop.disabled = true;
        try {
          on = (await Notification.requestPermission()) === 'granted';
        } catch {
          on = false;
        }
        desktop.disabled = false;
        desktop.checked = on;
      }
      setNotifyPrefs(me.user_id, { ...notifyPrefs(me.user_id), desktop: on });
      explain();
      if (on) note.textContent = 'Saved: this browser notifies you of new messages.';
    });
    sound.addEventListener('change', () => {
      setNotifyPrefs(me.user_id, { ...notifyPrefs(me.user_id), sound: sound.checked });
      // Heard once now (a click allows sound), so you know what it sounds like.
      if (sound.checked) chime();
    });
    return h(
      'div',
      { class: 'notify-prefs' },
      h('label', { class: 'inline' }, desktop, 'Desktop notifications for new messages'),
      note,
      h('label', { class: 'inline' }, sound, 'Play a sound for new messages'),
    );
  }

  directoryReady().then(fillUsers);
  return { onDirectory: fillUsers };
}
