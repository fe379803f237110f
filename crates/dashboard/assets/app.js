// rmq-rs dashboard: a hash-routed single page over the JSON API of mqdashboard.
// Served as one static file, so everything (routing, rendering, the SVG chart) lives here.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);

// Every server string goes through esc() before it reaches innerHTML: topic names, message
// bodies and properties are whatever producers sent.
const esc = (v) => String(v ?? '').replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const enc = encodeURIComponent;
const dash = (v) => (v === null || v === undefined || v === '' ? '—' : esc(v));
const tps = (v) => (Number(v) || 0).toFixed(1);
const time = (ms) => (ms ? esc(new Date(ms).toLocaleString()) : '—');
// Table header; a leading '#' marks a numeric, right-aligned column.
const head = (...cols) => `<thead><tr>${cols.map((c) => (c.startsWith('#')
  ? `<th class="num">${c.slice(1)}</th>` : `<th>${c}</th>`)).join('')}</tr></thead>`;

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

// ---- session -------------------------------------------------------------------------

let session = { aclEnabled: false, user: null, admin: false };
// The server decides (it answers 403); this only keeps the forms from inviting doomed changes.
const locked = () => session.aclEnabled && !session.admin;
const lockNote = () => (locked()
  ? '<p class="note" data-testid="locked-note">sign in with an admin account to make changes</p>'
  : '');

function renderAuth(message = '') {
  const box = $('#auth');
  if (!session.aclEnabled) { box.innerHTML = ''; return; }
  if (session.user) {
    box.innerHTML = `<span data-testid="login-status">signed in as <b>${esc(session.user)}</b>
      (${session.admin ? 'admin' : 'read-only'})</span>
      <button type="button" data-testid="logout">Sign out</button>`;
    $('[data-testid=logout]', box).onclick = async () => {
      try { await api('POST', '/api/logout'); } catch (e) { return renderAuth(e.message); }
      session = { ...session, user: null, admin: false };
      renderAuth();
      route();
    };
    return;
  }
  box.innerHTML = `<form class="login">
      <input name="accessKey" placeholder="access key" autocomplete="username" required data-testid="login-key">
      <input name="secretKey" type="password" placeholder="secret key" autocomplete="current-password" required data-testid="login-secret">
      <button data-testid="login-submit">Sign in</button>
      <span class="status ${message ? 'bad' : ''}" data-testid="login-status">${esc(message) || 'not signed in'}</span>
    </form>`;
  $('form', box).onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    try {
      const who = await api('POST', '/api/login', { accessKey: f.accessKey.value, secretKey: f.secretKey.value });
      session = { ...session, user: who.user, admin: who.admin };
      renderAuth();
      route();
    } catch (e) { renderAuth(`sign-in failed: ${e.message}`); }
  };
}

// ---- routing -------------------------------------------------------------------------

// Bumped on every navigation: a response or timer belonging to an older page sees the
// mismatch and drops itself instead of drawing over the current page.
let generation = 0;

function showError(message) {
  const box = $('#error');
  box.textContent = message || '';
  box.hidden = !message;
}

const routes = [
  [/^\/cluster$/, clusterPage],
  [/^\/topics$/, topicsPage],
  [/^\/topics\/(.+)$/, topicPage],
  [/^\/groups$/, groupsPage],
  [/^\/groups\/(.+)$/, groupPage],
  [/^\/messages$/, messagesPage],
];

async function route() {
  const [path, query = ''] = (location.hash.slice(1) || '/cluster').split('?');
  const match = routes.map(([re, page]) => [path.match(re), page]).find(([m]) => m);
  if (!match) { location.hash = '#/cluster'; return; }
  const [m, page] = match;
  const gen = ++generation;
  showError('');
  document.querySelectorAll('nav a').forEach((a) =>
    a.classList.toggle('active', path.startsWith(`/${a.dataset.nav}`)));
  const root = document.createElement('section');
  root.dataset.testid = `page-${page.id}`;
  // Lets a test tell this page from the one it replaced (hashchange fires a moment later).
  root.dataset.route = location.hash;
  root.innerHTML = '<p class="muted">Loading…</p>';
  $('#page').replaceChildren(root);
  const current = () => gen === generation;
  try {
    const args = m.slice(1).map(decodeURIComponent);
    await page(root, { args, params: new URLSearchParams(query), current });
    if (current()) root.dataset.loaded = 'true';
  } catch (e) {
    if (!current()) return;
    root.innerHTML = '';
    showError(e.message);
  }
}

// Runs fn now and every ms after it finished (no overlapping requests when the server is
// slow) until the user navigates away.
function every(ms, current, fn) {
  const tick = async () => {
    if (!current()) return;
    await fn();
    if (current()) setTimeout(tick, ms);
  };
  return tick();
}

// Wires a form whose submission changes something: the outcome, the server's refusal
// included, goes to the form's own result element.
function action(form, result, run) {
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const button = $('button', form);
    button.disabled = true;
    result.className = 'result';
    result.textContent = 'working…';
    try {
      result.textContent = await run(form.elements);
      result.classList.add('ok');
    } catch (e) {
      result.textContent = e.message;
      result.classList.add('bad');
    } finally {
      button.disabled = false;
    }
  };
}

// ---- #/cluster -----------------------------------------------------------------------

function memberRows(group) {
  return group.members.map((m) => {
    const r = m.raft || {};
    const follower = m.raft && r.role !== 'Leader';
    return `<tr data-testid="member-row" data-addr="${esc(m.addr)}" data-role="${esc(m.role)}"
        data-node-id="${esc(r.nodeId)}" data-raft-role="${esc(r.role)}" data-term="${esc(r.term)}" data-lag="${esc(m.lag)}">
      <td>${esc(m.brokerId)}</td><td>${esc(m.addr)}</td>
      <td><span class="badge ${m.role === 'MASTER' ? 'lead' : ''}">${esc(m.role)}</span></td>
      <td>${dash(r.nodeId)}</td><td class="${r.role === 'Leader' ? 'lead' : ''}">${dash(r.role)}</td>
      <td class="num">${dash(r.term)}</td>
      <td class="num">${m.raft ? `${esc(r.commitIndex)} / ${esc(r.appliedIndex)}` : '—'}</td>
      <td class="num">${dash(m.lag)}</td>
      <td>${follower ? `<button type="button" data-testid="leader-button" data-broker="${esc(group.brokerName)}"
        data-node-id="${esc(r.nodeId)}" ${locked() ? 'disabled' : ''}>Make leader</button>` : ''}</td>
    </tr>`;
  }).join('');
}

function clusterTables(cluster) {
  const groups = cluster.clusters.flatMap((c) => c.groups.map((g) => `
    <div class="card">
      <h3>${esc(g.brokerName)} <span class="muted">in cluster ${esc(c.name)}</span></h3>
      <table>${head('id', 'address', 'role', 'raft node', 'raft role', '#term', '#commit / applied', '#lag', '')}
      <tbody>${memberRows(g)}</tbody></table>
    </div>`));
  return groups.join('') || '<p class="muted">No brokers registered.</p>';
}

function chart(samples) {
  const W = 900, H = 200, L = 44, T = 10, B = 22, N = 60;
  const peak = Math.max(0, ...samples.flatMap((s) => [s.in, s.out]));
  // A round axis maximum (1, 2 or 5 times a power of ten) keeps the label readable.
  const pow = 10 ** Math.floor(Math.log10(Math.max(peak, 1)));
  const max = [1, 2, 5, 10].map((f) => f * pow).find((v) => v >= peak) || 1;
  const x = (i) => L + ((W - L) * (N - samples.length + i)) / (N - 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const line = (key) => samples.map((s, i) => `${x(i).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
  return `<svg data-testid="throughput-chart" data-samples="${samples.length}" viewBox="0 0 ${W} ${H}"
      role="img" aria-label="messages per second, last two minutes">
    <line class="grid" x1="${L}" x2="${W}" y1="${y(max)}" y2="${y(max)}"/>
    <line class="grid" x1="${L}" x2="${W}" y1="${y(max / 2)}" y2="${y(max / 2)}"/>
    <line class="axis" x1="${L}" x2="${W}" y1="${y(0)}" y2="${y(0)}"/>
    <text x="${L - 6}" y="${y(max) + 4}" text-anchor="end" data-testid="throughput-max">${max}</text>
    <text x="${L - 6}" y="${y(0) + 4}" text-anchor="end">0</text>
    <text x="${L}" y="${H - 4}">−2 min</text><text x="${W}" y="${H - 4}" text-anchor="end">now</text>
    <polyline class="series-in" data-series="in" points="${line('in')}"/>
    <polyline class="series-out" data-series="out" points="${line('out')}"/>
    <g class="legend" transform="translate(${(L + W) / 2 - 50},${H - 13})">
      <rect class="series-in" width="10" height="10" y="-1"/><text x="14" y="8">in</text>
      <rect class="series-out" x="44" width="10" height="10" y="-1"/><text x="58" y="8">out (msg/s)</text>
    </g>
  </svg>`;
}

async function clusterPage(root, { current }) {
  let cluster = await api('GET', '/api/cluster');
  if (!current()) return;
  root.innerHTML = `<h2>Cluster</h2>
    <p class="muted">Name servers: ${cluster.namesrv.map(esc).join(', ') || '—'}</p>
    <div class="card"><h3>Throughput</h3>
      <p class="figures">in <b data-testid="throughput-in">–</b> msg/s ·
        out <b data-testid="throughput-out">–</b> msg/s <span class="muted" id="per-broker"></span></p>
      <div id="chart">${chart([])}</div><p class="result bad" id="chart-status"></p>
    </div>
    ${lockNote()}
    <p class="result" data-testid="leader-result" id="leader-result"></p>
    <div id="groups">${clusterTables(cluster)}</div>`;

  // Leadership buttons live in tables that are redrawn on refresh, so listen on the parent.
  const leaderResult = $('#leader-result', root);
  $('#groups', root).onclick = async (ev) => {
    const b = ev.target.closest('[data-testid=leader-button]');
    if (!b) return;
    b.disabled = true;
    leaderResult.className = 'result';
    leaderResult.textContent = `asking ${b.dataset.broker} to hand leadership to ${b.dataset.nodeId}…`;
    try {
      await api('POST', `/api/brokers/${enc(b.dataset.broker)}/leader`, { nodeId: b.dataset.nodeId });
      leaderResult.textContent = `leadership of ${b.dataset.broker} transferred to ${b.dataset.nodeId}`;
      leaderResult.classList.add('ok');
    } catch (e) {
      leaderResult.textContent = e.message;
      leaderResult.classList.add('bad');
      b.disabled = false;
    }
  };

  const samples = [];
  every(2000, current, async () => {
    const status = $('#chart-status', root);
    try {
      const t = await api('GET', '/api/throughput');
      if (!current()) return;
      const sum = (k) => t.brokers.reduce((a, b) => a + (Number(b[k]) || 0), 0);
      samples.push({ in: sum('inTps'), out: sum('outTps') });
      if (samples.length > 60) samples.shift();
      $('[data-testid=throughput-in]', root).textContent = tps(sum('inTps'));
      $('[data-testid=throughput-out]', root).textContent = tps(sum('outTps'));
      $('#per-broker', root).textContent = t.brokers.length > 1 ? `(${t.brokers
        .map((b) => `${b.brokerName} ${b.addr}: ${tps(b.inTps)} / ${tps(b.outTps)}`).join('; ')})` : '';
      $('#chart', root).innerHTML = chart(samples);
      status.textContent = '';
    } catch (e) { status.textContent = `throughput: ${e.message}`; }
  });
  // Roles, terms and lags move (elections, transfers): keep them live too, redrawing only on
  // a change so a button is not swapped out from under the pointer for nothing.
  let last = JSON.stringify(cluster);
  setTimeout(() => every(5000, current, async () => {
    try { cluster = await api('GET', '/api/cluster'); } catch { return; }
    const now = JSON.stringify(cluster);
    if (now !== last && current()) $('#groups', root).innerHTML = clusterTables(cluster);
    last = now;
  }), 5000);
}
clusterPage.id = 'cluster';

// ---- #/topics, #/topics/<name> -------------------------------------------------------

async function topicsPage(root, { params, current }) {
  const system = params.get('system') === 'true';
  const { topics } = await api('GET', `/api/topics?system=${system}`);
  if (!current()) return;
  const rows = topics.map((t) => `<tr data-testid="topic-row" data-topic="${esc(t.topic)}">
      <td><a href="#/topics/${esc(enc(t.topic))}">${esc(t.topic)}</a></td>
      <td class="num" data-testid="topic-queues">${esc(t.queues)}</td>
      <td class="num" data-testid="topic-messages">${esc(t.messages)}</td>
      <td class="num" data-testid="topic-in-tps">${tps(t.inTps)}</td></tr>`).join('');
  root.innerHTML = `<h2>Topics</h2>
    <label class="toggle"><input type="checkbox" data-testid="show-system" ${system ? 'checked' : ''}>
      show system topics</label>
    <table>${head('topic', '#queues', '#messages', '#in msg/s')}
      <tbody>${rows || '<tr><td colspan="4" class="muted">No topics.</td></tr>'}</tbody></table>
    <div class="card"><h3>Create topic</h3>${lockNote()}
      <form id="create"><fieldset ${locked() ? 'disabled' : ''}>
        <input name="topic" placeholder="topic name" required data-testid="create-topic-name">
        <label>queues <input name="queues" type="number" min="1" value="8" required data-testid="create-topic-queues"></label>
        <button data-testid="create-topic-submit">Create</button>
      </fieldset></form>
      <p class="result" data-testid="create-topic-result"></p></div>`;
  $('[data-testid=show-system]', root).onchange = (ev) => {
    location.hash = ev.target.checked ? '#/topics?system=true' : '#/topics';
  };
  action($('#create', root), $('[data-testid=create-topic-result]', root), async (f) => {
    const topic = f.topic.value.trim();
    await api('POST', '/api/topics', { topic, queues: Number(f.queues.value) });
    return `created topic ${topic} with ${f.queues.value} queues`;
  });
}
topicsPage.id = 'topics';

async function topicPage(root, { args: [name], current }) {
  const t = await api('GET', `/api/topics/${enc(name)}`);
  if (!current()) return;
  const rows = t.queues.map((q) => `<tr data-testid="queue-row" data-queue-id="${esc(q.queueId)}"
      data-min-offset="${esc(q.minOffset)}" data-max-offset="${esc(q.maxOffset)}">
      <td>${esc(q.brokerName)}</td><td class="num">${esc(q.queueId)}</td>
      <td class="num">${esc(q.minOffset)}</td><td class="num">${esc(q.maxOffset)}</td>
      <td>${time(q.lastUpdate)}</td></tr>`).join('');
  const groups = t.groups.map((g) =>
    `<li data-testid="topic-group" data-group="${esc(g)}"><a href="#/groups/${esc(enc(g))}">${esc(g)}</a></li>`);
  root.innerHTML = `<p class="crumbs"><a href="#/topics">Topics</a> /</p><h2>${esc(t.topic)}</h2>
    <p class="figures">in <b>${tps(t.inTps)}</b> msg/s ·
      <a href="#/messages?topic=${esc(enc(t.topic))}">look up messages</a></p>
    <table>${head('broker', '#queue', '#min offset', '#max offset', 'last update')}<tbody>${rows}</tbody></table>
    <h3>Consumer groups</h3>
    ${groups.length ? `<ul class="links">${groups.join('')}</ul>` : '<p class="muted">None subscribed.</p>'}`;
}
topicPage.id = 'topic';

// ---- #/groups, #/groups/<name> -------------------------------------------------------

async function groupsPage(root, { current }) {
  const { groups } = await api('GET', '/api/groups');
  if (!current()) return;
  const rows = groups.map((g) => `<tr data-testid="group-row" data-group="${esc(g.group)}">
      <td><a href="#/groups/${esc(enc(g.group))}">${esc(g.group)}</a></td>
      <td>${g.topics.map((t) => `<a href="#/topics/${esc(enc(t))}">${esc(t)}</a>`).join(', ')}</td>
      <td class="num" data-testid="group-row-lag">${esc(g.lag)}</td><td class="num">${tps(g.consumeTps)}</td>
      <td class="num">${esc(g.clients)}</td></tr>`).join('');
  root.innerHTML = `<h2>Consumer groups</h2>
    <table>${head('group', 'topics', '#lag', '#consume msg/s', '#online clients')}
    <tbody>${rows || '<tr><td colspan="5" class="muted">No consumer groups.</td></tr>'}</tbody></table>`;
}
groupsPage.id = 'groups';

// datetime-local wants local wall-clock time without a zone; toISOString gives UTC, so shift.
const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);

async function groupPage(root, { args: [name], current }) {
  const g = await api('GET', `/api/groups/${enc(name)}`);
  if (!current()) return;
  const queues = g.queues.map((q) => `<tr data-testid="queue-row" data-topic="${esc(q.topic)}"
      data-queue-id="${esc(q.queueId)}" data-lag="${esc(q.lag)}">
      <td><a href="#/topics/${esc(enc(q.topic))}">${esc(q.topic)}</a></td><td>${esc(q.brokerName)}</td>
      <td class="num">${esc(q.queueId)}</td><td class="num">${esc(q.brokerOffset)}</td>
      <td class="num">${esc(q.consumerOffset)}</td><td class="num">${esc(q.lag)}</td>
      <td>${time(q.lastTimestamp)}</td></tr>`).join('');
  const clients = g.clients.map((c) => `<tr data-testid="client-row">
      <td>${esc(c.clientId)}</td><td>${esc(c.addr)}</td><td>${esc(c.language)}</td>
      <td class="num">${esc(c.version)}</td></tr>`).join('');
  const topics = [...new Set(g.queues.map((q) => q.topic))];
  // With no offsets yet there is nothing to pick from; the topic can still be typed.
  const topicField = topics.length
    ? `<select name="topic" data-testid="reset-topic">${topics.map((t) => `<option>${esc(t)}</option>`).join('')}</select>`
    : '<input name="topic" placeholder="topic" required data-testid="reset-topic">';
  root.innerHTML = `<p class="crumbs"><a href="#/groups">Consumer groups</a> /</p><h2>${esc(g.group)}</h2>
    <p class="figures">total lag <b data-testid="group-lag">${esc(g.lag)}</b> ·
      consuming <b data-testid="group-consume-tps">${tps(g.consumeTps)}</b> msg/s · <b>${g.clients.length}</b> online clients</p>
    <table>${head('topic', 'broker', '#queue', '#broker offset', '#consumer offset', '#lag', 'last consumed')}
      <tbody>${queues || '<tr><td colspan="7" class="muted">No committed offsets.</td></tr>'}</tbody></table>
    <h3>Online clients</h3>
    <table>${head('client id', 'address', 'language', '#version')}
      <tbody>${clients || '<tr><td colspan="4" class="muted">No client online.</td></tr>'}</tbody></table>
    <div class="card"><h3>Reset consumer offset</h3>${lockNote()}
      <form id="reset"><fieldset ${locked() ? 'disabled' : ''}>
        <label>topic ${topicField}</label>
        <label>to messages stored since
          <input name="time" type="datetime-local" step="1" required value="${localInput(new Date())}" data-testid="reset-time"></label>
        <button data-testid="reset-submit">Reset</button>
      </fieldset></form>
      <p class="result" data-testid="reset-result"></p></div>`;
  action($('#reset', root), $('[data-testid=reset-result]', root), async (f) => {
    const timestamp = new Date(f.time.value).getTime();
    if (Number.isNaN(timestamp)) throw new Error('pick a date and time');
    const r = await api('POST', `/api/groups/${enc(g.group)}/reset`, { topic: f.topic.value, timestamp });
    return `reset ${r.queues} queues of ${f.topic.value} to ${new Date(timestamp).toLocaleString()}`;
  });
}
groupPage.id = 'group';

// ---- #/messages ----------------------------------------------------------------------

function messageCard(m) {
  const props = Object.entries(m.properties || {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  return `<article class="card message" data-testid="message-card" data-msgid="${esc(m.msgId)}" data-topic="${esc(m.topic)}">
    <h3 class="mono">${esc(m.msgId)}</h3>
    <dl>
      <dt>topic</dt><dd><a href="#/topics/${esc(enc(m.topic))}">${esc(m.topic)}</a></dd>
      <dt>queue</dt><dd>${esc(m.brokerName)} #${esc(m.queueId)}, offset ${esc(m.queueOffset)}</dd>
      <dt>tags</dt><dd>${dash(m.tags)}</dd><dt>keys</dt><dd>${dash(m.keys)}</dd>
      <dt>born</dt><dd>${time(m.bornTimestamp)} from ${dash(m.bornHost)}</dd>
      <dt>stored</dt><dd>${time(m.storeTimestamp)}</dd>
    </dl>
    <pre data-testid="message-body">${esc(m.body)}</pre>
    ${props ? `<details><summary>properties</summary><table class="props">${props}</table></details>` : ''}
  </article>`;
}

// A lookup is a URL (#/messages?id=… or ?topic=…&key=…), so results can be linked and reloaded.
async function messagesPage(root, { params, current }) {
  const p = (k) => esc(params.get(k) || '');
  root.innerHTML = `<h2>Messages</h2>
    <div class="lookups">
      <form class="card" id="by-id"><h3>By message id</h3>
        <input name="id" placeholder="message id" required value="${p('id')}" data-testid="lookup-id">
        <input name="topic" placeholder="topic (optional)" value="${params.has('id') ? p('topic') : ''}" data-testid="lookup-id-topic">
        <button data-testid="lookup-id-submit">Look up</button></form>
      <form class="card" id="by-key"><h3>By topic and key</h3>
        <input name="topic" placeholder="topic" required value="${params.has('id') ? '' : p('topic')}" data-testid="lookup-topic">
        <input name="key" placeholder="key" required value="${p('key')}" data-testid="lookup-key">
        <button data-testid="lookup-key-submit">Look up</button></form>
    </div>
    <p class="result" data-testid="lookup-result"></p><div id="results"></div>`;
  const go = (q) => {
    const hash = `#/messages?${new URLSearchParams(Object.entries(q).filter(([, v]) => v))}`;
    if (location.hash === hash) route(); else location.hash = hash;
  };
  $('#by-id', root).onsubmit = (ev) => {
    ev.preventDefault();
    go({ id: ev.target.elements.id.value.trim(), topic: ev.target.elements.topic.value.trim() });
  };
  $('#by-key', root).onsubmit = (ev) => {
    ev.preventDefault();
    go({ topic: ev.target.elements.topic.value.trim(), key: ev.target.elements.key.value.trim() });
  };

  const query = params.has('id') ? ['id', 'topic'] : params.has('key') ? ['topic', 'key'] : null;
  if (!query) return;
  const result = $('[data-testid=lookup-result]', root);
  result.textContent = 'looking up…';
  try {
    const qs = new URLSearchParams(query.filter((k) => params.get(k)).map((k) => [k, params.get(k)]));
    const { messages } = await api('GET', `/api/messages?${qs}`);
    if (!current()) return;
    result.textContent = `${messages.length} message${messages.length === 1 ? '' : 's'} found`;
    $('#results', root).innerHTML = messages.map(messageCard).join('');
  } catch (e) {
    result.textContent = e.message;
    result.classList.add('bad');
  }
}
messagesPage.id = 'messages';

// ---- start ---------------------------------------------------------------------------

window.addEventListener('hashchange', route);
(async () => {
  let failed = '';
  try {
    session = await api('GET', '/api/session');
  } catch (e) {
    failed = `session: ${e.message}`;
  }
  renderAuth();
  route();
  // After route(), which clears the error box as it starts a page.
  if (failed) showError(failed);
})();
