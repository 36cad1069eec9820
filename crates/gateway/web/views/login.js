// Log in, or (first run) create the organization and its first admin. Creating one is
// offered only while the server takes it (`GET /v1/bootstrap`: its first organization, or
// sign-ups the operator opened).

import { api, describe } from '../api.js';
import { h, fill } from '../dom.js';

/** The login screen in `root`; once in, `loggedIn(token, email)` (the email as typed). */
export function mount(root, loggedIn) {
  let mode = 'login';
  let signupsOpen = false;
  const box = h('div', { class: 'login' });
  fill(root, h('main', { id: 'main' }, box));

  const render = () => {
    const error = h('p', { class: 'error', role: 'alert' });
    const field = (id, label, attrs) =>
      [h('label', { for: id }, label), h('input', { id, name: id, required: true, ...attrs })];
    const first = mode === 'bootstrap';
    const form = h(
      'form',
      { 'aria-labelledby': 'login-title' },
      first && [
        field('organization', 'Organization', { autocomplete: 'organization' }),
        field('name', 'Your name', { autocomplete: 'name' }),
        field('extension', 'Extension', { inputmode: 'numeric', pattern: '[0-9]{2,8}', value: '100' }),
      ],
      field('email', 'Email', { type: 'email', autocomplete: 'username' }),
      field('password', 'Password', {
        type: 'password',
        autocomplete: first ? 'new-password' : 'current-password',
        minlength: first ? 12 : null,
      }),
      error,
      h('button', { class: 'primary', type: 'submit' }, first ? 'Create organization' : 'Log in'),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      error.textContent = '';
      try {
        const r = first
          ? await api('/v1/bootstrap', { method: 'POST', body: data })
          : await api('/v1/sessions', {
              method: 'POST',
              body: { email: data.email, password: data.password },
            });
        await loggedIn(r.token, data.email);
      } catch (e) {
        if (first && e.code === 'signups_closed') {
          // Set up meanwhile (in another browser): there is nothing left to create.
          signupsOpen = false;
          mode = 'login';
          render();
          box.querySelector('.error').textContent =
            'This server is already set up. Log in, or ask an admin of your organization for an account.';
          return;
        }
        error.textContent = describe(e);
        button.disabled = false;
      }
    });
    fill(
      box,
      h('h1', { id: 'login-title' }, first ? 'Set up Switchboard' : 'Log in to Switchboard'),
      h(
        'p',
        { class: 'muted' },
        first ? 'Create your organization and its first administrator.' : 'Your business messaging workspace.',
      ),
      form,
      h(
        'p',
        { class: 'switch', hidden: !(first || signupsOpen) },
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: async () => {
              if (!first) {
                // Asked again: the server may have been set up since this page loaded.
                const r = await api('/v1/bootstrap').catch(() => ({ open: true }));
                if (!r.open) {
                  signupsOpen = false;
                  box.querySelector('.switch').hidden = true;
                  box.querySelector('.error').textContent =
                    'This server is already set up. Log in, or ask an admin of your organization for an account.';
                  return;
                }
              }
              mode = first ? 'login' : 'bootstrap';
              render();
            },
          },
          first ? 'I already have an account' : 'First run? Create an organization',
        ),
      ),
    );
    box.querySelector('input')?.focus();
  };
  render();
  api('/v1/bootstrap')
    .then((r) => {
      if (r.open && !signupsOpen) {
        signupsOpen = true;
        const offer = box.querySelector('.switch');
        if (offer) offer.hidden = false;
      }
    })
    .catch(() => {});
}
