// Names and numbers: the organization's users (id → name, extension), its business numbers
// (mine for the From picker; those of inboxes and queues), and the names numbers resolve
// to for the caller. Users and numbers come from `GET /v1/users` and `GET /v1/numbers`;
// on a server without those lists the directory is read through contact search instead
// (every extension starts with a digit, so ten searches cover it).

import { api, setNamer } from './api.js';

const users = new Map();
setNamer((id) => users.get(id)?.name || null);
const numberNames = new Map();
let numbers = null; // [{number, sms_registered, route, assigned_to, mine}] when listed
let loading = null;

function missingRoute(e) {
  return e && (e.status === 404 || e.status === 405);
}

async function loadUsers() {
  try {
    const r = await api('/v1/users');
    for (const u of r.items) users.set(u.user_id, { ...users.get(u.user_id), ...u });
    return;
  } catch (e) {
    if (!missingRoute(e)) return;
  }
  await Promise.all(
    '0123456789'.split('').map((d) =>
      api(`/v1/contacts/search?q=${d}&limit=100`)
        .then((r) => {
          for (const m of r.items) {
            if (m.source === 'directory' && m.user_id) users.set(m.user_id, { ...users.get(m.user_id), ...m });
          }
        })
        .catch(() => {}),
    ),
  );
}

async function loadNumbers() {
  try {
    numbers = (await api('/v1/numbers')).items;
  } catch {
    numbers = null;
  }
}

export function loadDirectory() {
  loading = Promise.all([loadUsers(), loadNumbers()]);
  return loading;
}

export function directoryReady() {
  return loading || Promise.resolve();
}

/** Remembers a directory entry seen elsewhere (e.g. a search result). */
export function learnUser(m) {
  if (m && m.user_id) users.set(m.user_id, { ...users.get(m.user_id), ...m });
}

export function userName(id) {
  return users.get(id)?.name || 'Someone';
}

export function allUsers() {
  return [...users.values()].sort((a, b) => (a.name || '').localeCompare(b.name || ''));
}

/** The numbers `userId` may text from (my From picker). */
export function numbersOf(userId) {
  if (numbers) {
    return numbers.filter((n) => n.sms_registered && n.assigned_to.includes(userId)).map((n) => n.number);
  }
  return users.get(userId)?.numbers || [];
}

/** Every business number of the organization, as `GET /v1/numbers` lists them. */
export function allNumbers() {
  return numbers || [];
}

/** The name `number` resolves to for me (contact, user, inbox…), or the number itself. */
export async function numberName(number) {
  if (!number) return '';
  if (!numberNames.has(number)) {
    numberNames.set(
      number,
      api(`/v1/numbers/${encodeURIComponent(number)}/name`)
        .then((r) => r.name || null)
        .catch(() => null),
    );
  }
  return (await numberNames.get(number)) || number;
}

export function forgetNumberNames() {
  numberNames.clear();
}
