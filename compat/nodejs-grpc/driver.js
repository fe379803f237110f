// Drives Apache's RocketMQ 5 gRPC client for Node.js (rocketmq-client-nodejs, unmodified)
// against a broker that serves gRPC itself. One JSON object per line on stdout; exit 0 on
// success, 1 on a failure (a `failed` line says why), 2 on a usage error.
//
//   produce --endpoints E -t TOPIC -c COUNT [--tag T] [--delay-ms MS [--recall-last]]
//           [--message-groups N] [--lite-topics N]
//       Producer.send, one at a time: body `TOPIC:SEQ`, user property seq, key K-SEQ; with
//       --delay-ms each is a delay message due MS from its send, and --recall-last recalls
//       the last one with the handle its send answered (`recalled`); with --message-groups
//       each is FIFO, in message group G<SEQ mod N>; with --lite-topics each is a lite
//       message, in lite topic L<SEQ mod N> (`sent` lines carry it as `lite`, null without).
//   simple  --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--nack-first]
//           [--linger-ms MS] [--batch B]
//       SimpleConsumer.receive (up to B messages, 16 by default; invisible 20 s) and ack;
//       with --nack-first each message's
//       first delivery gets changeInvisibleDuration(1 s) instead, and must come back; with
//       --linger-ms it keeps receiving that long after the last expected message.
//   push    --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--fail-first]
//       PushConsumer whose listener answers each message's first delivery FAILURE
//       (`refused` lines) with --fail-first, SUCCESS otherwise (`received`), until N
//       distinct messages were taken.
//   lite    --endpoints E -t PARENT -g GROUP --lite-topics N --expect M --timeout-secs S
//           [--fail-first]
//       LitePushConsumer (built by LitePushConsumerBuilder) bound to PARENT, with push's
//       listener (its lines carry `lite` too: the message's lite topic); once started it
//       calls subscribeLite for L0..L<N-1> (`subscribed` lines; one that throws fails the
//       run: main reports it), until M distinct messages were taken.
//   transaction --endpoints E -t TOPIC [--timeout-secs S] [--linger-ms MS]
//       A Producer with a TransactionChecker, one transaction per name in TRANSACTIONS (body
//       `TOPIC:NAME`, tag TagTx, key tx-NAME): committed, rolled back, and two left open that
//       the broker checks back (answered COMMIT and ROLLBACK). Lines: `sent` (name, msg_id,
//       status OK), `checked` (name, msg_id, topic, times), then `done` once both open ones
//       were checked (after lingering MS), or `timeout`.
'use strict';

const {
  ConsumeResult, LitePushConsumerBuilder, Producer, PushConsumer, SimpleConsumer,
} = require('rocketmq-client-nodejs');
// The resolutions' values (the client takes the protocol's enum numbers).
const { TransactionResolution } = require(
  'rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

const RELEASE = '1.0.8';

function line(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function parse(argv) {
  const [command, ...rest] = argv;
  const flags = {};
  for (let i = 0; i < rest.length; i++) {
    const key = rest[i];
    if (key === '--nack-first' || key === '--recall-last' || key === '--fail-first') {
      flags[key] = true;
    } else if (i + 1 < rest.length) {
      flags[key] = rest[++i];
    } else {
      throw new Error(`${key} needs a value`);
    }
  }
  for (const needed of ['--endpoints', '-t']) {
    if (!flags[needed]) throw new Error(`missing ${needed}`);
  }
  return { command, flags };
}

// ACL: the client signs its calls when credentials are in the environment.
function credentials() {
  const accessKey = process.env.ROCKETMQ_ACCESS_KEY;
  const accessSecret = process.env.ROCKETMQ_SECRET_KEY;
  return accessKey && accessSecret ? { accessKey, accessSecret } : undefined;
}

async function produce(flags) {
  const topic = flags['-t'];
  const count = Number(flags['-c'] || 0);
  const delayMs = Number(flags['--delay-ms'] || 0);
  const producer = new Producer({
    endpoints: flags['--endpoints'],
    requestTimeout: 10000,
    sessionCredentials: credentials(),
  });
  await producer.startup();
  line({ op: 'started', command: 'produce', client_version: RELEASE });
  try {
    for (let seq = 0; seq < count; seq++) {
      const message = {
        topic,
        keys: [`K-${seq}`],
        properties: new Map([['seq', String(seq)]]),
        body: Buffer.from(`${topic}:${seq}`),
      };
      if (flags['--tag']) message.tag = flags['--tag'];
      const groups = Number(flags['--message-groups'] || 0);
      if (groups > 0) message.messageGroup = `G${seq % groups}`;
      const lites = Number(flags['--lite-topics'] || 0);
      if (lites > 0) message.liteTopic = `L${seq % lites}`;
      const deliver = delayMs > 0 ? Date.now() + delayMs : 0;
      if (deliver) message.deliveryTimestamp = new Date(deliver);
      const receipt = await producer.send(message);
      line({
        op: 'sent', seq, msg_id: receipt.messageId, deliver_ms: deliver,
        group: message.messageGroup || null, lite: message.liteTopic || null,
      });
      if (flags['--recall-last'] && seq === count - 1) {
        const recalled = await producer.recallMessage(topic, receipt.recallHandle);
        line({ op: 'recalled', seq, msg_id: recalled.messageId });
      }
    }
  } finally {
    await producer.shutdown();
  }
  line({ op: 'done', sent: count });
  return 0;
}

function describe(message, delivery) {
  return {
    msg_id: message.messageId,
    body: message.body.toString(),
    seq: message.properties.get('seq'),
    tag: message.tag || null,
    group: message.messageGroup || null,
    delivery_attempt: message.deliveryAttempt,
    delivery,
    at_ms: Date.now(),
  };
}

async function simple(flags) {
  const topic = flags['-t'];
  const expect = Number(flags['--expect'] || 0);
  const lingerMs = Number(flags['--linger-ms'] || 0);
  let deadline = Date.now() + 1000 * Number(flags['--timeout-secs'] || 60);
  let lingering = false;
  const consumer = new SimpleConsumer({
    consumerGroup: flags['-g'],
    endpoints: flags['--endpoints'],
    subscriptions: new Map().set(topic, '*'),
    awaitDuration: 5000,
    requestTimeout: 10000,
  });
  await consumer.startup();
  line({ op: 'started', command: 'simple', client_version: RELEASE });
  const deliveries = new Map();
  const acked = new Set();
  try {
    while (Date.now() < deadline) {
      if (acked.size >= expect && !lingering) {
        if (lingerMs <= 0) break;
        lingering = true;
        deadline = Date.now() + lingerMs;
      }
      const messages = await consumer.receive(Number(flags['--batch'] || 16), 20000);
      for (const message of messages) {
        const id = message.messageId;
        deliveries.set(id, (deliveries.get(id) || 0) + 1);
        const fields = describe(message, deliveries.get(id));
        if (flags['--nack-first'] && deliveries.get(id) === 1) {
          await consumer.changeInvisibleDuration(message, 1000);
          line({ op: 'nacked', ...fields });
        } else {
          await consumer.ack(message);
          acked.add(id);
          line({ op: 'received', ...fields });
        }
      }
    }
  } finally {
    await consumer.shutdown();
  }
  const done = acked.size >= expect;
  line({ op: done ? 'done' : 'timeout', distinct: acked.size });
  return done ? 0 : 1;
}

// Fails each message's first delivery with --fail-first and takes every other one, adding
// the ids it took to accepted. With lite, its lines carry the message's lite topic too.
function listener(flags, accepted, lite) {
  const deliveries = new Map();
  return {
    consume(message) {
      const id = message.messageId;
      deliveries.set(id, (deliveries.get(id) || 0) + 1);
      const refuse = Boolean(flags['--fail-first']) && deliveries.get(id) === 1;
      const fields = describe(message, deliveries.get(id));
      if (lite) fields.lite = message.liteTopic || null;
      line({ op: refuse ? 'refused' : 'received', ...fields });
      if (refuse) return ConsumeResult.FAILURE;
      accepted.add(id);
      return ConsumeResult.SUCCESS;
    },
  };
}

async function push(flags) {
  const accepted = new Set();
  const consumer = new PushConsumer({
    consumerGroup: flags['-g'],
    endpoints: flags['--endpoints'],
    subscriptions: new Map().set(flags['-t'], '*'),
    requestTimeout: 10000,
    sessionCredentials: credentials(),
    messageListener: listener(flags, accepted, false),
  });
  await consumer.startup();
  line({ op: 'started', command: 'push', client_version: RELEASE });
  return takeUntilDone(consumer, accepted, flags, async () => {});
}

async function lite(flags) {
  const accepted = new Set();
  // The builder starts the consumer; it is the client's public way to make one (it also
  // fills in the namespace, which LitePushConsumerImpl would otherwise leave undefined).
  const consumer = await new LitePushConsumerBuilder()
    .setClientConfiguration({
      endpoints: flags['--endpoints'],
      requestTimeout: 10000,
      sessionCredentials: credentials(),
    })
    .setConsumerGroup(flags['-g'])
    .bindTopic(flags['-t'])
    .setMessageListener(listener(flags, accepted, true))
    .build();
  line({ op: 'started', command: 'lite', client_version: RELEASE });
  return takeUntilDone(consumer, accepted, flags, async () => {
    for (let n = 0; n < Number(flags['--lite-topics'] || 0); n++) {
      await consumer.subscribeLite(`L${n}`);
      line({ op: 'subscribed', lite: `L${n}` });
    }
  });
}

// Runs first (subscriptions), then lets the listener take messages until it took --expect
// of them or --timeout-secs passed; shuts the consumer down; the exit code.
async function takeUntilDone(consumer, accepted, flags, first) {
  const expect = Number(flags['--expect'] || 0);
  const deadline = Date.now() + 1000 * Number(flags['--timeout-secs'] || 60);
  try {
    await first();
    while (accepted.size < expect && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Let the last acknowledgements reach the broker.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  } finally {
    await consumer.shutdown();
  }
  const done = accepted.size >= expect;
  line({ op: done ? 'done' : 'timeout', distinct: accepted.size });
  return done ? 0 : 1;
}

const TRANSACTIONS = ['commit', 'rollback', 'check-commit', 'check-rollback'];

async function transaction(flags) {
  const topic = flags['-t'];
  const lingerMs = Number(flags['--linger-ms'] || 1000);
  const deadline = Date.now() + 1000 * Number(flags['--timeout-secs'] || 60);
  const checks = new Map();
  const producer = new Producer({
    endpoints: flags['--endpoints'],
    topic,
    requestTimeout: 10000,
    sessionCredentials: credentials(),
    checker: {
      async check(view) {
        const text = view.body.toString();
        const name = text.slice(text.indexOf(':') + 1);
        checks.set(name, (checks.get(name) || 0) + 1);
        line({ op: 'checked', name, msg_id: view.messageId, topic: view.topic,
          times: checks.get(name) });
        if (name === 'check-commit') return TransactionResolution.COMMIT;
        if (name === 'check-rollback') return TransactionResolution.ROLLBACK;
        return TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED;
      },
    },
  });
  await producer.startup();
  line({ op: 'started', command: 'transaction', client_version: RELEASE });
  const answeredBoth = () => checks.has('check-commit') && checks.has('check-rollback');
  try {
    for (const name of TRANSACTIONS) {
      const tx = producer.beginTransaction();
      const receipt = await producer.send({
        topic,
        tag: 'TagTx',
        keys: [`tx-${name}`],
        body: Buffer.from(`${topic}:${name}`),
      }, tx);
      line({ op: 'sent', name, msg_id: receipt.messageId, status: 'OK' });
      if (name === 'commit') await tx.commit();
      if (name === 'rollback') await tx.rollback();
    }
    while (!answeredBoth() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The answers travel as EndTransaction calls; a second check would show here.
    if (answeredBoth()) await new Promise((resolve) => setTimeout(resolve, lingerMs));
  } finally {
    await producer.shutdown();
  }
  const done = answeredBoth();
  line({ op: done ? 'done' : 'timeout', checked: checks.size });
  return done ? 0 : 1;
}

async function main() {
  let parsed;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`nodejs-driver: ${e.message}\n`);
    return 2;
  }
  try {
    if (parsed.command === 'produce') return await produce(parsed.flags);
    if (parsed.command === 'simple') return await simple(parsed.flags);
    if (parsed.command === 'push') return await push(parsed.flags);
    if (parsed.command === 'lite') return await lite(parsed.flags);
    if (parsed.command === 'transaction') return await transaction(parsed.flags);
    process.stderr.write(`nodejs-driver: unknown command ${parsed.command}\n`);
    return 2;
  } catch (e) {
    line({ op: 'failed', error: String(e && e.stack ? e.stack : e) });
    return 1;
  }
}

main().then((code) => process.exit(code));
