// Drives the mqdashboard web UI in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core, found on NODE_PATH; scripts/setup-dashboard-browser installs both) and
// prints, one JSON object per line on stdout, what the pages showed. It judges nothing: the
// Rust test decides. A failing step prints {"step", "error"} and the next step runs. Exit 0,
// 1 when Chromium cannot start, 2 on a usage error.
//
//   node driver.js --url http://127.0.0.1:PORT --screenshots DIR --topic T --group G --msg-id ID
//       [--admin-key AK --admin-secret SK] [--user-key AK --user-secret SK]
//       [--create-topic NAME] [--leader-node NODEID] [--reset-to-start true] [--key K]
//       [--online-group G]
//
// Steps: cluster (throughput in and out, the chart), topics (each topic's in rate), topic,
// group, online-group (with --online-group), reset (with --reset-to-start), message,
// messages-by-key (with --key); create-as-user (with --user-key: a
// non-admin account; the form should be disabled, the driver enables it anyway so the
// server's refusal shows); create-as-admin, created-listed and leader (with --admin-key, or
// without it when ACL is off); last, page-errors (uncaught exceptions in the page).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const WAIT_MS = 15000;
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function line(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function parse(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    flags[argv[i].slice(2)] = argv[i + 1];
  }
  for (const needed of ['url', 'screenshots', 'topic', 'group', 'msg-id']) {
    if (!flags[needed]) throw new Error(`missing --${needed}`);
  }
  flags.url = flags.url.replace(/\/+$/, '');
  return flags;
}

const num = (s) => (s === null || s === undefined || s === '' || Number.isNaN(Number(s)) ? null : Number(s));
const testid = (id) => `[data-testid="${id}"]`;

async function main() {
  let flags;
  try {
    flags = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`driver.js: ${e.message}\n`);
    process.exit(2);
  }
  fs.mkdirSync(flags.screenshots, { recursive: true });

  let browser;
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, timeout: 30000,
    });
  } catch (e) {
    line({ step: 'launch', error: e.message });
    process.exit(1);
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  const shot = async (name) => {
    await page.screenshot({ path: path.join(flags.screenshots, `${name}.png`), fullPage: true })
      .catch(() => {});
  };

  // Runs one step; whatever it returns is printed, whatever it throws becomes its error line.
  const step = async (name, screenshot, run) => {
    try {
      line({ step: name, ...(await run()) });
    } catch (e) {
      line({ step: name, error: e.message.split('\n')[0] });
    }
    if (screenshot) await shot(screenshot);
  };

  // Waits until the page root for the current URL says it rendered its data, or the page
  // shows a load error (thrown, so the step reports the server's text).
  const loaded = async (name) => {
    await page.waitForFunction((name) => {
      const root = document.querySelector(`[data-testid="page-${name}"]`);
      const error = document.querySelector('[data-testid="error"]');
      return (root && root.dataset.loaded === 'true' && root.dataset.route === location.hash)
        || (error && !error.hidden);
    }, name, { timeout: WAIT_MS });
    const error = page.locator(testid('error'));
    if (await error.isVisible()) throw new Error(`page shows error: ${await error.textContent()}`);
  };

  // A fresh document each time, so nothing of the previous page lingers.
  const open = async (hash, name) => {
    await page.goto('about:blank');
    await page.goto(`${flags.url}/${hash}`);
    await loaded(name);
  };

  // Waits for a result element to hold an outcome rather than a progress message.
  const outcome = async (selector) => {
    await page.waitForFunction((sel) => {
      const text = (document.querySelector(sel)?.textContent || '').trim();
      return text && !text.endsWith('…');
    }, selector, { timeout: WAIT_MS });
    return (await page.locator(selector).textContent()).trim();
  };

  const signIn = async (key, secret) => {
    await open('#/topics', 'topics');
    if (!(await page.locator(testid('login-key')).count())) throw new Error('no sign-in form (ACL off?)');
    await page.fill(testid('login-key'), key);
    await page.fill(testid('login-secret'), secret);
    await page.click(testid('login-submit'));
    const status = await page.waitForFunction(() => {
      const text = (document.querySelector('[data-testid="login-status"]')?.textContent || '').trim();
      return /^(signed in|sign-in failed)/.test(text) && text.replace(/\s+/g, ' ');
    }, null, { timeout: WAIT_MS }).then((h) => h.jsonValue());
    if (!status.startsWith('signed in')) throw new Error(status);
    await loaded('topics');
    return status;
  };

  const signOut = async () => {
    await page.click(testid('logout'));
    await page.waitForSelector(testid('login-submit'), { timeout: WAIT_MS });
  };

  // Fills and submits the create-topic form on the topics page; returns what it showed.
  const createTopic = async (name, queues) => {
    const disabled = await page.$eval(testid('create-topic-submit'), (b) => b.matches(':disabled'));
    // A disabled form is the UI's advice only; submitting anyway shows what the server says.
    if (disabled) {
      await page.$$eval(`form:has(${testid('create-topic-submit')}) fieldset`, (fs) =>
        fs.forEach((f) => { f.disabled = false; }));
    }
    await page.fill(testid('create-topic-name'), name);
    await page.fill(testid('create-topic-queues'), String(queues));
    await page.click(testid('create-topic-submit'));
    return { disabled, result: await outcome(testid('create-topic-result')) };
  };

  await step('cluster', 'cluster', async () => {
    await open('#/cluster', 'cluster');
    await page.waitForFunction(() =>
      Number(document.querySelector('[data-testid="throughput-chart"]')?.dataset.samples) >= 2,
    null, { timeout: WAIT_MS });
    const members = await page.$$eval(testid('member-row'), (rows) => rows.map((r) => ({
      addr: r.dataset.addr, role: r.dataset.role, nodeId: r.dataset.nodeId || null,
      raftRole: r.dataset.raftRole || null, term: r.dataset.term, lag: r.dataset.lag,
    })));
    const points = await page.$eval('[data-testid="throughput-chart"] polyline[data-series="in"]',
      (p) => p.getAttribute('points').trim().split(/\s+/).filter(Boolean).length);
    return {
      members: members.map((m) => ({ ...m, term: num(m.term), lag: num(m.lag) })),
      throughputIn: num(await page.textContent(testid('throughput-in'))),
      throughputOut: num(await page.textContent(testid('throughput-out'))),
      chartPoints: points,
    };
  });

  await step('topics', 'topics', async () => {
    await open('#/topics', 'topics');
    const rows = await page.$$eval(testid('topic-row'), (rows) => rows.map((r) => ({
      topic: r.dataset.topic,
      messages: r.querySelector('[data-testid="topic-messages"]').textContent,
      queues: r.querySelector('[data-testid="topic-queues"]').textContent,
      inTps: r.querySelector('[data-testid="topic-in-tps"]').textContent,
    })));
    const row = rows.find((r) => r.topic === flags.topic);
    if (!row) throw new Error(`topic ${flags.topic} not listed (${rows.length} topics listed)`);
    const inTps = Object.fromEntries(rows.map((r) => [r.topic, num(r.inTps)]));
    return { topic: row.topic, messages: num(row.messages), queues: num(row.queues), inTps };
  });

  await step('topic', 'topic', async () => {
    await open(`#/topics/${encodeURIComponent(flags.topic)}`, 'topic');
    const queues = await page.$$eval(testid('queue-row'), (rows) => rows.map((r) => ({
      queueId: r.dataset.queueId, minOffset: r.dataset.minOffset, maxOffset: r.dataset.maxOffset,
    })));
    const groups = await page.$$eval(testid('topic-group'), (items) => items.map((i) => i.dataset.group));
    return {
      queues: queues.map((q) => ({ queueId: num(q.queueId), minOffset: num(q.minOffset), maxOffset: num(q.maxOffset) })),
      groups,
    };
  });

  await step('group', 'group', async () => {
    await open(`#/groups/${encodeURIComponent(flags.group)}`, 'group');
    return {
      lag: num(await page.textContent(testid('group-lag'))),
      clients: await page.locator(testid('client-row')).count(),
      queues: await page.locator(testid('queue-row')).count(),
    };
  });

  // With --online-group: that group's page lists its online clients (their ids) and its
// consume rate.
  if (flags['online-group']) {
    await step('online-group', 'online-group', async () => {
      await open(`#/groups/${encodeURIComponent(flags['online-group'])}`, 'group');
      return {
        clientIds: await page.$$eval(testid('client-row'), (rows) => rows.map((r) => r.cells[0].textContent)),
        consumeTps: num(await page.textContent(testid('group-consume-tps'))),
      };
    });
  }

  // With --reset-to-start: the group's offsets of --topic go back to the first message (a
  // time before any was stored), and the page, opened again, shows the new lag.
  if (flags['reset-to-start']) {
    await step('reset', 'reset', async () => {
      await open(`#/groups/${encodeURIComponent(flags.group)}`, 'group');
      const topicField = page.locator(testid('reset-topic'));
      if ((await topicField.evaluate((e) => e.tagName)) === 'SELECT') {
        await topicField.selectOption(flags.topic);
      } else {
        await topicField.fill(flags.topic);
      }
      await page.fill(testid('reset-time'), '2000-01-01T00:00');
      await page.click(testid('reset-submit'));
      await page.waitForFunction(() => {
        const r = document.querySelector('[data-testid="reset-result"]');
        return r && r.textContent.trim() !== '';
      }, null, { timeout: WAIT_MS });
      const result = (await page.textContent(testid('reset-result'))).trim();
      await open(`#/groups/${encodeURIComponent(flags.group)}`, 'group');
      return { result, lagAfter: num(await page.textContent(testid('group-lag'))) };
    });
  }

  await step('message', 'message', async () => {
    await open('#/messages', 'messages');
    await page.fill(testid('lookup-id'), flags['msg-id']);
    // A client's message id (UNIQ_KEY) is searched in its topic, as RocketMQ's dashboard asks.
    await page.fill(testid('lookup-id-topic'), flags.topic);
    await page.click(testid('lookup-id-submit'));
    await page.waitForFunction(() => location.hash.includes('id='), null, { timeout: WAIT_MS });
    await loaded('messages');
    const card = page.locator(testid('message-card')).first();
    if (!(await card.count())) {
      return { found: false, result: (await page.textContent(testid('lookup-result'))).trim() };
    }
    return {
      found: true,
      msgId: await card.getAttribute('data-msgid'),
      topic: await card.getAttribute('data-topic'),
      body: await card.locator(testid('message-body')).textContent(),
    };
  });

  // With --key: the messages of --topic carrying that key.
  if (flags.key) {
    await step('messages-by-key', 'messages-by-key', async () => {
      await open('#/messages', 'messages');
      await page.fill(testid('lookup-topic'), flags.topic);
      await page.fill(testid('lookup-key'), flags.key);
      await page.click(testid('lookup-key-submit'));
      await page.waitForFunction(() => location.hash.includes('key='), null, { timeout: WAIT_MS });
      await loaded('messages');
      const cards = await page.$$eval(testid('message-card'), (all) => all.map((c) => ({
        msgId: c.dataset.msgid, topic: c.dataset.topic,
      })));
      return { found: cards.length, topics: [...new Set(cards.map((c) => c.topic))] };
    });
  }

  if (flags['user-key']) {
    await step('create-as-user', null, async () => {
      const signedIn = await signIn(flags['user-key'], flags['user-secret'] || '');
      const created = await createTopic(`${flags['create-topic'] || flags.topic}Denied`, 4);
      await shot('user');
      await signOut();
      return { signedIn, ...created };
    });
  }

  let acting = Boolean(flags['admin-key']);
  if (acting) {
    await step('sign-in-admin', null, async () => ({
      signedIn: await signIn(flags['admin-key'], flags['admin-secret'] || ''),
    }));
  } else {
    const session = await context.request.get(`${flags.url}/api/session`, { timeout: WAIT_MS })
      .then((r) => r.json()).catch(() => null);
    acting = Boolean(session && !session.aclEnabled);
  }

  if (acting && flags['create-topic']) {
    const name = flags['create-topic'];
    await step('create-as-admin', null, async () => {
      await open('#/topics', 'topics');
      return createTopic(name, 4);
    });
    await step('created-listed', 'admin', async () => {
      await page.reload();
      await loaded('topics');
      const topics = await page.$$eval(testid('topic-row'), (rows) => rows.map((r) => r.dataset.topic));
      return { topic: name, listed: topics.includes(name) };
    });
  }

  if (acting && flags['leader-node']) {
    const node = flags['leader-node'];
    await step('leader', 'leader', async () => {
      await open('#/cluster', 'cluster');
      const button = page.locator(`${testid('leader-button')}[data-node-id="${node}"]`);
      if (!(await button.count())) throw new Error(`no Make-leader button for node ${node} (leader already?)`);
      const disabled = await button.evaluate((b) => b.matches(':disabled'));
      if (disabled) await button.evaluate((b) => { b.disabled = false; });
      await button.click();
      const result = await outcome(testid('leader-result'));
      // The page refreshes its member table by itself; report the role it came to show.
      const row = `${testid('member-row')}[data-node-id="${node}"]`;
      await page.waitForSelector(`${row}[data-raft-role="Leader"]`, { timeout: WAIT_MS }).catch(() => {});
      const raftRoleAfter = await page.getAttribute(row, 'data-raft-role', { timeout: 1000 }).catch(() => null);
      return { nodeId: node, disabled, result, raftRoleAfter };
    });
  }

  line({ step: 'page-errors', errors: pageErrors });
  await browser.close();
}

main().catch((e) => {
  line({ step: 'driver', error: e.message });
  process.exit(1);
});
