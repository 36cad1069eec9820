// The HTTP API: bearer token, JSON in and out, errors as ApiError {status, code, message}.

const TOKEN_KEY = 'switchboard.token';
// The email this browser logged in with (offered again where the login is confirmed).
const EMAIL_KEY = 'switchboard.email';

export const session = {
  token: localStorage.getItem(TOKEN_KEY),
  /** The login's email, when this browser logged in (or set up) with it. */
  email: localStorage.getItem(EMAIL_KEY),
  /** GET /v1/me once logged in. */
  me: null,
};

const unauthorized = new Set();

/** Called when the server says the token is no longer good (expired, revoked). */
export function onUnauthorized(f) {
  unauthorized.add(f);
}

/** The session's token (null: logged out, which forgets the email too). */
export function setToken(token) {
  session.token = token;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else {
    localStorage.removeItem(TOKEN_KEY);
    setEmail(null);
  }
}

/** Remembers the email of this browser's login (null forgets it). */
export function setEmail(email) {
  session.email = email || null;
  if (email) localStorage.setItem(EMAIL_KEY, email);
  else localStorage.removeItem(EMAIL_KEY);
}

export class ApiError extends Error {
  /** `retryAfter`: the seconds a refusal for too many requests (429) asks to wait. */
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * api('/v1/me'), api(path, {method: 'POST', body: {...}}), {form: FormData}, {raw: true}
 * answers the Response. A read-your-writes query (`after=`) that finds the view behind
 * (503 view_behind) is retried a few times, and so is one refused for too many requests
 * (429) unless `retry: false` (the refusal then says how long to wait, in `retryAfter`).
 */
export async function api(path, { method = 'GET', body, form, headers = {}, raw = false, retry = true } = {}) {
  for (let attempt = 0; ; attempt++) {
    const h = { ...headers };
    if (session.token) h.authorization = `Bearer ${session.token}`;
    let payload;
    if (form) payload = form;
    else if (body !== undefined) {
      h['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(path, { method, headers: h, body: payload });
    if (r.ok) {
      if (raw) return r;
      const text = await r.text();
      return text ? JSON.parse(text) : null;
    }
    let e = {};
    try {
      e = await r.json();
    } catch {
      /* not JSON */
    }
    if (r.status === 503 && e.code === 'view_behind' && attempt < 4) {
      await new Promise((ok) => setTimeout(ok, 250 * (attempt + 1)));
      continue;
    }
    if (r.status === 429 && retry && attempt < 3) {
      const wait = Number(r.headers.get('retry-after') || 1);
      await new Promise((ok) => setTimeout(ok, Math.min(wait, 5) * 1000));
      continue;
    }
    if (r.status === 401 && session.token && !path.startsWith('/v1/sessions')) {
      for (const f of unauthorized) f();
    }
    const wait = r.status === 429 ? Number(r.headers.get('retry-after')) || null : null;
    throw new ApiError(r.status, e.code || `http_${r.status}`, e.message || r.statusText, wait);
  }
}

/** '?a=1&b=2' from an object, leaving out null and empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v != null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

let namer = () => null;

/** Who an id names (a user's name), for error messages; the directory sets it. */
export function setNamer(f) {
  namer = f;
}

const UUID = /\b(user |contact )?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/gi;

/** A readable sentence for an error: ids become names (or words), as a sentence. */
export function describe(e) {
  if (!(e instanceof ApiError)) return 'The server could not be reached.';
  let text = (e.message || e.code.replace(/_/g, ' ')).replace(UUID, (_, kind, id) => {
    const name = namer(id.toLowerCase());
    if (name) return name;
    return kind ? `another ${kind.trim()}` : 'it';
  });
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
