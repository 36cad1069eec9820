// Search: full text over the messages I may see, newest first, matched words marked.
// Route: #/search.

import { api, qs, describe } from '../api.js';
import { h, fill, fmtFull, displayName } from '../dom.js';

/** The snippet with its highlighted byte ranges in <mark> (no HTML from the server). */
function snippet(s) {
  const bytes = new TextEncoder().encode(s.text);
  const dec = new TextDecoder();
  const out = [];
  let at = 0;
  for (const [a, b] of s.highlights || []) {
    if (a < at || b > bytes.length) continue;
    out.push(dec.decode(bytes.slice(at, a)), h('mark', {}, dec.decode(bytes.slice(a, b))));
    at = b;
  }
  out.push(dec.decode(bytes.slice(at)));
  return out;
}

export function mount(root, _params, ctx) {
  const input = h('input', { id: 'search-q', type: 'search', placeholder: 'Words, "a phrase", -excluded, OR' });
  const results = h('ul', { class: 'rows', id: 'search-results', 'aria-label': 'Results' });
  const status = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => run(true) }, 'More results');
  let next = null;
  const form = h(
    'form',
    { class: 'form-row', role: 'search' },
    h('div', {}, h('label', { for: 'search-q' }, 'Search messages'), input),
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(false);
  });
  root.append(h('div', { class: 'page' }, h('h1', {}, 'Search'), form, status, results, more));
  input.focus();

  async function run(append) {
    const q = input.value.trim();
    if (!q) return;
    status.textContent = 'Searching…';
    try {
      // Everything I wrote or saw live is searchable: the model waits (bounded) for it.
      const after = Math.max(ctx.after || 0, ctx.stream?.since || 0) || null;
      const r = await api(`/v1/search${qs({ q, limit: 30, before: append ? next : null, after })}`);
      next = r.next_before;
      more.hidden = next == null;
      const rows = r.items.map((hit) =>
        h(
          'li',
          {},
          h(
            'div',
            { class: 'grow' },
            h('div', { class: 'small muted' }, `${displayName(hit.author_name || hit.author)} · ${fmtFull(hit.at_ms)}`),
            h('div', {}, snippet(hit.snippet)),
          ),
          h('button', { type: 'button', onclick: () => ctx.navigate(`#/interactions/all/${hit.conversation_id}`) }, 'Open'),
        ),
      );
      if (append) results.append(...rows);
      else fill(results, rows);
      const n = results.childElementCount;
      status.textContent = n === 0 ? 'No messages match.' : n === 1 ? '1 result' : `${n} results`;
    } catch (e) {
      status.textContent = describe(e);
    }
  }
  return {};
}
