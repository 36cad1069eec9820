// DOM helpers: element building without innerHTML (text is always text), time formats,
// announcements for screen readers and toasts.

const PROPS = new Set(['value', 'checked', 'selected', 'indeterminate']);

/** h('button', {class: 'primary', onclick: f}, 'Send') — children may be nodes, strings or arrays. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces every child of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export function fmtFull(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Said by screen readers (polite). */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.append(h('p', {}, text));
  while (el.childNodes.length > 5) el.firstChild.remove();
}

export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}` }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}

/** A random UUID (for Idempotency-Key), also outside secure contexts. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function debounce(f, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => f(...args), ms);
  };
}

/** A phone number as typed → E.164 ("+" and digits), or null. */
export function e164(typed) {
  const s = String(typed || '').trim();
  if (!/^\+?[\d\s().-]{7,20}$/.test(s)) return null;
  const digits = s.replace(/\D/g, '');
  if (digits.length < 7 || digits.length > 15) return null;
  return s.startsWith('+') ? `+${digits}` : digits.length === 10 ? `+1${digits}` : `+${digits}`;
}

// Country calling codes of two digits (ITU-T E.164); 1 and 7 are one digit, the rest three.
const CC2 = new Set(
  '20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'.split(' '),
);

/**
 * An E.164 number as people read it: "+1 555 777 0001" (North America), otherwise the
 * country code, then the national number in groups of three that end in a group of four
 * when the length asks for it ("+44 207 946 0958", "+49 151 1234 5678"). Anything that is
 * not "+" and digits comes back as it is.
 */
export function fmtNumber(n) {
  const s = String(n ?? '');
  if (!/^\+\d{7,15}$/.test(s)) return s;
  const d = s.slice(1);
  const ccLen = d[0] === '1' || d[0] === '7' ? 1 : CC2.has(d.slice(0, 2)) ? 2 : 3;
  const cc = d.slice(0, ccLen);
  let rest = d.slice(ccLen);
  if (cc === '1' && rest.length === 10) return `+1 ${rest.slice(0, 3)} ${rest.slice(3, 6)} ${rest.slice(6)}`;
  // Threes, ending in one or two fours when the length does not divide by three.
  const tail = rest.length <= 4 ? [rest.length] : rest.length % 3 === 0 ? [] : rest.length % 3 === 1 ? [4] : rest.length === 5 ? [2, 3] : [4, 4];
  const groups = [];
  let head = rest.length - tail.reduce((a, b) => a + b, 0);
  for (; head > 0; head -= 3) {
    groups.push(rest.slice(0, 3));
    rest = rest.slice(3);
  }
  for (const n of tail) {
    groups.push(rest.slice(0, n));
    rest = rest.slice(n);
  }
  return `+${cc} ${groups.join(' ')}`;
}

/** A name as shown: a phone number formatted, anything else as it is. */
export function displayName(s) {
  return fmtNumber(s);
}

/** Up to two initials of a name; a number (or nothing) has none. */
export function initials(name) {
  const s = String(name || '').trim();
  if (!s || /^\+?[\d\s()-]+$/.test(s)) return '';
  const words = s.split(/[\s._-]+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  const first = (w) => [...w][0].toUpperCase();
  if (words.length === 0) return '';
  if (words.length === 1) return first(words[0]);
  return first(words[0]) + first(words[words.length - 1]);
}

const AVATAR_HUES = [212, 150, 28, 280, 340, 190, 100, 250];

/** A round avatar with a name's initials (decorative: the name is said beside it). */
export function avatar(name, { kind = 'person', size = '' } = {}) {
  const text = kind === 'channel' ? '#' : initials(name);
  let hash = 0;
  for (const c of String(name || '')) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  const hue = AVATAR_HUES[hash % AVATAR_HUES.length];
  const el = h('span', { class: `avatar ${size}${text ? '' : ' anon'}`, 'aria-hidden': 'true' }, text || '☎');
  // Through the CSSOM: the Content-Security-Policy refuses style attributes.
  if (text) el.style.setProperty('--hue', String(hue));
  return el;
}

const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;

/**
 * A message text as nodes: web addresses (http and https only) become links that open in
 * a new tab without access to this one; everything else stays text.
 */
export function linkify(text) {
  const s = String(text ?? '');
  const out = [];
  let at = 0;
  for (const m of s.matchAll(LINK)) {
    let url = m[0];
    // Sentence punctuation after an address is not part of it.
    const trail = url.match(/[.,;:!?)\]]+$/);
    if (trail && !(trail[0].startsWith(')') && url.includes('('))) url = url.slice(0, -trail[0].length);
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      continue;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') continue;
    out.push(s.slice(at, m.index));
    out.push(h('a', { href: parsed.href, target: '_blank', rel: 'noopener noreferrer' }, url));
    at = m.index + url.length;
  }
  out.push(s.slice(at));
  return out.filter((x) => x !== '');
}

/** "Today", "Yesterday", or the full day ("Monday, 3 March 2025"). */
export function fmtDay(ms) {
  const d = new Date(ms);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
}

/**
 * Asks before something that cannot be undone, in a modal dialog (Escape or Cancel says
 * no). Resolves to true when `confirm` (the button's words) is pressed.
 */
export function confirmDialog({ title, body = '', confirm = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let yes = false;
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-body' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-body' }, body),
      h(
        'div',
        { class: 'toolbar end' },
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
        h(
          'button',
          {
            type: 'button',
            class: danger ? 'primary danger-fill' : 'primary',
            onclick: () => {
              yes = true;
              dialog.close();
            },
          },
          confirm,
        ),
      ),
    );
    const opener = document.activeElement;
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener?.isConnected) opener.focus();
      resolve(yes);
    });
    document.body.append(dialog);
    dialog.showModal();
    // Cancel has the focus: Enter on an unread dialog does no harm.
    dialog.querySelector('button').focus();
  });
}

// Line icons (24×24, drawn with the text colour), for the navigation and icon buttons.
const ICONS = {
  chat: 'M21 12a8.5 8.5 0 0 1-12.3 7.6L3 21l1.5-5.2A8.5 8.5 0 1 1 21 12z',
  hash: 'M4 9h16M4 15h16M10 3 8 21M16 3l-2 18',
  inbox: 'M3 13h5l2 3h4l2-3h5M5.5 5h13L21 13v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-6z',
  queue: 'M16 20v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2M9 10a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM22 20v-2a4 4 0 0 0-3-3.9M16 2.1a4 4 0 0 1 0 7.8',
  more: 'M5 12h.01M12 12h.01M19 12h.01',
  search: 'M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM21 21l-4.3-4.3',
  contacts: 'M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z',
  settings: 'M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6',
  webhooks: 'M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7',
  attach: 'M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5',
  actions: 'M12 5h.01M12 12h.01M12 19h.01',
};

/** An icon from ICONS (decorative: its button or link says what it does). */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.append(path);
  return svg;
}

/**
 * A menu button: `button` opens `panel` (hidden until then) below it; Escape, a click
 * elsewhere or choosing an item closes it and gives the focus back to the button; the
 * arrow keys move between the panel's items. Answers close().
 */
export function menuButton(button, panel, { items = 'a, button' } = {}) {
  button.setAttribute('aria-expanded', 'false');
  if (panel.id) button.setAttribute('aria-controls', panel.id);
  panel.hidden = true;
  const entries = () => [...panel.querySelectorAll(items)].filter((e) => !e.disabled && !e.hidden && e.offsetParent !== null);
  const close = (refocus = true) => {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    if (refocus) button.focus();
  };
  const outside = (e) => {
    if (!panel.contains(e.target) && !button.contains(e.target)) close(false);
  };
  const open = () => {
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    document.addEventListener('pointerdown', outside, true);
    entries()[0]?.focus();
  };
  button.addEventListener('click', () => (panel.hidden ? open() : close()));
  button.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && panel.hidden) {
      e.preventDefault();
      open();
    }
  });
  panel.addEventListener('keydown', (e) => {
    const list = entries();
    const at = list.indexOf(document.activeElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = (at + (e.key === 'ArrowDown' ? 1 : -1) + list.length) % list.length;
      list[next]?.focus();
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      list[e.key === 'Home' ? 0 : list.length - 1]?.focus();
    }
  });
  // Choosing an item closes the menu (its own action runs first).
  panel.addEventListener('click', (e) => {
    if (e.target.closest(items)) close(false);
  });
  return close;
}
