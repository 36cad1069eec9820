// Settings: my profile (name, password), log out, notifications (this browser's, and text
// messages to desk phone), and for admins the organization's set-up, every choice picked
// from a list: people (and their role), numbers (and who sends from them), inboxes and their
// teams, queues and their agents — with "Add me" where the admin is not on them yet.
// Route: #/settings.

import { api, describe, qs, session, setEmail } from '../api.js';
import { h, fill, e164, avatar, displayName, announce } from '../dom.js';
import { allUsers, loadDirectory, directoryReady, userName, allNumbers, learnUser } from '../directory.js';
import { notifyPrefs, setNotifyPrefs, notificationsSupported, chime } from '../stream.js';

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

  // Every admin form's answer line (and the password's): a success anywhere clears the
  // refusals still shown.
  const outs = [];
  const clearRefusals = (except) => {
    for (const o of outs) {
      if (o !== except && o.classList.contains('error')) {
        o.className = 'small';
        o.textContent = '';
      }
    }
  };
  /** A small admin form: fields [id, label, element], then `submit(values)` → message. */
  const adminForm = (title, fields, submit) => {
    const out = h('p', { class: 'small', role: 'status' });
    outs.push(out);
    const form = h(
      'form',
      { class: 'card', 'aria-label': title },
      h('h3', {}, title),
      h(
        'div',
        { class: 'form-row' },
        fields.map(([id, label, el]) =>
          el.type === 'checkbox' ? h('div', { class: 'check' }, h('label', { class: 'inline', for: id }, el, label)) : h('div', {}, h('label', { for: id }, label), el),
        ),
        h('button', { type: 'submit' }, 'Save'),
      ),
      out,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(fields.map(([id, , el]) => [id, el.type === 'checkbox' ? el.checked : el.value.trim()]));
      out.className = 'small';
      try {
        out.textContent = await submit(values);
        clearRefusals(out);
        for (const [, , el] of fields) if (el.tagName === 'INPUT' && el.type !== 'checkbox') el.value = '';
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
  // My name: saved on the server (lists and messages follow), and in the sidebar at once.
  const nameInput = h('input', { id: 'profile-name', name: 'name', value: me.name, required: true, maxlength: 200, autocomplete: 'name' });
  const nameNote = h('p', { class: 'small', role: 'status', id: 'profile-name-note' });
  const nameForm = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Change your name' },
    h('label', { for: 'profile-name' }, 'Your name'),
    nameInput,
    h('button', { type: 'submit' }, 'Save name'),
  );
  nameForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      nameNote.textContent = 'A name is required.';
      return;
    }
    if (name === me.name) {
      nameNote.textContent = 'That is your name already.';
      return;
    }
    try {
      await api(`/v1/users/${me.user_id}/name`, { method: 'PUT', body: { name } });
      me.name = name;
      learnUser({ user_id: me.user_id, name });
      const who = document.querySelector('a.who');
      if (who) {
        who.setAttribute('aria-label', `Your profile: ${name}, extension ${me.extension}`);
        const label = who.querySelector('span:last-child');
        if (label) label.textContent = `${name} · ext ${me.extension}`;
      }
      nameNote.textContent = 'Saved.';
      announce('Your name is saved.');
    } catch (e) {
      nameNote.textContent = describe(e);
    }
  });
  fill(
    page,
    h('h1', {}, 'Settings'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'account-title' },
      h('h2', { id: 'account-title' }, 'Profile'),
      h(
        'div',
        { class: 'profile' },
        avatar(me.name, { size: 'large' }),
        h(
          'dl',
          {},
          h('dt', {}, 'Extension'),
          h('dd', {}, me.extension),
          h('dt', {}, 'Role'),
          h('dd', {}, me.role === 'admin' ? 'Admin' : 'Member'),
          h('dt', {}, 'Organization'),
          h('dd', {}, me.organization),
        ),
      ),
      nameForm,
      nameNote,
      passwordForm(),
      h('div', { class: 'logout-row' }, h('button', { type: 'button', onclick: () => ctx.logout() }, 'Log out')),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'notify-title' },
      h('h2', { id: 'notify-title' }, 'Notifications'),
      browserNotices(),
      h('label', { class: 'inline' }, deskPhone, 'Text messages to desk phone'),
      deskNote,
    ),
    admin && organization(),
  );
  /**
   * My password: confirmed with my login's email (as this browser logged in, when it knows
   * it) and the current password. The server signs out my other sessions; this one stays.
   */
  function passwordForm() {
    const fields = {};
    const errors = {};
    const field = (id, label, attrs, hint = null) => {
      const error = h('p', { class: 'small error', id: `${id}-error` });
      const input = h('input', { id, required: true, 'aria-describedby': [hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(' '), ...attrs });
      input.addEventListener('input', () => {
        input.removeAttribute('aria-invalid');
        error.textContent = '';
      });
      fields[id] = input;
      errors[id] = error;
      return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint && h('p', { class: 'small muted', id: `${id}-hint` }, hint), error);
    };
    const status = h('p', { class: 'small', role: 'status', id: 'pw-status' });
    outs.push(status);
    const button = h('button', { type: 'submit', class: 'primary' }, 'Change password');
    const form = h(
      'form',
      { class: 'password-form', 'aria-labelledby': 'pw-title', novalidate: true },
      h('h3', { id: 'pw-title' }, 'Change password'),
      h('p', { class: 'small muted' }, 'Your other sessions (other browsers and devices) will be signed out; this one stays.'),
      h(
        'div',
        { class: 'fields' },
        field('pw-email', 'Email you log in with', { type: 'email', name: 'email', autocomplete: 'username', value: session.email || '' }),
        field('pw-current', 'Current password', { type: 'password', name: 'current_password', autocomplete: 'current-password' }),
        field('pw-new', 'New password', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: 12 }, 'At least 12 characters.'),
        field('pw-confirm', 'Confirm new password', { type: 'password', name: 'confirm_password', autocomplete: 'new-password' }),
      ),
      h('div', { class: 'toolbar' }, button),
      status,
    );
    const chars = (s) => [...s].length;
    /** The fields' own problems, said beside each; the first one has the focus. */
    const check = () => {
      const { 'pw-email': email, 'pw-current': current, 'pw-new': fresh, 'pw-confirm': again } = fields;
      const problems = [];
      if (!email.value.trim()) problems.push([email, 'Enter the email you log in with.']);
      if (!current.value) problems.push([current, 'Enter your current password.']);
      const n = chars(fresh.value);
      if (n === 0) problems.push([fresh, 'Choose a new password.']);
      else if (n < 12) problems.push([fresh, `Too short: this one has ${n === 1 ? '1 character' : `${n} characters`}.`]);
      else if (n > 256) problems.push([fresh, `Too long: this one has ${n} characters; use at most 256.`]);
      if (!again.value) problems.push([again, 'Type the new password again.']);
      else if (again.value !== fresh.value) problems.push([again, 'The new passwords do not match.']);
      for (const [id, input] of Object.entries(fields)) {
        const problem = problems.find(([el]) => el === input);
        errors[id].textContent = problem ? problem[1] : '';
        if (problem) input.setAttribute('aria-invalid', 'true');
        else input.removeAttribute('aria-invalid');
      }
      problems[0]?.[0].focus();
      return problems.length === 0;
    };
    const waitText = (s) => (s >= 90 ? `${Math.ceil(s / 60)} minutes` : s === 1 ? '1 second' : `${s} seconds`);
    const refusal = (e) => {
      switch (e.code) {
        case 'wrong_password':
          return "That email and current password don't match your login.";
        case 'weak_password':
          return 'The new password is too short: use at least 12 characters.';
        case 'password_too_long':
          return 'The new password is too long: use at most 256 characters.';
        case 'rate_limited':
          return e.retryAfter ? `Too many attempts. Try again in ${waitText(e.retryAfter)}.` : 'Too many attempts. Wait a little, then try again.';
        default:
          return describe(e);
      }
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (button.disabled || !check()) return;
      const { 'pw-email': email, 'pw-current': current, 'pw-new': fresh, 'pw-confirm': again } = fields;
      const login = email.value.trim();
      button.disabled = true;
      let focus = button;
      try {
        const r = await api('/v1/me/password', {
          method: 'PUT',
          body: { email: login, current_password: current.value, new_password: fresh.value },
          retry: false,
        });
        // Confirmed as this login's email: offered here again next time.
        setEmail(login);
        current.value = fresh.value = again.value = '';
        const n = r?.signed_out_sessions || 0;
        status.className = 'small';
        status.textContent = `Password changed. ${n === 0 ? 'No other sessions were' : n === 1 ? '1 other session was' : `${n} other sessions were`} signed out.`;
        clearRefusals(status);
      } catch (e) {
        status.className = 'small error';
        status.textContent = refusal(e);
        if (e.code === 'wrong_password') focus = current;
        else if (e.code === 'weak_password' || e.code === 'password_too_long') focus = fresh;
      } finally {
        button.disabled = false;
        // The focus, on the button or lost when it was disabled, goes where it helps next.
        const at = document.activeElement;
        if (!at || at === document.body || at === button) focus.focus();
      }
    });
    return form;
  }

  /** The organization's set-up (admins): each part a list to pick from, and its form. */
  function organization() {
    const status = h('p', { class: 'small', role: 'status', id: 'org-status' });
    const say = (text, bad = false) => {
      status.className = bad ? 'small error' : 'small';
      status.textContent = text;
    };
    const filterBox = (id, label, placeholder, onInput) => {
      const input = h('input', { id, type: 'search', placeholder, autocomplete: 'off' });
      input.addEventListener('input', onInput);
      return [h('label', { for: id, class: 'visually-hidden' }, label), input];
    };
    const matches = (q, ...texts) => !q || texts.some((t) => String(t || '').toLowerCase().includes(q));
    let inboxes = [];
    let queues = []; // every queue of the organization, with its agents (GET /v1/queues)

    const peopleEl = h('ul', { class: 'rows', id: 'org-people', 'aria-label': 'People' });
    const [peopleLabel, peopleQ] = filterBox('org-people-filter', 'Filter people', 'Filter by name or extension', () => renderPeople());
    const numbersEl = h('ul', { class: 'rows', id: 'org-numbers', 'aria-label': 'Numbers' });
    const [numbersLabel, numbersQ] = filterBox('org-numbers-filter', 'Filter numbers', 'Filter by number, person, inbox or queue', () => renderNumbers());
    const inboxesEl = h('ul', { class: 'rows', id: 'org-inboxes', 'aria-label': 'Inboxes' });
    const queuesEl = h('ul', { class: 'rows', id: 'org-queues', 'aria-label': 'Queues' });

    /** Runs a change, says how it went, and reads everything again. */
    async function change(f, done) {
      try {
        const r = await f();
        ctx.wrote(r?.position);
        say(done);
        announce(done);
        await refresh();
      } catch (e) {
        say(describe(e), true);
      }
    }

    const userOptions = (users, placeholder) => [
      h('option', { value: '' }, placeholder),
      users.map((u) => h('option', { value: u.user_id }, `${u.name} (ext ${u.extension})`)),
    ];

    function renderPeople() {
      const q = peopleQ.value.trim().toLowerCase();
      const users = allUsers().filter((u) => matches(q, u.name, u.extension));
      fill(
        peopleEl,
        users.length === 0 && h('li', { class: 'muted' }, 'Nobody matches.'),
        users.map((u) => {
          // A button, not a select: arrowing through a select would change the role at
          // each key.
          const to = u.role === 'admin' ? 'member' : 'admin';
          const role = h(
            'button',
            {
              type: 'button',
              'aria-label': to === 'admin' ? `Make ${u.name} an admin` : `Make ${u.name} a member`,
              onclick: () => change(() => api(`/v1/users/${u.user_id}/role`, { method: 'POST', body: { role: to } }), `${u.name} is now ${to === 'admin' ? 'an admin' : 'a member'}.`),
            },
            to === 'admin' ? 'Make admin' : 'Make member',
          );
          return h(
            'li',
            { dataset: { user: u.user_id } },
            avatar(u.name),
            h('span', { class: 'grow' }, h('strong', {}, u.name), u.user_id === me.user_id ? h('span', { class: 'muted' }, ' (you)') : null, h('br'), h('span', { class: 'small muted' }, `ext ${u.extension}`)),
            h('span', { class: `state ${u.role === 'admin' ? 'on' : 'off'}` }, u.role === 'admin' ? 'Admin' : 'Member'),
            role,
          );
        }),
      );
    }

    function routeText(n) {
      if (n.route.type === 'user') return `Line of ${userName(n.route.user)}`;
      if (n.route.type === 'inbox') return `Inbox ${inboxes.find((i) => i.inbox_id === n.route.inbox)?.name || ''}`.trim();
      return `Queue ${queues.find((q) => q.queue_id === n.route.queue)?.name || ''}`.trim();
    }

    function renderNumbers() {
      const q = numbersQ.value.trim().toLowerCase();
      const digits = q.replace(/\D/g, '');
      const list = allNumbers().filter((n) => (digits && n.number.includes(digits)) || matches(q, displayName(n.number), routeText(n), ...n.assigned_to.map(userName)));
      fill(
        numbersEl,
        list.length === 0 && h('li', { class: 'muted' }, q ? 'No number matches.' : 'No numbers yet.'),
        list.map((n) => {
          const shown = displayName(n.number);
          const senders = h(
            'span',
            { class: 'chips' },
            n.assigned_to.map((u) =>
              h(
                'span',
                { class: 'chip' },
                userName(u),
                h('button', {
                  type: 'button',
                  'aria-label': `Stop ${userName(u)} sending from ${shown}`,
                  onclick: () => change(() => api(`/v1/numbers/${encodeURIComponent(n.number)}/assignees/${u}`, { method: 'DELETE' }), `${userName(u)} no longer sends from ${shown}.`),
                }, '×'),
              ),
            ),
          );
          const pick = h('select', { 'aria-label': `Let someone send from ${shown}` }, userOptions(allUsers().filter((u) => !n.assigned_to.includes(u.user_id)), 'Choose someone…'));
          const allow = h(
            'button',
            {
              type: 'button',
              'aria-label': `Let them send from ${shown}`,
              onclick: () => {
                const u = pick.value;
                if (!u) return say('Choose someone first.', true);
                change(() => api(`/v1/numbers/${encodeURIComponent(n.number)}/assignees`, { method: 'POST', body: { user: u } }), `${userName(u)} may send from ${shown}.`);
              },
            },
            'Let send',
          );
          return h(
            'li',
            { dataset: { number: n.number } },
            h('span', { class: 'grow' }, h('strong', {}, shown), h('br'), h('span', { class: 'small muted' }, routeText(n))),
            h('span', { class: `state ${n.sms_registered ? 'on' : 'off'}` }, n.sms_registered ? 'Texts' : 'Not registered for texts'),
            !n.sms_registered &&
              h('button', {
                type: 'button',
                onclick: () => change(() => api(`/v1/numbers/${encodeURIComponent(n.number)}/sms-registration`, { method: 'POST', body: { registered: true } }), `${shown} may send texts.`),
              }, 'Register for texts'),
            n.route.type === 'user' && h('div', { class: 'senders' }, h('span', { class: 'small muted' }, 'Sends:'), senders, pick, allow),
          );
        }),
      );
    }

    function renderInboxes() {
      fill(
        inboxesEl,
        inboxes.length === 0 && h('li', { class: 'muted' }, 'No inboxes yet.'),
        inboxes.map((i) => {
          const onTeam = i.members.includes(me.user_id);
          const pick = h('select', { 'aria-label': `Someone for the team of ${i.name}` }, userOptions(allUsers().filter((u) => !i.members.includes(u.user_id)), 'Choose someone…'));
          const add = h(
            'button',
            {
              type: 'button',
              'aria-label': `Add to the team of ${i.name}`,
              onclick: () => {
                const u = pick.value;
                if (!u) return say('Choose someone first.', true);
                change(() => api(`/v1/inboxes/${i.inbox_id}/members`, { method: 'POST', body: { user: u } }), `${userName(u)} is on the team of ${i.name}.`);
              },
            },
            'Add',
          );
          return h(
            'li',
            { dataset: { inbox: i.inbox_id } },
            h('span', { class: 'grow' }, h('strong', {}, i.name), h('br'), h('span', { class: 'small muted' }, displayName(i.number))),
            !onTeam &&
              h('button', {
                type: 'button',
                class: 'primary',
                'aria-label': `Add me to ${i.name}`,
                onclick: () => change(() => api(`/v1/inboxes/${i.inbox_id}/members`, { method: 'POST', body: { user: me.user_id } }), `You are on the team of ${i.name}.`),
              }, 'Add me'),
            h(
              'div',
              { class: 'senders' },
              h('span', { class: 'small muted' }, i.members.length ? 'Team:' : 'Nobody on the team yet.'),
              h(
                'span',
                { class: 'chips', role: 'group', 'aria-label': `Team of ${i.name}` },
                i.members.map((u) =>
                  h(
                    'span',
                    { class: 'chip' },
                    u === me.user_id ? `${userName(u)} (you)` : userName(u),
                    h('button', {
                      type: 'button',
                      'aria-label': `Remove ${userName(u)} from ${i.name}`,
                      onclick: () => change(() => api(`/v1/inboxes/${i.inbox_id}/members/${u}`, { method: 'DELETE' }), `${userName(u)} left the team of ${i.name}.`),
                    }, '×'),
                  ),
                ),
              ),
              pick,
              add,
            ),
          );
        }),
      );
    }

    function renderQueues() {
      fill(
        queuesEl,
        queues.length === 0 && h('li', { class: 'muted' }, 'No queues yet.'),
        queues.map((q) => {
          const id = q.queue_id;
          const name = q.name;
          const number = allNumbers().find((n) => n.route.type === 'queue' && n.route.queue === id)?.number;
          const pick = h('select', { 'aria-label': `Someone to add as an agent of ${name}` }, userOptions(allUsers().filter((u) => !q.members.includes(u.user_id)), 'Choose someone…'));
          const add = h(
            'button',
            {
              type: 'button',
              'aria-label': `Add as an agent of ${name}`,
              onclick: () => {
                const u = pick.value;
                if (!u) return say('Choose someone first.', true);
                change(() => api(`/v1/queues/${id}/members`, { method: 'POST', body: { user: u } }), `${userName(u)} is an agent of ${name}.`);
              },
            },
            'Add agent',
          );
          // Logged-in agents first (they are offered the queue's customers now).
          const agents = [...q.members].sort((a, b) => Number(q.logged_in_members.includes(b)) - Number(q.logged_in_members.includes(a)) || userName(a).localeCompare(userName(b)));
          return h(
            'li',
            { dataset: { queue: id } },
            h('span', { class: 'grow' }, h('strong', {}, name), h('br'), h('span', { class: 'small muted' }, [number && displayName(number), q.member && 'you are an agent', `${q.waiting} waiting`].filter(Boolean).join(' · '))),
            !q.member &&
              h('button', {
                type: 'button',
                class: 'primary',
                'aria-label': `Add me to ${name}`,
                onclick: () => change(() => api(`/v1/queues/${id}/members`, { method: 'POST', body: { user: me.user_id } }), `You are an agent of ${name}.`),
              }, 'Add me'),
            h(
              'div',
              { class: 'senders' },
              h('span', { class: 'small muted' }, agents.length ? 'Agents:' : 'No agents yet.'),
              h(
                'span',
                { class: 'chips', role: 'group', 'aria-label': `Agents of ${name}` },
                agents.map((u) => {
                  const on = q.logged_in_members.includes(u);
                  return h(
                    'span',
                    { class: `chip${on ? ' on' : ''}`, dataset: { user: u } },
                    h('span', { class: `presence ${on ? 'on' : 'off'}`, 'aria-hidden': 'true' }),
                    u === me.user_id ? `${userName(u)} (you)` : userName(u),
                    h('span', { class: 'visually-hidden' }, on ? ', logged in' : ', logged out'),
                    h('button', {
                      type: 'button',
                      'aria-label': `Remove ${userName(u)} from ${name}`,
                      onclick: () => change(() => api(`/v1/queues/${id}/members/${u}`, { method: 'DELETE' }), `${userName(u)} is no longer an agent of ${name}.`),
                    }, '×'),
                  );
                }),
              ),
              pick,
              add,
            ),
          );
        }),
      );
    }

    async function refresh() {
      try {
        await loadDirectory();
        // An admin's `GET /v1/queues` is every queue of the organization, with its agents.
        const [ib, qs_] = await Promise.all([api('/v1/inboxes'), api(`/v1/queues${qs({ after: ctx.after })}`)]);
        inboxes = ib.items;
        queues = [...qs_.items].sort((a, b) => a.name.localeCompare(b.name));
      } catch (e) {
        say(describe(e), true);
      }
      renderPeople();
      renderNumbers();
      renderInboxes();
      renderQueues();
      fillUsers();
    }
    refresh();

    const card = (id, title, ...children) => h('section', { class: 'card', 'aria-labelledby': id }, h('h3', { id }, title), children);
    return [
      h('h2', { class: 'section-title' }, 'Organization'),
      h('p', {}, h('a', { href: '#/webhooks' }, 'Webhooks'), ' — notify your other systems of texts, deliveries, inbox and queue work.'),
      status,
      card('org-people-title', 'People', peopleLabel, peopleQ, peopleEl),
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
          await refresh();
          return `${v['u-name']} can now log in.`;
        },
      ),
      card('org-numbers-title', 'Numbers', numbersLabel, numbersQ, numbersEl),
      adminForm(
        'Give a user a texting number',
        [
          ['n-number', 'New number', input('n-number', { placeholder: '+1 555 010 0100', inputmode: 'tel' })],
          ['n-user', 'For', userSelect('n-user')],
        ],
        async (v) => {
          const r = await api('/v1/numbers', { method: 'POST', body: { number: number(v['n-number']), user: v['n-user'] } });
          await refresh();
          return `${displayName(r.number)} added for ${userName(v['n-user'])}.`;
        },
      ),
      card('org-inboxes-title', 'Inboxes', inboxesEl),
      adminForm(
        'Create a shared inbox',
        [
          ['i-name', 'Name', input('i-name')],
          ['i-number', 'New number', input('i-number', { placeholder: '+1 555 010 0200', inputmode: 'tel' })],
          ['i-me', 'Add me to its team', h('input', { id: 'i-me', type: 'checkbox', checked: true })],
        ],
        async (v) => {
          const n = number(v['i-number']);
          const r = await api('/v1/inboxes', { method: 'POST', body: { name: v['i-name'], number: n } });
          // The team replies by text from the inbox's number: register it for SMS.
          await api(`/v1/numbers/${encodeURIComponent(n)}/sms-registration`, { method: 'POST', body: { registered: true } });
          if (v['i-me']) await api(`/v1/inboxes/${r.inbox_id}/members`, { method: 'POST', body: { user: me.user_id } });
          await refresh();
          return `Inbox created: ${v['i-name']}${v['i-me'] ? ', with you on its team' : ''}.`;
        },
      ),
      card('org-queues-title', 'Queues', h('p', { class: 'small muted' }, 'A filled dot marks an agent who is logged in, and so offered the queue’s customers; a hollow one, an agent who is logged out.'), queuesEl),
      adminForm(
        'Create an SMS queue',
        [
          ['q-name', 'Name', input('q-name')],
          ['q-number', 'New number', input('q-number', { placeholder: '+1 555 010 0300', inputmode: 'tel' })],
          ['q-me', 'Add me as an agent', h('input', { id: 'q-me', type: 'checkbox', checked: true })],
        ],
        async (v) => {
          const n = number(v['q-number']);
          const r = await api('/v1/queues', { method: 'POST', body: { name: v['q-name'], number: n } });
          await api(`/v1/numbers/${encodeURIComponent(n)}/sms-registration`, { method: 'POST', body: { registered: true } });
          if (v['q-me']) ctx.wrote((await api(`/v1/queues/${r.queue_id}/members`, { method: 'POST', body: { user: me.user_id } }))?.position);
          await refresh();
          return `Queue created: ${v['q-name']}${v['q-me'] ? ', with you as an agent' : ''}.`;
        },
      ),
    ];
  }

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
