// Webhooks (admins): the organization's endpoints, adding one (its secret shown once),
// removing one, and each endpoint's delivery log — status, attempts, the last answer,
// the next attempt — with a delivery's attempts and body, and Redeliver.
// Route: #/webhooks, #/webhooks/<webhook id>.

import { api, describe } from '../api.js';
import { h, fill, fmtFull, toast } from '../dom.js';

const EVENTS = [
  ['message.inbound', 'A customer texted us'],
  ['message.sent', 'We texted a customer (teammates and auto replies)'],
  ['delivery.updated', 'The carrier’s news of our texts (sent, delivered, failed)'],
  ['desk_phone.sms', 'Texts for desk phones (users who turned it on)'],
  ['conversation.assigned', 'Inbox conversation assigned or transferred'],
  ['conversation.returned', 'Inbox conversation returned to Unassigned'],
  ['conversation.done', 'Inbox conversation marked Done'],
  ['conversation.reopened', 'Done inbox conversation reopened by the customer'],
  ['queue.queued', 'Queue: a customer is waiting'],
  ['queue.claimed', 'Queue: an agent claimed'],
  ['queue.released', 'Queue: released back to the queue'],
  ['queue.transferred', 'Queue: transferred to another agent'],
  ['queue.closed', 'Queue: closed'],
];

const STATUS = {
  pending: ['Retrying', 'state off'],
  delivered: ['Delivered', 'state on'],
  failed: ['Failed', 'state failed'],
  cancelled: ['Cancelled', 'state off'],
};

export function mount(root, params, ctx) {
  const page = h('div', { class: 'page' });
  root.append(page);
  if (ctx.me.role !== 'admin') {
    fill(page, h('h1', {}, 'Webhooks'), h('p', { class: 'muted' }, 'Only admins manage webhooks.'));
    return {};
  }
  let selected = params[0] || null;
  const list = h('ul', { class: 'rows', 'aria-label': 'Endpoints' });
  const log = h('section', { class: 'card', 'aria-labelledby': 'log-title', hidden: true });
  const out = h('p', { class: 'small', role: 'status', 'aria-live': 'polite' });

  // Adding an endpoint.
  const url = h('input', { id: 'wh-url', type: 'url', required: true, placeholder: 'https://hooks.example.com/switchboard', autocomplete: 'off' });
  const boxes = EVENTS.map(([name, label]) =>
    h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'event', value: name, checked: name === 'message.inbound' }), ` ${label} `, h('code', { class: 'small muted' }, name)),
  );
  const secretBox = h('div', { class: 'secret', hidden: true, role: 'alert' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'wh-add-title' },
    h('h2', { id: 'wh-add-title' }, 'Add an endpoint'),
    h('label', { for: 'wh-url' }, 'URL (https)'),
    url,
    h('fieldset', { class: 'events' }, h('legend', {}, 'Notify it of'), boxes),
    h('button', { type: 'submit', class: 'primary' }, 'Add endpoint'),
    out,
    secretBox,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const events = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    out.className = 'small';
    out.textContent = '';
    try {
      const r = await api('/v1/webhooks', { method: 'POST', body: { url: url.value.trim(), events } });
      url.value = '';
      fill(
        secretBox,
        h('p', {}, h('strong', {}, 'Signing secret — copy it now, it is not shown again:')),
        h('code', { class: 'secret-value' }, r.secret),
        ' ',
        h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(r.secret).then(() => toast('Secret copied')) }, 'Copy'),
      );
      secretBox.hidden = false;
      out.textContent = `Added ${r.url}.`;
      await loadList();
    } catch (e) {
      out.className = 'small error';
      out.textContent = describe(e);
    }
  });

  fill(
    page,
    h('h1', {}, 'Webhooks'),
    h('p', { class: 'muted' }, 'Switchboard POSTs signed JSON to these endpoints. A failed delivery is retried for about 16 hours; every attempt is in the delivery log.'),
    h('section', { class: 'card', 'aria-labelledby': 'wh-list-title' }, h('h2', { id: 'wh-list-title' }, 'Endpoints'), list),
    log,
    form,
  );

  let endpoints = [];
  async function loadList() {
    try {
      endpoints = (await api('/v1/webhooks')).items;
    } catch (e) {
      fill(list, h('li', { class: 'error' }, describe(e)));
      return;
    }
    fill(
      list,
      endpoints.length === 0 && h('li', { class: 'muted' }, 'No endpoints yet.'),
      endpoints.map((w) =>
        h(
          'li',
          {},
          h('span', { class: 'grow' }, h('strong', {}, w.url), h('br'), h('span', { class: 'small muted' }, `${w.events.join(', ')} · added ${fmtFull(w.created_at_ms)}`)),
          h(
            'button',
            { type: 'button', 'aria-pressed': String(selected === w.webhook_id), onclick: () => ctx.navigate(`#/webhooks/${w.webhook_id}`) },
            'Delivery log',
          ),
          h('button', { type: 'button', class: 'danger', onclick: () => remove(w) }, 'Remove'),
        ),
      ),
    );
    if (selected && !endpoints.some((w) => w.webhook_id === selected)) selected = null;
    showLog();
  }

  async function remove(w) {
    if (!confirm(`Remove ${w.url}? Deliveries still retrying to it are cancelled.`)) return;
    try {
      await api(`/v1/webhooks/${w.webhook_id}`, { method: 'DELETE' });
      toast('Endpoint removed');
      if (selected === w.webhook_id) ctx.navigate('#/webhooks');
      await loadList();
    } catch (e) {
      toast(describe(e), 'error');
    }
  }

  // The delivery log of the selected endpoint, newest first, a page at a time.
  let rows = [];
  let next = null;
  async function showLog(more = false) {
    const w = endpoints.find((x) => x.webhook_id === selected);
    log.hidden = !w;
    if (!w) return;
    try {
      const q = more && next != null ? `?before=${next}` : '';
      const page = await api(`/v1/webhooks/${w.webhook_id}/deliveries${q}`);
      rows = more ? rows.concat(page.items) : page.items;
      next = page.next_before;
    } catch (e) {
      fill(log, h('h2', { id: 'log-title' }, 'Delivery log'), h('p', { class: 'error' }, describe(e)));
      return;
    }
    fill(
      log,
      h('div', { class: 'toolbar' }, h('h2', { id: 'log-title' }, `Delivery log · ${w.url}`), h('button', { type: 'button', onclick: () => showLog() }, 'Refresh')),
      rows.length === 0 ? h('p', { class: 'muted' }, 'Nothing delivered yet.') : h('ul', { class: 'rows deliveries' }, rows.map(row)),
      next != null && h('button', { type: 'button', onclick: () => showLog(true) }, 'Older deliveries'),
    );
  }

  function row(d) {
    const [label, cls] = STATUS[d.status] || [d.status, 'state off'];
    const detail = h('div', { class: 'sub', hidden: true });
    const toggle = h('button', { type: 'button', 'aria-expanded': 'false' }, 'Details');
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      detail.hidden = !open;
      if (open) await showDetail(d, detail);
    });
    const answer =
      d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : d.attempts ? '' : 'Not attempted yet');
    return h(
      'li',
      { dataset: { delivery: d.delivery_id } },
      h('span', { class: cls }, label),
      h(
        'span',
        { class: 'grow' },
        h('code', {}, d.event),
        d.redelivery_of && h('span', { class: 'small muted' }, ' (redelivery)'),
        h('br'),
        h(
          'span',
          { class: 'small muted' },
          `${fmtFull(d.created_at_ms)} · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
          answer && ` · ${answer}`,
          d.next_attempt_at_ms && d.status === 'pending' && ` · next ${fmtFull(d.next_attempt_at_ms)}`,
        ),
      ),
      toggle,
      h('button', { type: 'button', onclick: () => redeliver(d) }, 'Redeliver'),
      detail,
    );
  }

  async function showDetail(d, el) {
    fill(el, h('p', { class: 'small muted' }, 'Loading…'));
    try {
      const x = await api(`/v1/webhooks/${selected}/deliveries/${d.delivery_id}`);
      fill(
        el,
        h('h3', {}, 'Attempts'),
        x.attempt_log.length === 0
          ? h('p', { class: 'small muted' }, 'None yet.')
          : h(
              'ol',
              { class: 'small' },
              x.attempt_log.map((a) =>
                h('li', {}, `${fmtFull(a.at_ms)} · ${a.error ? a.error : `HTTP ${a.status_code}`} · ${a.took_ms} ms`),
              ),
            ),
        h('h3', {}, 'Body'),
        h('pre', { class: 'small body' }, JSON.stringify(x.request_body, null, 2)),
        h('p', { class: 'small muted' }, `Delivery ${x.delivery_id}`),
      );
    } catch (e) {
      fill(el, h('p', { class: 'error' }, describe(e)));
    }
  }

  async function redeliver(d) {
    try {
      await api(`/v1/webhooks/${selected}/deliveries/${d.delivery_id}/redeliver`, { method: 'POST' });
      toast('Sent again');
      await showLog();
    } catch (e) {
      toast(describe(e), 'error');
    }
  }

  loadList();
  return {
    update(p) {
      selected = p[0] || null;
      rows = [];
      next = null;
      loadList();
    },
  };
}
