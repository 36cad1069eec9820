// Browser tests of the web client: Debian's chromium, headless, driven by playwright-core,
// against a running server with the simulated carrier. Run by `cargo test` through
// tests/web_client.rs, which starts the server; by hand:
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 node tests/web/e2e.mjs [scenario name filter]
//
// Each scenario sets up its own organization through the HTTP API, then works through the
// UI in fresh browser contexts (one per user). Screenshots of the main screens go to
// $SWITCHBOARD_SCREENSHOTS (default: target/screenshots). Exit status 0 only if every
// scenario passed. E2E_VERBOSE=1 logs each page's writes, WebSocket frames and console.

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const BASE = (process.env.SWITCHBOARD_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(process.env.SWITCHBOARD_SCREENSHOTS || 'target/screenshots');
const ONLY = process.argv[2] || '';
const PASSWORD = 'correct horse battery staple';
const WAIT = 15_000;
const RUN = Date.now().toString(36).slice(-5);

mkdirSync(SHOTS, { recursive: true });

// ---------------------------------------------------------------- the HTTP API, for set-up

async function call(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return json;
}

/** A fresh organization: its admin and `members` (names), each with email and ids. */
async function organization(tag, members = []) {
  const admin = { name: 'Ada Admin', email: `ada-${tag}-${RUN}@example.test`, extension: '100' };
  const boot = await call('POST', '/v1/bootstrap', {
    body: { organization: `Org ${tag}`, name: admin.name, extension: admin.extension, email: admin.email, password: PASSWORD },
  });
  Object.assign(admin, { token: boot.token, user_id: boot.user_id, org: boot.organization_id });
  const users = {};
  let ext = 101;
  for (const name of members) {
    const email = `${name.split(' ')[0].toLowerCase()}-${tag}-${RUN}@example.test`;
    const u = await call('POST', '/v1/users', {
      token: admin.token,
      body: { name, extension: String(ext++), role: 'member', email, password: PASSWORD },
    });
    users[name.split(' ')[0].toLowerCase()] = { name, email, user_id: u.user_id };
  }
  return { admin, users };
}

/** Phone numbers unique to this run (numbers are unique across organizations). */
let numberSeq = Number(RUN.replace(/\D/g, '').slice(-3) || '0') * 10;
/** A North American number as the client shows it: "+1 555 777 0001". */
function human(n) {
  return n.replace(/^\+1(\d{3})(\d{3})(\d{4})$/, '+1 $1 $2 $3');
}

function freshNumber() {
  numberSeq += 1;
  return `+1555${String(Date.now() % 1000).padStart(3, '0')}${String(numberSeq % 10000).padStart(4, '0')}`;
}

// ---------------------------------------------------------------- the browser

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright gives every launch a fresh temporary user-data-dir.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const pages = [];

/** A bearer token of `user` (for set-up through the API as them). */
async function tokenOf(user) {
  return (await call('POST', '/v1/sessions', { body: { email: user.email, password: PASSWORD } })).token;
}

/**
 * Desktop notifications and sounds, recorded instead of shown: `window.__notes` holds what
 * was notified, `window.__asked` how often permission was asked (granted; kept across
 * reloads of the tab), `window.__chimes` the tones played.
 */
function recordNotifications() {
  window.__notes = [];
  window.__shown = [];
  window.__asked = 0;
  window.__chimes = 0;
  class RecordedNotification {
    constructor(title, options = {}) {
      this.title = title;
      this.onclick = null;
      window.__notes.push({ title, body: options.body, tag: options.tag });
      window.__shown.push(this);
    }
    close() {}
  }
  RecordedNotification.permission = sessionStorage.getItem('e2e.permission') || 'default';
  RecordedNotification.requestPermission = async () => {
    window.__asked += 1;
    RecordedNotification.permission = 'granted';
    sessionStorage.setItem('e2e.permission', 'granted');
    return 'granted';
  };
  window.Notification = RecordedNotification;
  const Audio = window.AudioContext;
  if (Audio) {
    const create = Audio.prototype.createOscillator;
    Audio.prototype.createOscillator = function () {
      window.__chimes += 1;
      return create.call(this);
    };
  }
}

/**
 * A fresh browser context logged in as `user` through the login screen (with `password`);
 * `setup(context)` runs before the page opens.
 */
async function loggedIn(user, { phone = false, init = null, password = PASSWORD, setup = null } = {}) {
  const context = await browser.newContext({
    viewport: phone ? { width: 390, height: 844 } : { width: 1200, height: 800 },
  });
  if (init) await context.addInitScript(init);
  if (setup) await setup(context);
  // Screens follow the stream, never a timer: every setInterval is counted.
  await context.addInitScript(() => {
    const every = window.setInterval.bind(window);
    window.__intervals = 0;
    window.setInterval = (...args) => {
      window.__intervals += 1;
      return every(...args);
    };
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (process.env.E2E_VERBOSE) console.log(`  [console ${m.type()}] ${m.text()} ${JSON.stringify(m.location())}`);
    // Refusals the client shows (4xx answers) are logged by the browser as failed loads.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.errors = errors;
  if (process.env.E2E_VERBOSE) {
    page.on('response', (r) => {
      const q = r.request();
      if (q.method() !== 'GET' || r.status() >= 400 || r.url().includes('/v1/interactions')) console.log(`  [${user.email.split('-')[0]}] ${q.method()} ${r.url().replace(BASE, '')} → ${r.status()} ${Date.now() % 100000}`);
    });
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => console.log(`  [${user.email.split('-')[0]} ws] ${String(f.payload).slice(0, 160)} ${Date.now() % 100000}`));
    });
  }
  pages.push(page);
  await page.goto(`${BASE}/`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('nav.sidebar').waitFor({ timeout: WAIT });
  return page;
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's violations on `page` as it is now (the app's CSP does not apply to what the
 *  test evaluates): the serious and critical ones, and the moderate ones too (a page
 *  without its h1, headings out of order) — only minor ones are let through. */
async function accessibilityViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical' || v.impact === 'moderate');
}

/** A screenshot of a screen, which must also be free of serious accessibility violations. */
async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const bad = await accessibilityViolations(page);
  if (bad.length) throw new Error(`accessibility (axe-core) on ${name}: ${JSON.stringify(bad)}`);
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** Nothing on `page` polls: no interval timer was ever set. */
async function notPolling(page) {
  assert((await page.evaluate(() => window.__intervals)) === 0, 'no screen polls (setInterval)');
}

/** Waits until `f()` (in node) is true. */
async function until(f, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAGklEQVR4nGP8z4AKGBn+M6ABJgYcYFQCAgAAYwcBDYmVdQAAAABJRU5ErkJggg==',
  'base64',
);

// ---------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, f) => scenarios.push({ name, f });

scenario('two users exchange messages with typing indicators and read receipts', async () => {
  const { admin, users } = await organization('chat', ['Bob Builder']);
  const alice = await loggedIn(admin);
  const bob = await loggedIn(users.bob);

  // Alice starts a direct conversation by searching the directory.
  await alice.getByRole('button', { name: 'New', exact: true }).click();
  await alice.getByLabel('To').fill('Bob');
  await alice.locator('#new-conversation').getByRole('button', { name: 'Message' }).click();
  const aliceBox = alice.getByRole('textbox', { name: 'Message to' });
  await aliceBox.waitFor({ timeout: WAIT });
  await alice.locator('.thread-head h2', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  await aliceBox.fill('Hello Bob');
  await aliceBox.press('Enter');
  await alice.locator('li.msg.mine .bubble', { hasText: 'Hello Bob' }).waitFor({ timeout: WAIT });

  // Bob sees it arrive live in his list, unread, and opens it.
  const row = bob.locator('#conversations button.conv', { hasText: 'Ada Admin' });
  await row.locator('.badge', { hasText: '1' }).waitFor({ timeout: WAIT });
  assert((await row.locator('.preview').textContent()).includes('Hello Bob'), 'preview shows the last message');
  await shot(bob, 'interactions-unread');
  await row.click();
  await bob.locator('li.msg.theirs .bubble', { hasText: 'Hello Bob' }).waitFor({ timeout: WAIT });
  // Read while open: the unread badge goes.
  await row.locator('.badge').waitFor({ state: 'detached', timeout: WAIT });

  // Alice sees that Bob read it.
  await alice.locator('li.msg.mine .receipt', { hasText: 'Read' }).waitFor({ timeout: WAIT });

  // Bob types: Alice sees the indicator; Shift+Enter is a new line, Enter sends.
  const bobBox = bob.getByRole('textbox', { name: 'Message to' });
  await bobBox.click();
  await bobBox.pressSequentially('Hi Alice', { delay: 20 });
  await alice.locator('.typing', { hasText: 'Bob Builder is typing' }).waitFor({ timeout: WAIT });
  await shot(alice, 'thread-typing');
  await bobBox.press('Shift+Enter');
  await bobBox.pressSequentially('second line');
  assert((await bobBox.inputValue()) === 'Hi Alice\nsecond line', 'Shift+Enter adds a line');
  await bobBox.press('Enter');
  const reply = alice.locator('li.msg.theirs .bubble', { hasText: 'second line' });
  await reply.waitFor({ timeout: WAIT });
  assert((await reply.innerText()).includes('Hi Alice\nsecond line'), 'the new line is kept');
  await alice.locator('.typing:empty').waitFor({ timeout: WAIT });
  await bob.locator('li.msg.mine .receipt', { hasText: 'Read' }).waitFor({ timeout: WAIT });
  // Bob types and deletes it: Alice's indicator goes at once, well before it would expire
  // (5 s).
  await bobBox.pressSequentially('hmm', { delay: 20 });
  await alice.locator('.typing', { hasText: 'Bob Builder is typing' }).waitFor({ timeout: WAIT });
  await bobBox.fill('');
  await alice.locator('.typing:empty').waitFor({ timeout: 2000 });

  // Emoji from the picker, and an image attachment shown inline on the other side.
  await alice.getByRole('button', { name: 'Insert emoji' }).click();
  await alice.getByRole('button', { name: 'thumbs up' }).click();
  await alice.locator('input.file-input').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: PNG });
  await alice.locator('.chip', { hasText: 'dot.png' }).waitFor({ timeout: WAIT });
  await aliceBox.press('Enter');
  const image = bob.locator('li.msg.theirs img.attachment[src^="blob:"]');
  await image.waitFor({ timeout: WAIT });
  // A thumbnail opens the viewer; Escape closes it and the focus goes back.
  const thumb = bob.getByRole('button', { name: /^View image/ });
  await thumb.click();
  const viewer = bob.locator('dialog.viewer');
  await viewer.locator('img[src^="blob:"]').waitFor({ timeout: WAIT });
  await shot(bob, 'image-viewer');
  await bob.keyboard.press('Escape');
  await viewer.waitFor({ state: 'detached', timeout: WAIT });
  assert(await thumb.evaluate((b) => b === document.activeElement), 'the focus is back on the thumbnail');
  await bob.locator('li.msg.theirs .bubble', { hasText: '👍' }).waitFor({ timeout: WAIT });

  // The connection drops: "Reconnecting…" shows, and what was posted meanwhile arrives
  // once it resumes from the last position.
  await alice.evaluate(() => window.switchboard.stream.drop());
  await alice.locator('.conn', { hasText: 'Reconnecting' }).waitFor({ timeout: WAIT });
  await shot(alice, 'reconnecting');
  await bobBox.fill('sent while you were away');
  await bobBox.press('Enter');
  await alice.locator('.conn[data-state="live"]').waitFor({ state: 'attached', timeout: WAIT });
  await alice.locator('li.msg.theirs .bubble', { hasText: 'sent while you were away' }).waitFor({ timeout: WAIT });
  assert((await alice.locator('li.msg .bubble', { hasText: 'sent while you were away' }).count()) === 1, 'no duplicate');
  // Caught up into the open conversation, it is read at once: Bob sees it read, and
  // Alice's list shows nothing unread.
  await bob.locator('li.msg.mine', { hasText: 'sent while you were away' }).locator('.receipt', { hasText: 'Read' }).waitFor({ timeout: WAIT });
  await alice.locator('#conversations button.conv', { hasText: 'Bob Builder' }).locator('.badge').waitFor({ state: 'detached', timeout: WAIT });
  // Without a position to resume from (a connection that never got a frame), the open
  // conversation is read again on reconnect, and what that brings is marked read too.
  await alice.evaluate(() => {
    window.switchboard.stream.since = null;
    window.switchboard.stream.drop();
  });
  await alice.locator('.conn', { hasText: 'Reconnecting' }).waitFor({ timeout: WAIT });
  await bobBox.fill('and one more thing');
  await bobBox.press('Enter');
  await alice.locator('li.msg.theirs .bubble', { hasText: 'and one more thing' }).waitFor({ timeout: WAIT });
  await bob.locator('li.msg.mine', { hasText: 'and one more thing' }).locator('.receipt', { hasText: 'Read' }).waitFor({ timeout: WAIT });
  await alice.locator('#conversations button.conv', { hasText: 'Bob Builder' }).locator('.badge').waitFor({ state: 'detached', timeout: WAIT });
  await shot(alice, 'thread');

  // Channels: create one, add Bob, and he sees it.
  await alice.getByRole('button', { name: 'New', exact: true }).click();
  await alice.locator('#new-conversation summary').click();
  await alice.getByLabel('Create a channel').fill('launch');
  await alice.locator('#new-conversation').getByRole('button', { name: 'Create' }).click();
  await alice.locator('.thread-head h2', { hasText: 'launch' }).waitFor({ timeout: WAIT });
  await alice.getByRole('button', { name: 'Add members' }).click();
  await alice.getByLabel('Bob Builder (ext 101)').check();
  await alice.getByRole('button', { name: 'Add', exact: true }).click();
  await alice.locator('dialog').waitFor({ state: 'detached', timeout: WAIT });
  const channelBox = alice.getByRole('textbox', { name: 'Message to launch' });
  await channelBox.fill('Welcome to #launch');
  await channelBox.press('Enter');
  await alice.locator('li.msg.mine .bubble', { hasText: 'Welcome to #launch' }).waitFor({ timeout: WAIT });
  await bob.getByRole('button', { name: 'Channels' }).click();
  await bob.locator('#conversations button.conv', { hasText: 'launch' }).locator('.preview', { hasText: 'Welcome to #launch' }).waitFor({ timeout: WAIT });
  await shot(bob, 'interactions-channels');

  // Scroll back: a long channel opens on its newest page; older pages load at the top.
  const archive = await call('POST', '/v1/conversations/channel', {
    token: admin.token,
    body: { name: 'archive', members: [users.bob.user_id] },
  });
  for (let i = 1; i <= 45; i++) {
    await call('POST', `/v1/conversations/${archive.conversation_id}/messages`, { token: admin.token, body: { text: `archive note ${i}` } });
  }
  await bob.locator('#conversations button.conv', { hasText: 'archive' }).click();
  await bob.locator('li.msg .bubble', { hasText: 'archive note 45' }).waitFor({ timeout: WAIT });
  assert((await bob.locator('li.msg .bubble', { hasText: /^archive note 1$/ }).count()) === 0, 'only the newest page at first');
  await bob.locator('.timeline').evaluate((el) => (el.scrollTop = 0));
  await bob.locator('li.msg .bubble', { hasText: /^archive note 1$/ }).waitFor({ state: 'attached', timeout: WAIT });
  assert((await bob.locator('li.msg').count()) === 45, 'every message once');

  // On a phone-sized screen the list and the thread take turns.
  const phone = await loggedIn(users.bob, { phone: true });
  await phone.locator('#conversations button.conv[data-kind="direct"]').waitFor({ timeout: WAIT });
  await shot(phone, 'phone-interactions');
  await phone.locator('#conversations button.conv[data-kind="direct"]').click();
  await phone.locator('li.msg .bubble', { hasText: 'Hello Bob' }).waitFor({ timeout: WAIT });
  assert(!(await phone.locator('#conversations').isVisible()), 'the list gives way to the thread on a phone');
  await shot(phone, 'phone-thread');
});

scenario('an inbox conversation is assigned, transferred and marked done, live for the team', async () => {
  const { admin, users } = await organization('inbox', ['Ina Agent', 'Joe Agent']);
  const inboxNumber = freshNumber();
  const customer = freshNumber();
  const { inbox_id } = await call('POST', '/v1/inboxes', { token: admin.token, body: { name: 'Support', number: inboxNumber } });
  await call('POST', `/v1/numbers/${encodeURIComponent(inboxNumber)}/sms-registration`, { token: admin.token, body: { registered: true } });
  for (const u of [users.ina, users.joe]) {
    await call('POST', `/v1/inboxes/${inbox_id}/members`, { token: admin.token, body: { user: u.user_id } });
  }
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: inboxNumber, text: 'Where is my order?' } });

  const ina = await loggedIn(users.ina);
  const joe = await loggedIn(users.joe);
  // The client finds the inboxes I am on by itself.
  await ina.getByRole('link', { name: 'Inboxes' }).click();
  await ina.locator('#inbox-picker option', { hasText: 'Support' }).waitFor({ state: 'attached', timeout: WAIT });
  const row = ina.locator('.conv-list button.conv', { hasText: human(customer) });
  await row.waitFor({ timeout: WAIT });
  await row.locator('.badge.blue').waitFor({ timeout: WAIT });
  await shot(ina, 'inbox-unassigned');
  // Joe watches the Unassigned view: what Ina does shows up there live.
  await joe.goto(`${BASE}/#/inboxes/${inbox_id}/unassigned`);
  const joeRow = joe.locator('.conv-list button.conv', { hasText: human(customer) });
  await joeRow.waitFor({ timeout: WAIT });

  await row.click();
  await ina.locator('li.msg .bubble', { hasText: 'Where is my order?' }).waitFor({ timeout: WAIT });
  // No reply field until it is mine.
  await ina.locator('.composer .note', { hasText: 'Assign this conversation to yourself' }).waitFor({ timeout: WAIT });
  assert((await ina.locator('.composer textarea').count()) === 0, 'no reply field when unassigned');

  await ina.getByRole('button', { name: 'Assign to me' }).click();
  // The step shows in the conversation as it happens, like a queue's, saying who did it.
  await ina.locator('li.system .pill', { hasText: 'You took it' }).waitFor({ timeout: WAIT });
  // Taken: it leaves Joe's Unassigned view without him doing anything.
  await joeRow.waitFor({ state: 'detached', timeout: WAIT });
  await joe.getByRole('button', { name: 'All open' }).click();
  await joeRow.locator('.flag.grey', { hasText: 'Ina Agent' }).waitFor({ timeout: WAIT });
  await shot(joe, 'inbox-live-assigned-to-someone-else');

  const box = ina.getByRole('textbox', { name: 'Text message to' });
  await box.waitFor({ timeout: WAIT });
  await box.fill('Let me check that for you.');
  await box.press('Enter');
  await ina.locator('li.msg.mine .bubble', { hasText: 'Let me check' }).waitFor({ timeout: WAIT });
  await ina.getByRole('button', { name: 'Assigned to me' }).click();
  const mineRow = ina.locator('.conv-list button.conv', { hasText: human(customer) });
  await mineRow.locator('.flag.green').waitFor({ timeout: WAIT });
  // The view I chose stays chosen when I come back to Inboxes from elsewhere.
  await ina.getByRole('link', { name: 'Search' }).click();
  await ina.getByRole('link', { name: 'Inboxes' }).click();
  await ina.locator('button[aria-pressed="true"]', { hasText: 'Assigned to me' }).waitFor({ timeout: WAIT });
  await mineRow.locator('.flag.green').waitFor({ timeout: WAIT });
  await mineRow.click();
  await shot(ina, 'inbox-assigned-to-me');

  // Transfer to Joe: Ina loses the reply field; Joe's open view marks it his, live.
  await ina.getByRole('button', { name: 'Transfer' }).click();
  await ina.getByLabel('Team member').selectOption({ label: 'Joe Agent (ext 102)' });
  await ina.locator('dialog').getByRole('button', { name: 'Transfer' }).click();
  await ina.locator('.composer .note', { hasText: 'Assigned to Joe Agent' }).waitFor({ timeout: WAIT });
  await ina.locator('li.system .pill', { hasText: 'You transferred it to Joe Agent' }).waitFor({ timeout: WAIT });
  await joeRow.locator('.flag.green', { hasText: 'Mine' }).waitFor({ timeout: WAIT });
  await shot(joe, 'inbox-live-transferred-to-me');

  // Ina watches All open while Joe marks it done: it leaves her view live.
  await ina.getByRole('button', { name: 'All open' }).click();
  const inaOpenRow = ina.locator('.conv-list button.conv', { hasText: human(customer) });
  await inaOpenRow.waitFor({ timeout: WAIT });
  await joeRow.click();
  await joe.getByRole('textbox', { name: 'Text message to' }).waitFor({ timeout: WAIT });
  await joe.getByRole('button', { name: 'Mark as done' }).click();
  await joe.locator('.composer .note', { hasText: 'Done' }).waitFor({ timeout: WAIT });
  await joe.locator('li.system .pill', { hasText: 'Marked done by you' }).waitFor({ timeout: WAIT });
  await joeRow.waitFor({ state: 'detached', timeout: WAIT });
  await inaOpenRow.waitFor({ state: 'detached', timeout: WAIT });
  await joe.getByRole('button', { name: 'Done', exact: true }).click();
  await joe.locator('.conv-list button.conv', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  await shot(joe, 'inbox-done');

  // A new text reopens it as Unassigned: Ina's Unassigned view shows it live.
  await ina.getByRole('button', { name: 'Unassigned' }).click();
  await ina.locator('.conv-list button.conv', { hasText: human(customer) }).waitFor({ state: 'detached', timeout: WAIT });
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: inboxNumber, text: 'One more thing' } });
  await ina.locator('.conv-list button.conv', { hasText: human(customer) }).locator('.badge.blue').waitFor({ timeout: WAIT });
  // Found by Search, it opens as in the inbox: its title, the inbox's actions, and no
  // reply field until it is taken.
  await joe.getByRole('link', { name: 'Search' }).click();
  await joe.getByLabel('Search messages').fill('"One more thing"');
  await joe.getByRole('button', { name: 'Search', exact: true }).click();
  await joe.locator('#search-results li', { hasText: 'One more thing' }).getByRole('button', { name: 'Open' }).click();
  await until(async () => (await joe.evaluate(() => location.hash)).startsWith(`#/inboxes/${inbox_id}/`), 'the inbox view');
  await joe.locator('.thread-head h2', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  await joe.getByRole('button', { name: 'Assign to me' }).waitFor({ timeout: WAIT });
  await joe.locator('.composer .note', { hasText: 'Assign this conversation to yourself' }).waitFor({ timeout: WAIT });
  assert((await joe.locator('.composer textarea').count()) === 0, 'no reply field from search either');
  await shot(joe, 'inbox-from-search');

  // The trail is the history's: who did what, and when, once each — opened afresh, after
  // a step seen live and the history read again (a reconnect), and after a reload.
  const trail = [
    'Ina Agent took it',
    'Ina Agent transferred it to you',
    'Marked done by you',
    'Reopened by a new text',
  ];
  const pills = async (page) => (await page.locator('li.system .pill').allInnerTexts()).map((t) => t.replace(/ · .*$/, ''));
  const sameTrail = async (page, want, what) => {
    await until(async () => JSON.stringify(await pills(page)) === JSON.stringify(want), `${what}: ${JSON.stringify(want)} (shown: ${JSON.stringify(await pills(page))})`);
  };
  await sameTrail(joe, trail, 'the trail from the history');
  assert(/ · \d{1,2}:\d{2}/.test((await joe.locator('li.system .pill').first().innerText())), 'each step says when');
  await joe.getByRole('button', { name: 'Assign to me' }).click();
  await sameTrail(joe, [...trail, 'You took it'], 'a step seen live');
  await joe.evaluate(() => window.switchboard.stream.drop());
  await joe.locator('.conn', { hasText: 'Reconnecting' }).waitFor({ timeout: WAIT });
  const reread = joe.waitForResponse((r) => r.url().includes('/messages') && r.request().method() === 'GET', { timeout: WAIT });
  await joe.locator('.conn[data-state="live"]').waitFor({ state: 'attached', timeout: WAIT });
  await reread;
  await sameTrail(joe, [...trail, 'You took it'], 'the history read again after a reconnect');
  await joe.reload();
  await joe.locator('li.msg .bubble', { hasText: 'One more thing' }).waitFor({ timeout: WAIT });
  await sameTrail(joe, [...trail, 'You took it'], 'the trail after a reload');
  await shot(joe, 'inbox-trail');
  // Ina, who did the first steps, reads them as hers.
  await ina.goto(`${BASE}/#/inboxes/${inbox_id}/open/${await joe.evaluate(() => location.hash.split('/').pop())}`);
  const inasTrail = ['You took it', 'You transferred it to Joe Agent', 'Marked done by Joe Agent', 'Reopened by a new text', 'Joe Agent took it'];
  await sameTrail(ina, inasTrail, 'the trail as Ina reads it');
  // Joe returns it while Ina has it open: she sees who did it, once.
  await joe.getByRole('button', { name: 'Return to inbox' }).click();
  await sameTrail(joe, [...trail, 'You took it', 'Returned to the inbox by you'], 'a return seen live');
  await sameTrail(ina, [...inasTrail, 'Returned to the inbox by Joe Agent'], 'a teammate’s step seen live');
  await notPolling(ina);
  await notPolling(joe);
  const phone = await loggedIn(users.joe, { phone: true });
  await phone.goto(`${BASE}/#/inboxes/${inbox_id}/open/${await joe.evaluate(() => location.hash.split('/').pop())}`);
  await sameTrail(phone, [...trail, 'You took it', 'Returned to the inbox by you'], 'the trail on a phone');
  await shot(phone, 'phone-inbox-trail');
});

scenario("a queue claim by one agent leaves the other's waiting list live; agents log in and out", async () => {
  const { admin, users } = await organization('queue', ['Quinn Agent', 'Rory Agent']);
  const queueNumber = freshNumber();
  const customer = freshNumber();
  const { queue_id } = await call('POST', '/v1/queues', { token: admin.token, body: { name: 'Helpdesk', number: queueNumber } });
  await call('POST', `/v1/numbers/${encodeURIComponent(queueNumber)}/sms-registration`, { token: admin.token, body: { registered: true } });
  for (const u of [users.quinn, users.rory]) {
    await call('POST', `/v1/queues/${queue_id}/members`, { token: admin.token, body: { user: u.user_id } });
  }
  const quinn = await loggedIn(users.quinn);
  const rory = await loggedIn(users.rory);
  const queueRow = (page) => page.locator(`#queue-list li[data-queue="${queue_id}"]`);
  for (const page of [quinn, rory]) {
    await page.getByRole('link', { name: 'Queues' }).click();
    // The server says I am logged out: the toggle offers to log in.
    await queueRow(page).locator('.state', { hasText: 'Logged out' }).waitFor({ timeout: WAIT });
    await queueRow(page).getByRole('button', { name: 'Log in to Helpdesk' }).click();
    await queueRow(page).locator('.state', { hasText: 'Logged in' }).waitFor({ timeout: WAIT });
    await queueRow(page).getByRole('button', { name: 'Log out of Helpdesk' }).waitFor({ timeout: WAIT });
  }
  // The state is the server's: a fresh page shows it too.
  await rory.reload();
  await queueRow(rory).locator('.state', { hasText: 'Logged in' }).waitFor({ timeout: WAIT });
  await shot(rory, 'queue-logged-in');
  // Rory follows the queue's own waiting list as well (keyboard: Enter on the button).
  const expand = queueRow(rory).getByRole('button', { name: 'Waiting list' });
  await expand.focus();
  await expand.press('Enter');
  assert((await expand.getAttribute('aria-expanded')) === 'true', 'the waiting list is expanded');
  await queueRow(rory).locator('ul.sub li', { hasText: 'Nobody is waiting' }).waitFor({ timeout: WAIT });

  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: queueNumber, text: 'I need help' } });
  const waitingAt = (page) => page.locator('#queue-waiting li', { hasText: human(customer) });
  await waitingAt(quinn).waitFor({ timeout: WAIT });
  await waitingAt(rory).waitFor({ timeout: WAIT });
  await queueRow(rory).locator('ul.sub li', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  await queueRow(rory).locator('.muted', { hasText: '1 waiting' }).waitFor({ timeout: WAIT });
  // The waiting list shows what the customer wrote.
  await waitingAt(rory).locator('.words', { hasText: 'I need help' }).waitFor({ timeout: WAIT });
  await shot(rory, 'queue-waiting');
  // Claim opens the conversation, with its lifecycle as grey pills and the queue's actions
  // in its header.
  await waitingAt(quinn).getByRole('button', { name: 'Claim' }).click();
  await until(async () => (await quinn.evaluate(() => location.hash)).startsWith('#/queues/'), 'the claimed conversation open');
  const quinnHead = quinn.locator('.thread-head');
  await quinnHead.locator('h2', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  await quinn.locator('.pill', { hasText: 'Claimed by you' }).waitFor({ timeout: WAIT });
  await quinn.locator('#queue-mine li', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  // Gone from Rory's lists without Rory doing anything.
  await waitingAt(rory).waitFor({ state: 'detached', timeout: WAIT });
  await queueRow(rory).locator('ul.sub li', { hasText: human(customer) }).waitFor({ state: 'detached', timeout: WAIT });
  const box = quinn.getByRole('textbox', { name: 'Text message to' });
  await box.fill('Happy to help!');
  await box.press('Enter');
  await quinn.locator('li.msg.mine .bubble', { hasText: 'Happy to help!' }).waitFor({ timeout: WAIT });
  await shot(quinn, 'queue-thread');

  // Transfer to Rory from the header: Quinn's copy turns read only.
  // Only the queue's other logged-in agents are offered (not Ada, who is no agent).
  await quinnHead.getByRole('button', { name: 'Transfer' }).click();
  await quinn.getByLabel('Agent (logged in)').waitFor({ timeout: WAIT });
  const offered = await quinn.getByLabel('Agent (logged in)').evaluate((s) => [...s.options].map((o) => o.textContent));
  assert(JSON.stringify(offered) === JSON.stringify(['Rory Agent (ext 102)']), `only Rory is offered: ${offered}`);
  await shot(quinn, 'queue-transfer');
  await quinn.getByLabel('Agent (logged in)').selectOption({ label: 'Rory Agent (ext 102)' });
  await quinn.locator('dialog').getByRole('button', { name: 'Transfer' }).click();
  await quinn.locator('#queue-mine li', { hasText: human(customer) }).waitFor({ state: 'detached', timeout: WAIT });
  await quinn.locator('.composer .note', { hasText: 'read only' }).waitFor({ timeout: WAIT });
  assert((await quinnHead.getByRole('button', { name: 'Close' }).count()) === 0, 'no queue actions once it is not hers');
  const roryRow = rory.locator('#queue-mine li', { hasText: human(customer) });
  await roryRow.waitFor({ timeout: WAIT });
  await roryRow.getByRole('link').click();
  const roryHead = rory.locator('.thread-head');
  // Close asks first; Escape says no.
  await roryHead.getByRole('button', { name: 'Close' }).click();
  const confirmClose = rory.getByRole('dialog', { name: 'Close this conversation?' });
  await confirmClose.waitFor({ timeout: WAIT });
  await shot(rory, 'queue-close-confirm');
  await rory.keyboard.press('Escape');
  await confirmClose.waitFor({ state: 'detached', timeout: WAIT });
  assert((await roryRow.count()) === 1, 'still open after Escape');
  await roryHead.getByRole('button', { name: 'Close' }).click();
  await confirmClose.getByRole('button', { name: 'Close conversation' }).click();
  await roryRow.waitFor({ state: 'detached', timeout: WAIT });
  await rory.locator('.pill', { hasText: 'Closed by you' }).waitFor({ timeout: WAIT });
  // The history finds it, and opens it read only.
  await rory.getByLabel('Search the history').fill(customer.slice(-7));
  const historyRow = rory.locator('#queue-history li', { hasText: human(customer) });
  await historyRow.waitFor({ timeout: WAIT });
  await rory.goto(`${BASE}/#/queues`);
  await historyRow.getByRole('link').click();
  await rory.locator('li.msg .bubble', { hasText: 'Happy to help!' }).waitFor({ timeout: WAIT });
  await rory.locator('.composer .note', { hasText: 'Closed. This conversation is read only.' }).waitFor({ timeout: WAIT });
  await rory.locator('.pill', { hasText: 'Claimed by Quinn Agent' }).waitFor({ timeout: WAIT });
  assert((await rory.locator('.composer textarea').count()) === 0, 'no reply field in the history');
  await shot(rory, 'queue-history');

  // Rory logs out: the next customer is offered to Quinn only.
  await queueRow(rory).getByRole('button', { name: 'Log out of Helpdesk' }).click();
  await queueRow(rory).locator('.state', { hasText: 'Logged out' }).waitFor({ timeout: WAIT });
  await queueRow(rory).getByRole('button', { name: 'Log in to Helpdesk' }).waitFor({ timeout: WAIT });
  const next = freshNumber();
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: next, to: queueNumber, text: 'Hello?' } });
  await quinn.locator('#queue-waiting li', { hasText: human(next) }).waitFor({ timeout: WAIT });
  // Rory still sees the queue's own list (he is an agent of it), but is not offered it.
  await queueRow(rory).locator('ul.sub li', { hasText: human(next) }).waitFor({ timeout: WAIT });
  assert((await rory.locator('#queue-waiting li', { hasText: human(next) }).count()) === 0, 'not offered to a logged-out agent');
  await rory.locator('#queue-waiting li', { hasText: 'Log in to a queue' }).waitFor({ timeout: WAIT });
  await shot(rory, 'queue-logged-out');
  await notPolling(quinn);
  await notPolling(rory);

  // On a phone-sized screen the queue screen stacks.
  const phone = await loggedIn(users.quinn, { phone: true });
  await phone.getByRole('link', { name: 'Queues' }).click();
  await phone.locator('#queue-waiting li', { hasText: human(next) }).waitFor({ timeout: WAIT });
  await phone.locator('#queue-waiting li', { hasText: human(next) }).locator('.words', { hasText: 'Hello?' }).waitFor({ timeout: WAIT });
  await shot(phone, 'phone-queues');
  // Claimed on the phone: the conversation takes the screen, its actions in the menu.
  await phone.getByRole('button', { name: `Claim ${human(next)}` }).click();
  await phone.locator('.thread-head h2', { hasText: human(next) }).waitFor({ timeout: WAIT });
  await phone.getByRole('button', { name: 'Conversation actions' }).click();
  await phone.locator('.thread-head').getByRole('button', { name: 'Release' }).waitFor({ timeout: WAIT });
  await shot(phone, 'phone-queue-thread');
  // Rory is logged out: nobody can take it, and the dialog says so.
  await phone.locator('.thread-head').getByRole('button', { name: 'Transfer' }).click();
  const nobody = phone.getByRole('dialog', { name: 'Transfer to an agent of Helpdesk' });
  await nobody.getByText('No other agent of Helpdesk is logged in.').waitFor({ timeout: WAIT });
  assert(await nobody.getByRole('button', { name: 'Transfer' }).isDisabled(), 'nothing to transfer to');
  await shot(phone, 'phone-queue-transfer-nobody');
  await nobody.getByRole('button', { name: 'Cancel' }).click();
  await nobody.waitFor({ state: 'detached', timeout: WAIT });
});

scenario('channels: create, join by link, members, leave', async () => {
  const { admin, users } = await organization('channels', ['Bob Builder', 'Cara Coder', 'Dan Designer']);
  const townHall = await call('POST', '/v1/conversations/channel', {
    token: admin.token,
    body: { name: 'town-hall', members: [users.bob.user_id] },
  });
  const ada = await loggedIn(admin);
  const cara = await loggedIn(users.cara);

  // Ada creates a channel from the Channels screen.
  await ada.getByRole('link', { name: 'Channels' }).click();
  await ada.locator('#channel-list button.conv', { hasText: 'town-hall' }).waitFor({ timeout: WAIT });
  await ada.getByLabel('New channel').fill('design');
  await ada.getByLabel('New channel').press('Enter');
  await ada.locator('.thread-head h2', { hasText: 'design' }).waitFor({ timeout: WAIT });
  await ada.locator('#channel-list button.conv', { hasText: 'design' }).waitFor({ timeout: WAIT });
  // Ada keeps town-hall open: who joins, is added and leaves shows there as it happens.
  await ada.locator('#channel-list button.conv', { hasText: 'town-hall' }).click();
  await ada.locator('.thread-head h2', { hasText: 'town-hall' }).waitFor({ timeout: WAIT });
  const lines = async (page) => (await page.locator('li.system .pill').allInnerTexts()).map((t) => t.replace(/ · .*$/, ''));

  // Cara is in no channel; she joins town-hall by the link someone shared.
  await cara.getByRole('link', { name: 'Channels' }).click();
  await cara.locator('#channel-list').waitFor({ state: 'attached', timeout: WAIT });
  await cara.getByText('You are in no channel yet').waitFor({ timeout: WAIT });
  await cara.getByLabel('Join by invite link').fill(`${BASE}/#/channels/${townHall.conversation_id}`);
  await cara.getByLabel('Join by invite link').press('Enter');
  await cara.locator('.thread-head h2', { hasText: 'town-hall' }).waitFor({ timeout: WAIT });
  await cara.locator('#channel-list button.conv', { hasText: 'town-hall' }).waitFor({ timeout: WAIT });
  await ada.locator('li.system .pill', { hasText: 'Cara Coder joined' }).waitFor({ timeout: WAIT });
  await cara.locator('li.system .pill', { hasText: 'You joined' }).waitFor({ timeout: WAIT });

  // The members list, opened from the keyboard.
  const members = cara.getByRole('button', { name: 'Members', exact: true });
  await members.focus();
  await members.press('Enter');
  assert((await members.getAttribute('aria-expanded')) === 'true', 'the members list is expanded');
  const panel = cara.getByRole('region', { name: 'Members of town-hall' });
  await panel.locator('h3', { hasText: 'Members (3)' }).waitFor({ timeout: WAIT });
  for (const name of ['Ada Admin', 'Bob Builder', 'Cara Coder (you)']) {
    await panel.locator('li', { hasText: name }).waitFor({ timeout: WAIT });
  }
  assert((await panel.getByLabel('Invite link').inputValue()) === `${BASE}/#/channels/${townHall.conversation_id}`, 'the link to share');
  await shot(cara, 'channel-members');

  // She posts; Ada sees it in her channel list live.
  const carasBox = cara.getByRole('textbox', { name: 'Message to town-hall' });
  await carasBox.fill('Hi all, Cara here');
  await carasBox.press('Enter');
  await ada.locator('#channel-list button.conv', { hasText: 'town-hall' }).locator('.preview', { hasText: 'Hi all, Cara here' }).waitFor({ timeout: WAIT });
  await shot(ada, 'channels');

  // Dan opens the link on his phone: an invitation, then the channel once he joins.
  const dan = await loggedIn(users.dan, { phone: true });
  await dan.goto(`${BASE}/#/channels/${townHall.conversation_id}`);
  await dan.getByRole('heading', { name: 'Join this channel?' }).waitFor({ timeout: WAIT });
  await shot(dan, 'phone-channel-invitation');
  await dan.getByRole('button', { name: 'Join channel' }).click();
  await dan.locator('li.msg .bubble', { hasText: 'Hi all, Cara here' }).waitFor({ timeout: WAIT });
  assert(!(await dan.locator('#channel-list').isVisible()), 'the list gives way to the channel on a phone');
  // On a phone the conversation's actions are behind one menu button.
  await dan.getByRole('button', { name: 'Conversation actions' }).click();
  await dan.getByRole('button', { name: 'Members', exact: true }).click();
  await dan.getByRole('region', { name: 'Members of town-hall' }).locator('h3', { hasText: 'Members (4)' }).waitFor({ timeout: WAIT });
  await shot(dan, 'phone-channel-members');
  await dan.keyboard.press('Escape');
  await ada.locator('li.system .pill', { hasText: 'Dan Designer joined' }).waitFor({ timeout: WAIT });

  // Cara leaves: the channel leaves her list, and its members no longer name her.
  cara.once('dialog', (d) => d.accept());
  await cara.getByRole('button', { name: 'Leave' }).click();
  await cara.locator('#channel-list button.conv', { hasText: 'town-hall' }).waitFor({ state: 'detached', timeout: WAIT });
  await cara.getByText('You are in no channel yet').waitFor({ timeout: WAIT });
  await ada.locator('li.system .pill', { hasText: 'Cara Coder left' }).waitFor({ timeout: WAIT });
  await dan.locator('li.system .pill', { hasText: 'Cara Coder left' }).waitFor({ timeout: WAIT });
  // Dan's members list, still shown, follows: three members, Cara not among them.
  const danMembers = dan.getByRole('region', { name: 'Members of town-hall' });
  if (await danMembers.isVisible()) {
    await danMembers.locator('h3', { hasText: 'Members (3)' }).waitFor({ timeout: WAIT });
    assert((await danMembers.getByText('Cara Coder').count()) === 0, 'Cara left the members list');
  }
  await shot(dan, 'phone-channel-lines');
  await ada.locator('#channel-list button.conv', { hasText: 'town-hall' }).click();
  await ada.getByRole('button', { name: 'Members', exact: true }).click();
  const adaPanel = ada.getByRole('region', { name: 'Members of town-hall' });
  await adaPanel.locator('h3', { hasText: 'Members (3)' }).waitFor({ timeout: WAIT });
  assert((await adaPanel.locator('li', { hasText: 'Cara Coder' }).count()) === 0, 'Cara left');
  // Cara browses the organization's channels and joins design, which she is not in, from
  // the keyboard.
  const browse = cara.getByRole('region', { name: 'Browse channels' });
  const designRow = browse.locator('#channel-browse li', { hasText: 'design' });
  await designRow.getByText('1 member').waitFor({ timeout: WAIT });
  await browse.locator('#channel-browse li', { hasText: 'town-hall' }).getByText('3 members').waitFor({ timeout: WAIT });
  await shot(cara, 'channels-browse');
  const joinDesign = browse.getByRole('button', { name: 'Join design' });
  await joinDesign.focus();
  await joinDesign.press('Enter');
  await cara.locator('.thread-head h2', { hasText: 'design' }).waitFor({ timeout: WAIT });
  await cara.locator('#channel-list button.conv', { hasText: 'design' }).waitFor({ timeout: WAIT });
  await designRow.getByText('2 members · joined').waitFor({ timeout: WAIT });
  await browse.getByRole('button', { name: 'Open design' }).waitFor({ timeout: WAIT });
  // Ada's design (not open) learns of it, but a line is nothing unread: no badge, no count.
  await ada.getByRole('region', { name: 'Browse channels' }).locator('#channel-browse li', { hasText: 'design' }).getByText('2 members · joined').waitFor({ timeout: WAIT });
  assert((await ada.locator('#channel-list button.conv', { hasText: 'design' }).locator('.badge').count()) === 0, 'no unread badge from a join');
  assert(!(await ada.title()).includes('('), `nothing unread in the title: ${await ada.title()}`);
  assert((await ada.locator('nav.sidebar .nav-count:not([hidden])').count()) === 0, `no count on the sidebar: ${await ada.locator('nav.sidebar').innerText()}`);
  // Her old link now offers to join again.
  await cara.goto(`${BASE}/#/channels/${townHall.conversation_id}`);
  await cara.getByRole('heading', { name: 'Join this channel?' }).waitFor({ timeout: WAIT });

  // Bob adds her back: Ada's open channel says so; after a reload every line is there once.
  await call('POST', `/v1/conversations/${townHall.conversation_id}/members`, { token: await tokenOf(users.bob), body: { users: [users.cara.user_id] } });
  await ada.locator('li.system .pill', { hasText: 'Bob Builder added Cara Coder' }).waitFor({ timeout: WAIT });
  const expected = ['Cara Coder joined', 'Dan Designer joined', 'Cara Coder left', 'Bob Builder added Cara Coder'];
  assert(JSON.stringify(await lines(ada)) === JSON.stringify(expected), `the lines, live: ${await lines(ada)}`);
  await ada.reload();
  await ada.locator('li.msg .bubble', { hasText: 'Hi all, Cara here' }).waitFor({ timeout: WAIT });
  await until(async () => JSON.stringify(await lines(ada)) === JSON.stringify(expected), `the lines after a reload: ${expected}`);
  assert((await ada.locator('nav.sidebar .nav-count:not([hidden])').count()) === 0, 'the lines leave nothing unread');
  await shot(ada, 'channel-membership-lines');
  // Bob renames it: the line, the header and the list follow live.
  await call('POST', `/v1/conversations/${townHall.conversation_id}/name`, { token: await tokenOf(users.bob), body: { name: 'town-square' } });
  await ada.locator('li.system .pill', { hasText: 'Bob Builder renamed the channel to town-square' }).waitFor({ timeout: WAIT });
  await ada.locator('.thread-head h2', { hasText: 'town-square' }).waitFor({ timeout: WAIT });
  await ada.locator('#channel-list button.conv', { hasText: 'town-square' }).waitFor({ timeout: WAIT });
});

scenario('a text from the carrier simulator appears live', async () => {
  const { admin } = await organization('sms');
  const mine = freshNumber();
  const customer = freshNumber();
  await call('POST', '/v1/numbers', { token: admin.token, body: { number: mine, user: admin.user_id } });
  const page = await loggedIn(admin);
  await page.getByRole('button', { name: 'External' }).click();
  await page.locator('#conversations').waitFor({ state: 'attached', timeout: WAIT });

  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: mine, text: 'Hi! Open today?' } });
  const row = page.locator('#conversations button.conv', { hasText: human(customer) });
  await row.waitFor({ timeout: WAIT });
  // The row may appear (from the conversation's first event) a moment before its preview.
  await until(async () => (await row.locator('.preview').textContent()) === 'Hi! Open today?', 'preview of the text, not "number: text" in a row named by the number');
  await row.locator('.badge').waitFor({ timeout: WAIT });
  await row.click();
  await page.locator('li.msg.theirs .bubble', { hasText: 'Hi! Open today?' }).waitFor({ timeout: WAIT });
  const box = page.getByRole('textbox', { name: 'Text message to' });
  await box.fill('Yes, until 6');
  await box.press('Enter');
  await page.locator('li.msg.mine .bubble', { hasText: 'Yes, until 6' }).waitFor({ timeout: WAIT });
  // Its SMS delivery state follows it (the simulated carrier delivers).
  await page.locator('li.msg.mine .delivery', { hasText: 'Delivered' }).waitFor({ timeout: WAIT });
  // A second text arrives live in the open thread and is announced.
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: mine, text: 'Great, see you' } });
  await page.locator('li.msg.theirs .bubble', { hasText: 'Great, see you' }).waitFor({ timeout: WAIT });
  await until(async () => (await page.locator('#announcer').textContent()).includes('Great, see you'), 'the announcement');
  await shot(page, 'external-thread');
  await until(async () => {
    const out = await call('GET', '/v1/simulator/outbound', { token: admin.token });
    return JSON.stringify(out).includes('Yes, until 6');
  }, 'the reply at the carrier');

  // A text the carrier refuses stays failed, with the reason in words, also after a reload;
  // Retry sends it again as a new message, which is delivered.
  await call('POST', '/v1/simulator/outcome', { token: admin.token, body: { to: customer, outcome: { kind: 'fail', error_code: '30008' } } });
  await box.fill('Will this arrive?');
  await box.press('Enter');
  const failedText = page.locator('li.msg.mine', { hasText: 'Will this arrive?' });
  await failedText.locator('.delivery.failed', { hasText: 'Unknown error from the carrier' }).waitFor({ timeout: WAIT });
  await page.reload();
  await failedText.locator('.delivery.failed', { hasText: 'Unknown error from the carrier' }).waitFor({ timeout: WAIT });
  await shot(page, 'external-failed-text');
  await call('POST', '/v1/simulator/outcome', { token: admin.token, body: { to: customer, outcome: { kind: 'deliver' } } });
  await failedText.first().getByRole('button', { name: 'Retry' }).click();
  await failedText.nth(1).locator('.delivery', { hasText: 'Delivered' }).waitFor({ timeout: WAIT });
  assert((await failedText.count()) === 2, 'sent again once, as a new message');

  // The customer becomes a contact: the list shows the name.
  await page.getByRole('link', { name: 'Contacts' }).click();
  await page.getByRole('button', { name: 'Add contact' }).click();
  await page.getByLabel('Name').fill('Carla Customer');
  await page.getByLabel('Phone numbers (comma separated)').fill(customer);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#contacts-list li', { hasText: 'Carla Customer' }).waitFor({ timeout: WAIT });
  await page.getByLabel('Search contacts').fill(customer.slice(-4));
  await page.locator('#contacts-list li', { hasText: 'Carla Customer' }).waitFor({ timeout: WAIT });
  await shot(page, 'contacts');

  // Search finds the text.
  await page.getByRole('link', { name: 'Search' }).click();
  await page.getByLabel('Search messages').fill('open today');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('#search-results li mark').first().waitFor({ timeout: WAIT });
  assert((await page.locator('.page p[role="status"]').textContent()) === '1 result', 'one result, said in the singular');
  await shot(page, 'search');

  await page.getByRole('link', { name: 'Interactions' }).click();
  await page.locator('#conversations button.conv', { hasText: 'Carla Customer' }).waitFor({ timeout: WAIT });
  // A new conversation to a typed number, from my number.
  const other = freshNumber();
  await page.getByRole('button', { name: 'New', exact: true }).click();
  await page.getByLabel('To').fill(other);
  assert((await page.getByLabel('From (for text messages)').inputValue()) === mine, 'my number is the From');
  await page.locator('#new-conversation li', { hasText: `Text ${human(other)}` }).getByRole('button', { name: 'Text' }).click();
  await page.locator('.composer .from', { hasText: human(mine) }).waitFor({ timeout: WAIT });
  const first = page.getByRole('textbox', { name: 'Text message to' });
  await first.fill('Your table is ready');
  await first.press('Enter');
  await page.locator('#conversations button.conv', { hasText: human(other) }).waitFor({ timeout: WAIT });

  await page.getByRole('link', { name: 'Settings' }).click();
  // A refusal names the person, not an id, and leaves once another form succeeds.
  const addUser = page.locator('form[aria-label="Add a user"]');
  await page.locator('#u-name').fill('Clash');
  await page.locator('#u-ext').fill(admin.extension);
  await page.locator('#u-email').fill(`clash-${RUN}@example.test`);
  await page.locator('#u-password').fill(PASSWORD);
  await addUser.getByRole('button', { name: 'Save' }).click();
  const refusal = addUser.locator('p.error');
  await refusal.waitFor({ timeout: WAIT });
  const said = await refusal.textContent();
  assert(said.includes(admin.name) && !/[0-9a-f]{8}-[0-9a-f]{4}/i.test(said), `a name, not an id: ${said}`);
  const inboxForm = page.locator('form[aria-label="Create a shared inbox"]');
  await page.locator('#i-name').fill('Front desk');
  await page.locator('#i-number').fill(freshNumber());
  await inboxForm.getByRole('button', { name: 'Save' }).click();
  await inboxForm.locator('p[role="status"]', { hasText: 'Inbox created' }).waitFor({ timeout: WAIT });
  assert((await addUser.locator('p.error').count()) === 0, 'the refusal left once something succeeded');
  const desk = page.getByLabel('Text messages to desk phone');
  const note = page.locator('#desk-phone-note');
  await until(async () => !(await note.textContent()).includes('Loading'), 'the settings');
  if ((await note.textContent()).includes('no settings API')) {
    assert(await desk.isDisabled(), 'without a settings API the control is disabled');
  } else {
    assert(!(await desk.isChecked()), 'off by default');
    await desk.check();
    await page.locator('#desk-phone-note', { hasText: 'Saved' }).waitFor({ timeout: WAIT });
    await page.reload();
    await until(async () => (await desk.isEnabled()) && (await desk.isChecked()), 'the saved setting after a reload');
  }
  // My own name, changed from the profile: saved, shown in the sidebar, kept after a reload.
  const newName = `${admin.name} Lovelace`;
  await page.getByRole('textbox', { name: 'Your name' }).fill(`  ${newName}  `);
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.locator('#profile-name-note', { hasText: 'Saved' }).waitFor({ timeout: WAIT });
  await page.locator('a.who', { hasText: newName }).waitFor({ timeout: WAIT });
  const listed = await call('GET', '/v1/users', { token: admin.token });
  assert(listed.items.some((u) => u.user_id === admin.user_id && u.name === newName), 'the directory has the new name');
  await page.reload();
  await until(async () => (await page.getByRole('textbox', { name: 'Your name' }).inputValue()) === newName, 'the name after a reload');
  await shot(page, 'settings');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
  await shot(page, 'login');
  // Creating an organization is offered only while the server takes one: this test server
  // has sign-ups open; one that is set up (GET /v1/bootstrap says closed) offers none.
  const offer = page.getByRole('button', { name: 'First run? Create an organization' });
  await offer.waitFor({ timeout: WAIT });
  await page.route('**/v1/bootstrap', (route) =>
    route.request().method() === 'GET'
      ? route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ open: false }) })
      : route.continue(),
  );
  const asked = page.waitForResponse((r) => r.url().endsWith('/v1/bootstrap'));
  await page.reload();
  await asked;
  await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
  assert(!(await offer.isVisible()), 'no offer to create an organization once the server is set up');
  await page.unroute('**/v1/bootstrap');
});

scenario('an admin adds a webhook, reads its delivery log and redelivers', async () => {
  const { admin } = await organization('hooks');
  const mine = freshNumber();
  await call('POST', '/v1/numbers', { token: admin.token, body: { number: mine, user: admin.user_id } });
  // A receiver that refuses the first request (500) and takes the rest.
  const { createServer } = await import('node:http');
  const got = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const status = got.length === 0 ? 500 : 204;
      got.push({ delivery: req.headers['switchboard-delivery'], event: req.headers['switchboard-event'], body, status });
      res.writeHead(status);
      res.end(status === 500 ? 'busy' : undefined);
    });
  });
  await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${receiver.address().port}/switchboard`;
  try {
    const page = await loggedIn(admin);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('link', { name: 'Webhooks' }).first().click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor({ timeout: WAIT });
    await page.getByLabel('URL (https)').fill(url);
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = page.locator('.secret-value');
    await secret.waitFor({ timeout: WAIT });
    assert(/^[0-9a-f]{64}$/.test(await secret.textContent()), 'the signing secret is shown once');
    await page.locator('ul[aria-label="Endpoints"] li', { hasText: url }).waitFor({ timeout: WAIT });
    await shot(page, 'webhooks');

    await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: freshNumber(), to: mine, text: 'Hook me up' } });
    await until(() => got.some((r) => r.status === 204), 'the retried delivery at the receiver');
    await page.getByRole('button', { name: 'Delivery log' }).click();
    const row = page.locator('ul.deliveries li').first();
    await until(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      return (await row.textContent().catch(() => '')).includes('Delivered');
    }, 'the delivery shown delivered');
    assert((await row.textContent()).includes('2 attempts'), 'two attempts shown');
    await row.getByRole('button', { name: 'Details' }).click();
    await row.locator('pre.body', { hasText: 'Hook me up' }).waitFor({ timeout: WAIT });
    await row.locator('ol li', { hasText: 'busy' }).waitFor({ timeout: WAIT });
    await shot(page, 'webhook-delivery');

    const before = got.length;
    await row.getByRole('button', { name: 'Redeliver' }).click();
    await until(() => got.length > before && got[got.length - 1].status === 204, 'the redelivery at the receiver');
    assert(got[got.length - 1].delivery !== got[0].delivery, 'a redelivery has its own id');
    await page.locator('ul.deliveries li', { hasText: 'redelivery' }).waitFor({ timeout: WAIT });
    await notPolling(page);
  } finally {
    receiver.close();
  }
});

scenario('notice of new activity: section counts, the tab title, desktop notifications and a sound', async () => {
  const { admin, users } = await organization('notice', ['Bob Builder']);
  const bobToken = await tokenOf(users.bob);
  const mine = freshNumber();
  const customer = freshNumber();
  const inboxNumber = freshNumber();
  await call('POST', '/v1/numbers', { token: admin.token, body: { number: mine, user: admin.user_id } });
  const ops = await call('POST', '/v1/conversations/channel', { token: admin.token, body: { name: 'ops', members: [users.bob.user_id] } });
  const dm = await call('POST', '/v1/conversations/direct', { token: admin.token, body: { with: users.bob.user_id } });
  await call('POST', `/v1/conversations/${dm.conversation_id}/messages`, { token: admin.token, body: { text: 'Morning Bob' } });
  const { inbox_id } = await call('POST', '/v1/inboxes', { token: admin.token, body: { name: 'Front desk', number: inboxNumber } });
  await call('POST', `/v1/inboxes/${inbox_id}/members`, { token: admin.token, body: { user: admin.user_id } });

  const ada = await loggedIn(admin, { init: recordNotifications });
  await ada.locator('#conversations button.conv', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  assert((await ada.evaluate(() => window.__asked)) === 0, 'permission is never asked on load');
  assert((await ada.title()) === 'Interactions · Switchboard', `nothing unread: ${await ada.title()}`);

  // Notifications are asked for from Settings, by ticking the box.
  await ada.getByRole('link', { name: 'Settings' }).click();
  await ada.getByLabel('Desktop notifications for new messages').check();
  await ada.locator('#notify-desktop-note', { hasText: 'Saved' }).waitFor({ timeout: WAIT });
  assert((await ada.evaluate(() => window.__asked)) === 1, 'asked once, when ticked');
  await ada.getByLabel('Play a sound for new messages').check();
  await shot(ada, 'settings-notifications');
  const phoneSettings = await loggedIn(admin, { phone: true, init: recordNotifications });
  await phoneSettings.goto(`${BASE}/#/settings`);
  await phoneSettings.getByLabel('Desktop notifications for new messages').waitFor({ timeout: WAIT });
  // Below the profile (and its password form) on a phone.
  await phoneSettings.getByRole('heading', { name: 'Notifications' }).scrollIntoViewIfNeeded();
  await shot(phoneSettings, 'phone-settings-notifications');
  await phoneSettings.context().close();

  // Ada has the direct conversation open: Bob's answer there shows, and is no notice.
  await ada.goto(`${BASE}/#/interactions/all/${dm.conversation_id}`);
  await ada.locator('li.msg .bubble', { hasText: 'Morning Bob' }).waitFor({ timeout: WAIT });
  await call('POST', `/v1/conversations/${dm.conversation_id}/messages`, { token: bobToken, body: { text: 'Morning!' } });
  await ada.locator('li.msg.theirs .bubble', { hasText: 'Morning!' }).waitFor({ timeout: WAIT });

  // Elsewhere: a channel message, a customer's text, an inbox text — each counted on its
  // section, summed in the title, and notified.
  const nav = (name) => ada.locator(`#nav-${name} .nav-count`);
  await call('POST', `/v1/conversations/${ops.conversation_id}/messages`, { token: bobToken, body: { text: 'Deploy at 5?' } });
  await nav('channels').filter({ hasText: '1' }).waitFor({ timeout: WAIT });
  await until(async () => (await ada.title()) === '(1) Interactions · Switchboard', 'the count in the title');
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: mine, text: 'Is my order ready?' } });
  await nav('interactions').filter({ hasText: '1' }).waitFor({ timeout: WAIT });
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: freshNumber(), to: inboxNumber, text: 'Hello front desk' } });
  await nav('inboxes').filter({ hasText: '1' }).waitFor({ timeout: WAIT });
  await until(async () => (await ada.title()) === '(3) Interactions · Switchboard', `three in the title: ${await ada.title()}`);
  assert((await nav('interactions').getAttribute('aria-label')) === '1 unread', 'the count is labelled');
  const notes = await ada.evaluate(() => window.__notes);
  assert(notes.length === 3, `three notices, none for the open conversation: ${JSON.stringify(notes)}`);
  assert(notes[0].title === '#ops' && notes[0].body === 'Bob Builder: Deploy at 5?', `the channel notice: ${JSON.stringify(notes[0])}`);
  const said = human(customer);
  assert(notes[1].title === said && notes[1].body === 'Is my order ready?', `the text notice names the number as people read it: ${JSON.stringify(notes[1])}`);
  assert(notes[2].body === 'Hello front desk', 'the inbox notice');
  assert((await ada.evaluate(() => window.__chimes)) >= 3 * 2, 'a chime for each');
  await shot(ada, 'activity-counts');

  // Clicking the text's notice opens that conversation; reading it takes it off the count.
  await ada.evaluate(() => window.__shown[1].onclick());
  await ada.locator('.thread-head h2', { hasText: said }).waitFor({ timeout: WAIT });
  await nav('interactions').waitFor({ state: 'hidden', timeout: WAIT });
  await until(async () => (await ada.title()) === '(2) Interactions · Switchboard', `two left: ${await ada.title()}`);
  await ada.getByRole('link', { name: 'Channels' }).click();
  await ada.locator('#channel-list button.conv', { hasText: 'ops' }).click();
  await nav('channels').waitFor({ state: 'hidden', timeout: WAIT });
  await until(async () => (await ada.title()) === '(1) Channels · Switchboard', `one left: ${await ada.title()}`);

  const phone = await loggedIn(admin, { phone: true });
  await phone.locator('#nav-inboxes .nav-count', { hasText: '1' }).waitFor({ timeout: WAIT });
  await shot(phone, 'phone-activity-counts');
  await notPolling(ada);
});

scenario('names and faces: numbers as people read them, the inbox by its name, initials, add to contacts; the business on one side', async () => {
  const { admin, users } = await organization('faces', ['Ina Agent', 'Joe Agent']);
  const inaToken = await tokenOf(users.ina);
  const inboxNumber = freshNumber();
  const customer = freshNumber();
  const { inbox_id } = await call('POST', '/v1/inboxes', { token: admin.token, body: { name: 'Support', number: inboxNumber } });
  await call('POST', `/v1/numbers/${encodeURIComponent(inboxNumber)}/sms-registration`, { token: admin.token, body: { registered: true } });
  for (const u of [users.ina, users.joe]) await call('POST', `/v1/inboxes/${inbox_id}/members`, { token: admin.token, body: { user: u.user_id } });
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: inboxNumber, text: 'My parcel never came, see https://track.example.com/p/123.' } });
  let conv = null;
  await until(async () => {
    [conv] = (await call('GET', `/v1/inboxes/${inbox_id}/conversations?view=open`, { token: inaToken })).items;
    return conv;
  }, 'the text in the inbox');
  await call('POST', `/v1/conversations/${conv.conversation_id}/assign-to-me`, { token: inaToken });
  await call('POST', `/v1/conversations/${conv.conversation_id}/messages`, { token: inaToken, body: { text: 'Sorry! Checking now.' } });
  await call('POST', `/v1/conversations/${conv.conversation_id}/transfer`, { token: inaToken, body: { to: users.joe.user_id } });

  const joe = await loggedIn(users.joe);
  await joe.goto(`${BASE}/#/inboxes/${inbox_id}/mine/${conv.conversation_id}`);
  const head = joe.locator('.thread-head');
  await head.locator('h2', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  await head.locator('.sub', { hasText: 'via Support' }).waitFor({ timeout: WAIT });
  assert(!(await head.locator('.sub').textContent()).includes(inboxNumber), 'the inbox by its name, not its number');
  await joe.locator('.composer .from', { hasText: `From Support · ${human(inboxNumber)}` }).waitFor({ timeout: WAIT });

  // The customer on the left; the business (Ina's reply, then Joe's) on the right, with
  // the teammate's name and initials.
  const theirs = joe.locator('li.msg.theirs', { hasText: 'My parcel never came' });
  const inas = joe.locator('li.msg.ours', { hasText: 'Checking now' });
  await inas.waitFor({ timeout: WAIT });
  assert((await inas.locator('.author').textContent()) === 'Ina Agent', "a teammate's message names them");
  assert((await inas.locator('.avatar').textContent()) === 'IA', 'initials avatar');
  const box = joe.getByRole('textbox', { name: 'Text message to' });
  await box.fill('Joe here, it ships today.');
  await box.press('Enter');
  const joes = joe.locator('li.msg.mine', { hasText: 'ships today' });
  await joes.waitFor({ timeout: WAIT });
  const left = (l) => l.locator('.bubble').evaluate((e) => e.getBoundingClientRect().left);
  const right = (l) => l.locator('.bubble').evaluate((e) => e.getBoundingClientRect().right);
  assert((await left(inas)) > (await right(theirs)) - 200 && (await right(inas)) > (await right(theirs)), 'the business on the right');
  assert(Math.abs((await right(inas)) - (await right(joes))) < 2, "a teammate's text and mine on the same side");
  // Reading comfort: the address is a link that opens safely in a new tab; a day separator.
  const link = theirs.getByRole('link', { name: 'https://track.example.com/p/123' });
  assert((await link.getAttribute('rel')) === 'noopener noreferrer' && (await link.getAttribute('target')) === '_blank', 'a safe link');
  await joe.locator('li.day', { hasText: 'Today' }).first().waitFor({ timeout: WAIT });
  assert(/\d{4}/.test(await theirs.locator('time').getAttribute('title')), 'the full date on hover');
  await shot(joe, 'faces-thread');

  // Add to contacts from the header: the name replaces the number there and in the list.
  await head.getByRole('button', { name: 'Add to contacts' }).click();
  const dialog = joe.locator('dialog');
  assert((await dialog.getByLabel('Phone numbers (comma separated)').inputValue()) === customer, 'the number is filled in');
  await dialog.getByLabel('Name').fill('Carla Customer');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await head.locator('h2', { hasText: 'Carla Customer' }).waitFor({ timeout: WAIT });
  await head.locator('.sub', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  assert((await head.getByRole('button', { name: 'Add to contacts' }).count()) === 0, 'named now');
  const row = joe.locator('.conv-list button.conv', { hasText: 'Carla Customer' });
  await row.waitFor({ timeout: WAIT });
  assert((await row.locator('.avatar').textContent()) === 'CC', 'the list shows her initials');
  await shot(joe, 'faces-named');

  const phone = await loggedIn(users.joe, { phone: true });
  // Our number's automatic reply (the HELP text, when the server has one) is the business
  // speaking too: the history is given one here, since this server sends none.
  await phone.route(`**/v1/conversations/${conv.conversation_id}/messages?*`, async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const response = await route.fetch();
    const history = await response.json();
    const first = history.items.find((i) => i.type === 'inbound');
    history.items.splice(history.items.indexOf(first) + 1, 0, {
      type: 'auto_reply', message_id: '00000000-0000-4000-8000-000000000001', seq: first.seq, from: inboxNumber,
      reply_to: first.message_id, text: 'Support hours: 9 to 5. Reply STOP to opt out.', at_ms: first.at_ms, deliveries: [],
    });
    await route.fulfill({ response, json: history });
  });
  await phone.goto(`${BASE}/#/inboxes/${inbox_id}/mine/${conv.conversation_id}`);
  await phone.locator('li.msg.ours', { hasText: 'Checking now' }).waitFor({ timeout: WAIT });
  const auto = phone.locator('li.msg.ours.auto', { hasText: 'Support hours' });
  await auto.waitFor({ timeout: WAIT });
  assert((await auto.locator('.author').textContent()) === 'Automatic reply', 'named as the automatic reply');
  const rightOf = (l) => l.locator('.bubble').evaluate((e) => Math.round(e.getBoundingClientRect().right));
  assert((await rightOf(auto)) === (await rightOf(phone.locator('li.msg.ours', { hasText: 'Checking now' }))), 'on the business side');
  await shot(phone, 'phone-faces-thread');
});

scenario('no ids to copy: admins pick people, numbers, inboxes and queues from lists', async () => {
  const { admin, users } = await organization('pick', ['Bob Builder', 'Cara Coder']);
  const sales = await call('POST', '/v1/inboxes', { token: admin.token, body: { name: 'Sales', number: freshNumber() } });
  const overflow = await call('POST', '/v1/queues', { token: admin.token, body: { name: 'Overflow', number: freshNumber() } });
  // Cara is an agent of Overflow already, and logged in to it.
  await call('POST', `/v1/queues/${overflow.queue_id}/members`, { token: admin.token, body: { user: users.cara.user_id } });
  await call('POST', `/v1/queues/${overflow.queue_id}/login`, { token: await tokenOf(users.cara) });
  const ada = await loggedIn(admin);
  await ada.getByRole('link', { name: 'Settings' }).click();
  const status = ada.locator('#org-status');

  // People: filtered, and a role changed from the list.
  const people = ada.locator('#org-people');
  await people.locator('li', { hasText: 'Cara Coder' }).waitFor({ timeout: WAIT });
  await ada.getByLabel('Filter people').fill('car');
  await until(async () => (await people.locator('li').count()) === 1, 'only Cara');
  await ada.getByRole('button', { name: 'Make Cara Coder an admin' }).click();
  await status.filter({ hasText: 'Cara Coder is now an admin.' }).waitFor({ timeout: WAIT });
  const roles = (await call('GET', '/v1/users', { token: admin.token })).items;
  assert(roles.find((u) => u.user_id === users.cara.user_id).role === 'admin', 'the role changed');
  await ada.getByLabel('Filter people').fill('');

  // A number for Bob, picked by name; then Cara may send from it too, and no longer.
  const bobs = freshNumber();
  const numberForm = ada.locator('form[aria-label="Give a user a texting number"]');
  await numberForm.getByLabel('New number').fill(human(bobs));
  await numberForm.getByLabel('For').selectOption({ label: 'Bob Builder (ext 101)' });
  await numberForm.getByRole('button', { name: 'Save' }).click();
  await numberForm.locator('p[role="status"]', { hasText: `${human(bobs)} added for Bob Builder.` }).waitFor({ timeout: WAIT });
  await ada.getByLabel('Filter numbers').fill(bobs.slice(-4));
  const bobsRow = ada.locator('#org-numbers li', { hasText: human(bobs) });
  await bobsRow.locator('.muted', { hasText: 'Line of Bob Builder' }).waitFor({ timeout: WAIT });
  assert((await ada.locator('#org-numbers li').count()) === 1, 'the filter leaves his number');
  await ada.getByLabel(`Let someone send from ${human(bobs)}`).selectOption({ label: 'Cara Coder (ext 102)' });
  await ada.getByRole('button', { name: `Let them send from ${human(bobs)}` }).click();
  await bobsRow.locator('.chip', { hasText: 'Cara Coder' }).waitFor({ timeout: WAIT });
  const held = async () => (await call('GET', '/v1/numbers', { token: admin.token })).items.find((n) => n.number === bobs).assigned_to;
  assert((await held()).includes(users.cara.user_id), 'Cara may send from it');
  await ada.getByRole('button', { name: `Stop Cara Coder sending from ${human(bobs)}` }).click();
  await bobsRow.locator('.chip', { hasText: 'Cara Coder' }).waitFor({ state: 'detached', timeout: WAIT });
  assert(!(await held()).includes(users.cara.user_id), 'and no longer');

  // An inbox created with its creator on the team in the same step; its team edited.
  const inboxForm = ada.locator('form[aria-label="Create a shared inbox"]');
  await inboxForm.getByLabel('Name').fill('Billing');
  await inboxForm.getByLabel('New number').fill(freshNumber());
  assert(await inboxForm.getByLabel('Add me to its team').isChecked(), 'on by default');
  await inboxForm.getByRole('button', { name: 'Save' }).click();
  await inboxForm.locator('p[role="status"]', { hasText: 'Inbox created: Billing, with you on its team.' }).waitFor({ timeout: WAIT });
  const billing = ada.locator('#org-inboxes li', { hasText: 'Billing' });
  await billing.locator('.chip', { hasText: 'Ada Admin (you)' }).waitFor({ timeout: WAIT });
  await ada.getByLabel('Someone for the team of Billing').selectOption({ label: 'Bob Builder (ext 101)' });
  await ada.getByRole('button', { name: 'Add to the team of Billing' }).click();
  await billing.locator('.chip', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  await ada.getByRole('button', { name: 'Remove Bob Builder from Billing' }).click();
  await billing.locator('.chip', { hasText: 'Bob Builder' }).waitFor({ state: 'detached', timeout: WAIT });
  // Sales was made without her: one click puts her on it.
  await ada.getByRole('button', { name: 'Add me to Sales' }).click();
  await ada.locator('#org-inboxes li', { hasText: 'Sales' }).locator('.chip', { hasText: 'Ada Admin (you)' }).waitFor({ timeout: WAIT });
  const teams = (await call('GET', '/v1/inboxes', { token: admin.token })).items;
  assert(teams.find((i) => i.inbox_id === sales.inbox_id).members.includes(admin.user_id), 'she is on Sales');

  // Queues: one created with her as an agent, another joined in one click, Bob added.
  const queueForm = ada.locator('form[aria-label="Create an SMS queue"]');
  await queueForm.getByLabel('Name').fill('Helpdesk');
  await queueForm.getByLabel('New number').fill(freshNumber());
  await queueForm.getByRole('button', { name: 'Save' }).click();
  await ada.locator('#org-queues li', { hasText: 'Helpdesk' }).locator('.muted', { hasText: 'you are an agent' }).waitFor({ timeout: WAIT });
  await ada.getByRole('button', { name: 'Add me to Overflow' }).click();
  await ada.locator('#org-queues li', { hasText: 'Overflow' }).locator('.muted', { hasText: 'you are an agent' }).waitFor({ timeout: WAIT });
  // Its agents by name: Cara (logged in) was there before; Bob is added, then removed.
  const overflowRow = ada.locator('#org-queues li', { hasText: 'Overflow' });
  const agents = overflowRow.getByRole('group', { name: 'Agents of Overflow' });
  await agents.locator('.chip.on', { hasText: 'Cara Coder' }).waitFor({ timeout: WAIT });
  await agents.locator('.chip', { hasText: 'Ada Admin (you)' }).waitFor({ timeout: WAIT });
  assert((await ada.getByLabel('Someone to add as an agent of Overflow').locator('option', { hasText: 'Cara Coder' }).count()) === 0, 'an agent is not offered again');
  await ada.getByLabel('Someone to add as an agent of Overflow').selectOption({ label: 'Bob Builder (ext 101)' });
  await overflowRow.getByRole('button', { name: 'Add as an agent of Overflow' }).click();
  await status.filter({ hasText: 'Bob Builder is an agent of Overflow.' }).waitFor({ timeout: WAIT });
  await agents.locator('.chip:not(.on)', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  const bobQueues = (await call('GET', '/v1/queues', { token: await tokenOf(users.bob) })).items;
  assert(bobQueues.some((q) => q.queue_id === overflow.queue_id), 'Bob is an agent of Overflow');
  await ada.locator('#org-queues').scrollIntoViewIfNeeded();
  await shot(ada, 'settings-queues');
  await agents.getByRole('button', { name: 'Remove Cara Coder from Overflow' }).click();
  await status.filter({ hasText: 'Cara Coder is no longer an agent of Overflow.' }).waitFor({ timeout: WAIT });
  await agents.locator('.chip', { hasText: 'Cara Coder' }).waitFor({ state: 'detached', timeout: WAIT });
  await agents.locator('.chip', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  const overflowNow = (await call('GET', '/v1/queues', { token: admin.token })).items.find((q) => q.queue_id === overflow.queue_id);
  assert(!overflowNow.members.includes(users.cara.user_id), 'Cara is no agent of Overflow any more');
  const text = await ada.locator('main').innerText();
  assert(!/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}/i.test(text), 'no id shown anywhere in Settings');
  await shot(ada, 'settings-organization');

  // The Inboxes screen offers her inboxes by name.
  await ada.getByRole('link', { name: 'Inboxes' }).click();
  await ada.locator('#inbox-picker option', { hasText: 'Billing' }).waitFor({ state: 'attached', timeout: WAIT });
  await ada.locator('#inbox-picker option', { hasText: 'Sales' }).waitFor({ state: 'attached', timeout: WAIT });

  // A channel invite picks people: those already in are not offered, a filter narrows.
  const crew = await call('POST', '/v1/conversations/channel', { token: admin.token, body: { name: 'crew', members: [users.cara.user_id] } });
  await ada.goto(`${BASE}/#/channels/${crew.conversation_id}`);
  await ada.getByRole('button', { name: 'Add members' }).click();
  const dialog = ada.locator('dialog');
  await dialog.getByLabel('Find people').fill('bo');
  assert((await dialog.getByLabel('Cara Coder (ext 102)').count()) === 0, 'a member is not offered');
  await dialog.getByLabel('Bob Builder (ext 101)').check();
  await shot(ada, 'channel-add-members');
  await dialog.getByRole('button', { name: 'Add', exact: true }).click();
  await dialog.waitFor({ state: 'detached', timeout: WAIT });
  await ada.locator('li.system .pill', { hasText: 'You added Bob Builder' }).waitFor({ timeout: WAIT });
  const members = (await call('GET', `/v1/conversations/${crew.conversation_id}/members`, { token: admin.token })).members;
  assert(members.some((m) => m.user_id === users.bob.user_id), 'Bob was added');

  const phone = await loggedIn(admin, { phone: true });
  await phone.goto(`${BASE}/#/settings`);
  await phone.locator('#org-inboxes li', { hasText: 'Billing' }).waitFor({ timeout: WAIT });
  await phone.locator('#org-inboxes').scrollIntoViewIfNeeded();
  await shot(phone, 'phone-settings-organization');
  await phone.locator('#org-queues li', { hasText: 'Overflow' }).locator('.chip', { hasText: 'Bob Builder' }).scrollIntoViewIfNeeded();
  await shot(phone, 'phone-settings-queues');
});

scenario('drafts survive switching and reloads; a send lost with the connection goes once it returns, never twice', async () => {
  const { admin, users } = await organization('drafts', ['Bob Builder', 'Cara Coder']);
  const withBob = await call('POST', '/v1/conversations/direct', { token: admin.token, body: { with: users.bob.user_id } });
  const withCara = await call('POST', '/v1/conversations/direct', { token: admin.token, body: { with: users.cara.user_id } });
  for (const c of [withBob, withCara]) await call('POST', `/v1/conversations/${c.conversation_id}/messages`, { token: admin.token, body: { text: 'Hi' } });
  const ada = await loggedIn(admin);
  await ada.goto(`${BASE}/#/interactions/all/${withBob.conversation_id}`);
  const bobBox = ada.getByRole('textbox', { name: 'Message to Bob Builder' });
  await bobBox.fill('half a thought');
  await ada.locator('#conversations button.conv', { hasText: 'Cara Coder' }).click();
  const caraBox = ada.getByRole('textbox', { name: 'Message to Cara Coder' });
  await caraBox.waitFor({ timeout: WAIT });
  assert((await caraBox.inputValue()) === '', 'drafts are per conversation');
  await ada.locator('#conversations button.conv', { hasText: 'Bob Builder' }).click();
  await until(async () => (await bobBox.inputValue().catch(() => '')) === 'half a thought', 'the draft back after switching');
  await ada.reload();
  await until(async () => (await bobBox.inputValue().catch(() => '')) === 'half a thought', 'the draft back after a reload');

  // Offline: the text waits, visibly, and goes when the connection returns.
  const keys = [];
  await ada.route('**/v1/conversations/*/messages', async (route) => {
    if (route.request().method() === 'POST') keys.push(route.request().headers()['idempotency-key']);
    return route.continue();
  });
  await ada.context().setOffline(true);
  await bobBox.fill('written offline');
  await bobBox.press('Enter');
  const waiting = ada.locator('li.msg.waiting', { hasText: 'written offline' });
  await waiting.waitFor({ timeout: WAIT });
  await ada.locator('.conn', { hasText: 'Offline' }).waitFor({ timeout: WAIT });
  assert((await bobBox.inputValue()) === '', 'the composer is free again');
  await shot(ada, 'outbox-waiting');
  await ada.context().setOffline(false);
  await waiting.waitFor({ state: 'detached', timeout: WAIT });
  await ada.locator('li.msg.mine .bubble', { hasText: 'written offline' }).waitFor({ timeout: WAIT });
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const once = async (text) => {
    const history = (await call('GET', `/v1/conversations/${withBob.conversation_id}/messages`, { token: admin.token })).items;
    return history.filter((m) => m.text === text).length === 1;
  };
  assert(await once('written offline'), 'exactly one message in the history');

  // The first attempt reaches the server but its answer is lost: the retry, with the same
  // key, writes nothing more.
  await ada.unroute('**/v1/conversations/*/messages');
  keys.length = 0;
  let lose = true;
  await ada.route('**/v1/conversations/*/messages', async (route) => {
    const request = route.request();
    if (request.method() !== 'POST') return route.continue();
    keys.push(request.headers()['idempotency-key']);
    if (!lose) return route.continue();
    lose = false;
    await route.fetch();
    return route.abort('connectionreset');
  });
  await bobBox.fill('answer lost');
  await bobBox.press('Enter');
  await until(() => keys.length === 2, 'the retry');
  await until(async () => (await ada.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('switchboard.outbox.')).length)) === 0, 'the outbox emptied');
  assert(keys[0] === keys[1] && uuid.test(keys[0]), `retried with the same UUID key: ${JSON.stringify(keys)}`);
  assert(await once('answer lost'), 'exactly one message in the history, not two');
  await ada.locator('li.msg.mine .bubble', { hasText: 'answer lost' }).waitFor({ timeout: WAIT });
  assert((await ada.locator('li.msg .bubble', { hasText: 'answer lost' }).count()) === 1, 'shown once');
  // Sent, the draft is gone for good.
  await ada.reload();
  await bobBox.waitFor({ timeout: WAIT });
  await ada.locator('li.msg .bubble', { hasText: 'answer lost' }).waitFor({ timeout: WAIT });
  assert((await bobBox.inputValue()) === '', 'no draft once sent');
});

scenario('phone layout: five tabs at the bottom, More and the actions as menus, rows that do not wrap', async () => {
  const { admin, users } = await organization('phone', ['Ina Agent']);
  const inboxNumber = freshNumber();
  const customer = freshNumber();
  const { inbox_id } = await call('POST', '/v1/inboxes', { token: admin.token, body: { name: 'Support', number: inboxNumber } });
  await call('POST', `/v1/numbers/${encodeURIComponent(inboxNumber)}/sms-registration`, { token: admin.token, body: { registered: true } });
  await call('POST', `/v1/inboxes/${inbox_id}/members`, { token: admin.token, body: { user: users.ina.user_id } });
  await call('POST', '/v1/simulator/inbound', { token: admin.token, body: { from: customer, to: inboxNumber, text: 'Are you open on Sunday?' } });
  const ina = await loggedIn(users.ina, { phone: true });

  // Five tabs, each an icon over its label, every one at least 44 px each way.
  const tabs = ina.locator('nav.sidebar > ul > li:visible > :is(a, button)');
  assert((await tabs.count()) === 5, `five tabs: ${await tabs.count()}`);
  for (let i = 0; i < 5; i++) {
    const tab = tabs.nth(i);
    const box = await tab.boundingBox();
    assert(box.width >= 44 && box.height >= 44, `a 44 px target: ${JSON.stringify(box)}`);
    assert((await tab.locator('svg.icon').count()) === 1 && (await tab.locator('.nav-label').innerText()).length > 0, 'an icon and a label');
  }
  const navBox = await ina.locator('nav.sidebar').boundingBox();
  assert(Math.round(navBox.y + navBox.height) === 844, 'the bar is at the bottom');

  // More opens the other screens; Escape closes it and gives the focus back; the keyboard
  // chooses one.
  const more = ina.getByRole('button', { name: 'More' });
  await more.click();
  const menu = ina.locator('#nav-more-menu');
  await menu.getByRole('link', { name: 'Settings' }).waitFor({ timeout: WAIT });
  await shot(ina, 'phone-more-menu');
  await ina.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden', timeout: WAIT });
  assert(await more.evaluate((b) => b === document.activeElement), 'the focus is back on More');
  await more.press('Enter');
  await menu.getByRole('link', { name: 'Search' }).waitFor({ timeout: WAIT });
  await ina.keyboard.press('ArrowDown');
  await ina.keyboard.press('Enter');
  await ina.getByLabel('Search contacts').waitFor({ timeout: WAIT });
  assert(await more.evaluate((b) => b.classList.contains('current')), 'More marks a screen under it as current');

  // The inbox: its header on one line, its actions in a menu.
  await ina.getByRole('link', { name: 'Inboxes' }).click();
  await ina.locator('.conv-list button.conv', { hasText: human(customer) }).click();
  const head = ina.locator('.thread-head');
  await head.locator('h2', { hasText: human(customer) }).waitFor({ timeout: WAIT });
  const headBox = await head.boundingBox();
  assert(headBox.height <= 64, `the header is one row: ${headBox.height}px`);
  assert(!(await head.getByRole('button', { name: 'Assign to me' }).isVisible()), 'the actions wait in their menu');
  await shot(ina, 'phone-inbox-thread');
  await head.getByRole('button', { name: 'Conversation actions' }).click();
  await head.getByRole('button', { name: 'Assign to me' }).waitFor({ timeout: WAIT });
  await shot(ina, 'phone-thread-actions');
  await head.getByRole('button', { name: 'Assign to me' }).click();
  const box = ina.getByRole('textbox', { name: 'Text message to' });
  await box.waitFor({ timeout: WAIT });
  assert(!(await head.getByRole('button', { name: 'Mark as done' }).isVisible()), 'the menu closed after the choice');
  // No row of the list pane or the composer wraps: each is one line of controls.
  await ina.getByRole('button', { name: 'Back to the list' }).click();
  for (const row of ['.list-pane > header .head-row', '.list-pane > header .segmented[aria-label="Open conversations"]']) {
    const height = await ina.locator(row).evaluate((el) => el.getBoundingClientRect().height);
    assert(height <= 48, `${row} on one line: ${height}px`);
  }
  await shot(ina, 'phone-inbox-list');
  await notPolling(ina);
});

scenario('keyboard only: skip link, a new conversation, a message, the emoji picker, focus always visible', async () => {
  const { admin, users } = await organization('keys', ['Bob Builder']);
  const ada = await loggedIn(admin);
  await ada.locator('#conversations').waitFor({ state: 'attached', timeout: WAIT });
  const focused = () => ada.evaluate(() => {
    const e = document.activeElement;
    const style = getComputedStyle(e);
    return { tag: e.tagName, text: (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40), id: e.id, outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 };
  });
  // The skip link is the first stop and takes the keyboard to the screen.
  await ada.reload();
  await ada.locator('#conversations').waitFor({ state: 'attached', timeout: WAIT });
  await ada.keyboard.press('Tab');
  let f = await focused();
  assert(f.text === 'Skip to content' && f.outline, `the skip link first, visibly: ${JSON.stringify(f)}`);
  await ada.keyboard.press('Enter');
  await ada.keyboard.press('Tab');
  f = await focused();
  assert(f.text === 'New' && f.outline, `then the screen's first control, visibly focused: ${JSON.stringify(f)}`);
  // New conversation: typed name, Tab to the match, Enter.
  await ada.keyboard.press('Enter');
  await ada.locator('#new-conversation').waitFor({ timeout: WAIT });
  assert((await focused()).id === 'new-to', 'the dialog opens on its To field');
  await ada.keyboard.type('Bob');
  await ada.locator('#new-conversation li', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  for (let i = 0; i < 6 && (await focused()).text !== 'Message'; i++) await ada.keyboard.press('Tab');
  assert((await focused()).text === 'Message', 'Tab reaches the match');
  await ada.keyboard.press('Enter');
  await ada.locator('.thread-head h2', { hasText: 'Bob Builder' }).waitFor({ timeout: WAIT });
  await until(async () => (await focused()).tag === 'TEXTAREA', 'the composer focused');
  await ada.keyboard.type('Typed without a mouse');
  await ada.keyboard.press('Enter');
  await ada.locator('li.msg.mine .bubble', { hasText: 'Typed without a mouse' }).waitFor({ timeout: WAIT });
  // The send is answered (the composer emptied) and the focus is still where the keyboard left it.
  await until(async () => (await ada.locator('.composer textarea').inputValue()) === '', 'the composer emptied');
  assert((await focused()).tag === 'TEXTAREA', 'the composer keeps the focus after a send');
  // The emoji picker: Shift+Tab back to its button, open, Escape closes and returns focus.
  await ada.keyboard.press('Shift+Tab');
  await ada.keyboard.press('Shift+Tab');
  f = await focused();
  assert(f.text === 'Insert emoji' && f.outline, `the emoji button, visibly focused: ${JSON.stringify(f)}`);
  await ada.keyboard.press('Enter');
  await ada.locator('.emoji-picker').waitFor({ timeout: WAIT });
  assert((await focused()).text === 'grinning face', 'the picker takes the focus');
  await ada.keyboard.press('Escape');
  await ada.locator('.emoji-picker').waitFor({ state: 'detached', timeout: WAIT });
  assert((await focused()).text === 'Insert emoji', 'Escape gives it back');
  await shot(ada, 'keyboard-thread');
});

scenario('a new password, confirmed with the email and the current one, signs out the other sessions', async () => {
  const { users } = await organization('password', ['Pat Pending']);
  const pat = users.pat;
  const NEW = 'a much longer new passphrase';
  // Three sessions of Pat: one whose live stream never hears from the server (so only its
  // next API call can tell it was signed out), a phone, and the desktop that changes it.
  const quiet = await loggedIn(pat, { setup: (context) => context.routeWebSocket(/\/v1\/stream/, () => {}) });
  const phone = await loggedIn(pat, { phone: true });
  const page = await loggedIn(pat);
  const changes = [];
  page.on('request', (r) => r.url().endsWith('/v1/me/password') && changes.push(r.method()));
  const storage = (p) => p.evaluate(() => ({ token: localStorage.getItem('switchboard.token'), email: localStorage.getItem('switchboard.email') }));
  assert((await storage(page)).email === pat.email, 'the login remembers its email');

  // The phone: the form's own checks, said beside each field, before anything is sent.
  await phone.goto(`${BASE}/#/settings`);
  const phoneForm = phone.getByRole('form', { name: 'Change password' });
  await phoneForm.waitFor({ timeout: WAIT });
  await phone.getByLabel('Current password').fill(PASSWORD);
  await phone.getByLabel('New password', { exact: true }).fill('too short');
  await phone.getByLabel('Confirm new password').fill('something else');
  await phone.getByLabel('Confirm new password').press('Enter');
  await phone.locator('#pw-new-error', { hasText: 'Too short: this one has 9 characters.' }).waitFor({ timeout: WAIT });
  assert((await phone.getByLabel('New password', { exact: true }).getAttribute('aria-invalid')) === 'true', 'the short password is marked invalid');
  assert((await phone.evaluate(() => document.activeElement.id)) === 'pw-new', 'the focus goes to the first problem');
  assert((await phone.locator('#pw-confirm-error').textContent()) === 'The new passwords do not match.', 'the mismatch is said');
  await phoneForm.scrollIntoViewIfNeeded();
  await shot(phone, 'phone-settings-password');

  // The desktop: the email is the login's; a short or mismatched new password is not sent.
  await page.getByRole('link', { name: 'Settings' }).click();
  const form = page.getByRole('form', { name: 'Change password' });
  const email = page.getByLabel('Email you log in with');
  const current = page.getByLabel('Current password');
  const fresh = page.getByLabel('New password', { exact: true });
  const again = page.getByLabel('Confirm new password');
  const submit = form.getByRole('button', { name: 'Change password' });
  const status = page.locator('#pw-status');
  await form.waitFor({ timeout: WAIT });
  assert((await email.inputValue()) === pat.email, 'the email is filled in');
  assert((await email.getAttribute('autocomplete')) === 'username' && (await current.getAttribute('autocomplete')) === 'current-password' && (await fresh.getAttribute('autocomplete')) === 'new-password' && (await again.getAttribute('autocomplete')) === 'new-password', 'autocomplete for password managers');
  await current.fill('not my password at all');
  await fresh.fill(NEW);
  await again.fill(`${NEW}!`);
  await submit.click();
  await page.locator('#pw-confirm-error', { hasText: 'do not match' }).waitFor({ timeout: WAIT });
  assert((await again.getAttribute('aria-describedby')).split(' ').includes('pw-confirm-error'), 'the error describes its field');
  await again.fill(NEW);
  assert((await page.locator('#pw-confirm-error').textContent()) === '', 'typing again clears it');
  assert(changes.length === 0, 'nothing sent while the form is wrong');

  // A wrong current password: a sentence, never the code; nobody is signed out.
  await submit.click();
  await status.filter({ hasText: "That email and current password don't match your login." }).waitFor({ timeout: WAIT });
  assert((await status.getAttribute('class')).includes('error'), 'shown as a refusal');
  assert(!/wrong_password|[0-9a-f]{8}-[0-9a-f]{4}/.test(await status.textContent()), 'no code or id');
  assert(changes.length === 1, 'sent once');
  assert((await page.evaluate(() => document.activeElement.id)) === 'pw-current', 'back to the current password');
  await shot(page, 'settings-password-refused');
  const quietToken = (await storage(quiet)).token;
  assert((await fetch(`${BASE}/v1/me`, { headers: { authorization: `Bearer ${quietToken}` } })).status === 200, 'a refusal signs nobody out');

  // The right one: the other two sessions end, this one stays; the refusal goes.
  await current.fill(PASSWORD);
  await submit.click();
  await status.filter({ hasText: 'Password changed. 2 other sessions were signed out.' }).waitFor({ timeout: WAIT });
  assert(!(await status.getAttribute('class')).includes('error'), 'the refusal is gone');
  assert((await current.inputValue()) === '' && (await fresh.inputValue()) === '' && (await again.inputValue()) === '', 'the passwords are cleared');
  assert((await email.inputValue()) === pat.email, 'the email stays');
  assert(await submit.isEnabled(), 'the button is back');
  await shot(page, 'settings-password-changed');

  // The phone's stream is closed by the server: back to the login screen, forgetting all.
  await phone.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
  const forgotten = await storage(phone);
  assert(forgotten.token === null && forgotten.email === null, `logged out, token and email forgotten: ${JSON.stringify(forgotten)}`);
  // The quiet one still shows the workspace; its next API call is refused (401), and it
  // goes back to the login screen.
  assert((await fetch(`${BASE}/v1/me`, { headers: { authorization: `Bearer ${quietToken}` } })).status === 401, 'the other token is revoked');
  assert(await quiet.locator('nav.sidebar').isVisible(), 'not told yet');
  const refused = quiet.waitForResponse((r) => r.url().startsWith(`${BASE}/v1/`) && r.status() === 401, { timeout: WAIT });
  await quiet.getByRole('link', { name: 'Contacts' }).click();
  await refused;
  await quiet.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
  assert((await storage(quiet)).email === null, 'the email is forgotten at logout');

  // The old password is refused, the new one logs in.
  await quiet.getByLabel('Email').fill(pat.email);
  await quiet.getByLabel('Password').fill(PASSWORD);
  await quiet.getByRole('button', { name: 'Log in' }).click();
  await quiet.locator('.login p.error:not(:empty)').waitFor({ timeout: WAIT });
  assert(await quiet.getByRole('button', { name: 'Log in' }).isVisible(), 'still on the login screen');
  await shot(quiet, 'login-old-password-refused');
  await quiet.getByLabel('Password').fill(NEW);
  await quiet.getByRole('button', { name: 'Log in' }).click();
  await quiet.locator('nav.sidebar').waitFor({ timeout: WAIT });
  let old = null;
  await call('POST', '/v1/sessions', { body: { email: pat.email, password: PASSWORD } }).catch((e) => (old = e));
  assert(old && / 401 /.test(old.message), `the old password is refused by the API: ${old?.message}`);
  await call('POST', '/v1/sessions', { body: { email: pat.email, password: NEW } });

  // This session stayed: a reload keeps it.
  await page.reload();
  await form.waitFor({ timeout: WAIT });
  assert((await email.inputValue()) === pat.email, 'still logged in, the email remembered');
  await phone.getByLabel('Email').fill(pat.email.toUpperCase());
  await phone.getByLabel('Password').fill(NEW);
  await phone.getByRole('button', { name: 'Log in' }).click();
  await phone.locator('nav.sidebar').waitFor({ timeout: WAIT });
  await phone.goto(`${BASE}/#/settings`);
  await phoneForm.scrollIntoViewIfNeeded();
  assert((await phone.getByLabel('Email you log in with').inputValue()) === pat.email.toUpperCase(), 'the email as typed at login');
  await notPolling(page);
});

// ---------------------------------------------------------------- runner

let failed = 0;
let ran = 0;
const started = Date.now();
for (const s of scenarios) {
  if (ONLY && !s.name.includes(ONLY)) continue;
  ran += 1;
  const t0 = Date.now();
  pages.length = 0;
  try {
    await s.f();
    const errors = pages.flatMap((p) => p.errors);
    if (errors.length) throw new Error(`errors in the page: ${errors.join(' | ')}`);
    console.log(`ok - ${s.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${s.name} (${Date.now() - t0} ms)\n  ${String(e.stack || e).replace(/\n/g, '\n  ')}`);
    for (const [i, p] of pages.entries()) {
      await p.screenshot({ path: join(SHOTS, `FAILED-${s.name.slice(0, 30).replace(/\W+/g, '-')}-${i}.png`) }).catch(() => {});
    }
  } finally {
    for (const p of pages) await p.context().close().catch(() => {});
  }
}
await browser.close();
console.log(`${failed ? 'FAILED' : 'passed'}: ${ran - failed}/${ran} in ${Date.now() - started} ms; screenshots in ${SHOTS}`);
process.exit(failed || !ran ? 1 : 0);
