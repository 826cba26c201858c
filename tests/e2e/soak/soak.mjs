// Streaming soak for `bora serve` (reliability-security.md §4.2): concurrent clients send random
// chat / FIM / completions requests, streamed and not, some abandoned mid-stream, and the run
// checks statuses, stream framing, connection resets, RSS growth and that the KV pool drains.
//
//   node soak.mjs --base-url http://127.0.0.1:PORT --pid PID [--seconds 120] [--clients 16]
//                 [--model tiny] [--ctx 512] [--seed 1] [--abort-rate 0.2] [--verbose]
//
// Only Node's built-in modules. Prints one `soak:` summary line; exits 1 on a failed check.
import http from 'node:http';
import fs from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Options.

function parseArgs(argv) {
  const options = {
    baseUrl: '', pid: 0, seconds: 120, clients: 16, model: 'tiny', ctx: 512, seed: 1,
    abortRate: 0.2, verbose: false,
  };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--base-url') options.baseUrl = next();
    else if (arg === '--pid') options.pid = Number(next());
    else if (arg === '--seconds') options.seconds = Number(next());
    else if (arg === '--clients') options.clients = Number(next());
    else if (arg === '--model') options.model = next();
    else if (arg === '--ctx') options.ctx = Number(next());
    else if (arg === '--seed') options.seed = Number(next());
    else if (arg === '--abort-rate') options.abortRate = Number(next());
    else if (arg === '--verbose') options.verbose = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!options.baseUrl) throw new Error('--base-url is required');
  if (!(options.pid > 0)) throw new Error('--pid is required');
  if (!(options.seconds > 0)) throw new Error('--seconds must be positive');
  return options;
}

const options = parseArgs(process.argv.slice(2));
const base = new URL(options.baseUrl);

// A seeded PRNG (mulberry32), so a failing run can be replayed with the same --seed.
function makeRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping.

const stats = {
  requests: 0,
  byStatus: new Map(),  // status -> count
  byKind: new Map(),    // kind -> count
  streams: 0,
  aborted: 0,
  completionTokens: 0,
  resets: 0,            // connection errors on requests that were not abandoned on purpose
  failures: [],         // human-readable descriptions of failed checks
};

function count(map, key) {
  map.set(key, (map.get(key) || 0) + 1);
}

function fail(message) {
  if (stats.failures.length < 50) stats.failures.push(message);
  if (options.verbose) console.error(`FAIL ${message}`);
}

function rssKib() {
  try {
    const text = fs.readFileSync(`/proc/${options.pid}/status`, 'utf8');
    const match = text.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) : -1;
  } catch {
    return -1;
  }
}

function processAlive() {
  try {
    process.kill(options.pid, 0);
    const state = fs.readFileSync(`/proc/${options.pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Requests.

const WORDS = ('the quick brown fox jumps over lazy dog while seven small birds sing about rain ' +
  'river mountain code function return value list table window garden market coffee winter ' +
  'summer paper music light stone green blue red yellow number letter system program answer')
  .split(' ');

function words(random, n) {
  const out = [];
  for (let i = 0; i < n; ++i) out.push(WORDS[Math.floor(random() * WORDS.length)]);
  return out.join(' ');
}

function randomInt(random, lo, hi) {  // inclusive
  return lo + Math.floor(random() * (hi - lo + 1));
}

// A random valid request. Prompt words and max_tokens stay inside the context (a word is at most
// 3 tokens with these words), so every request should be answered 200 (or 429 when the queue is
// full). Lengths are capped so that a run's last requests finish soon after its deadline.
function randomRequest(random) {
  const budget = options.ctx - 32;
  const promptWords = randomInt(random, 1, Math.min(100, Math.floor(budget / 4)));
  const maxTokens = randomInt(random, 1, Math.max(1, Math.min(160, budget - 3 * promptWords)));
  const stream = random() < 0.5;
  const seed = randomInt(random, 0, 1 << 30);
  const roll = random();
  let path;
  let body;
  let kind;
  let n = 1;
  if (roll < 0.5) {
    kind = 'chat';
    path = '/v1/chat/completions';
    const messages = [{ role: 'user', content: words(random, promptWords) }];
    if (random() < 0.2) messages.unshift({ role: 'system', content: 'Be brief.' });
    body = { model: options.model, messages, max_tokens: maxTokens, stream, random_seed: seed };
    if (!stream && random() < 0.2) n = body.n = 2;
    if (stream && random() < 0.3) body.stream_options = { include_usage: true };
  } else if (roll < 0.75) {
    kind = 'fim';
    path = '/v1/fim/completions';
    const split = randomInt(random, 1, promptWords);
    body = {
      model: options.model, prompt: `def ${words(random, split)}`,
      suffix: words(random, promptWords - split + 1), max_tokens: maxTokens, stream, seed,
    };
  } else {
    kind = 'completions';
    path = '/v1/completions';
    body = { model: options.model, prompt: words(random, promptWords), max_tokens: maxTokens, stream, seed };
    if (random() < 0.5) body.temperature = 0;
  }
  return { kind, path, body, stream, maxTokens, n };
}

// Parses SSE text into events; returns the unparsed tail.
function splitEvents(buffer, onEvent) {
  let at = buffer.indexOf('\n\n');
  while (at >= 0) {
    onEvent(buffer.slice(0, at));
    buffer = buffer.slice(at + 2);
    at = buffer.indexOf('\n\n');
  }
  return buffer;
}

// Checks one finished stream's events (framing of mistral-api.md §5).
function checkStream(label, request, events) {
  let done = 0;
  let afterDone = 0;
  const finishes = new Map();
  let usage = null;
  for (const event of events) {
    if (event.startsWith(':')) continue;  // keep-alive comment
    if (!event.startsWith('data: ')) {
      fail(`${label}: an event that is not "data: ": ${JSON.stringify(event.slice(0, 80))}`);
      continue;
    }
    const data = event.slice(6);
    if (data === '[DONE]') {
      ++done;
      continue;
    }
    if (done > 0) ++afterDone;
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      fail(`${label}: a chunk that is not JSON: ${data.slice(0, 80)}`);
      continue;
    }
    if (chunk.error) {
      fail(`${label}: error event ${JSON.stringify(chunk.error).slice(0, 200)}`);
      continue;
    }
    if ('usage' in chunk) {
      if (chunk.usage === null) fail(`${label}: "usage": null in a chunk`);
      else usage = chunk.usage;
    }
    for (const choice of chunk.choices || []) {
      if (!('finish_reason' in choice)) fail(`${label}: a choice without the finish_reason key`);
      if (choice.finish_reason !== null) {
        if (finishes.has(choice.index)) fail(`${label}: two finish reasons for choice ${choice.index}`);
        finishes.set(choice.index, choice.finish_reason);
      }
    }
  }
  if (done !== 1) fail(`${label}: ${done} [DONE] events`);
  if (afterDone) fail(`${label}: events after [DONE]`);
  if (finishes.size !== request.n) fail(`${label}: ${finishes.size} finished choices of ${request.n}`);
  for (const reason of finishes.values()) {
    if (reason !== 'stop' && reason !== 'length') fail(`${label}: finish_reason ${reason}`);
  }
  if (!usage) {
    fail(`${label}: no usage`);
  } else {
    if (!(usage.completion_tokens >= 1 && usage.completion_tokens <= request.maxTokens * request.n)) {
      fail(`${label}: completion_tokens ${usage.completion_tokens} for max_tokens ${request.maxTokens}`);
    }
    stats.completionTokens += usage.completion_tokens;
  }
}

function checkJson(label, request, text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`${label}: the 200 body is not JSON: ${text.slice(0, 120)}`);
    return;
  }
  if (!Array.isArray(body.choices) || body.choices.length !== request.n) {
    fail(`${label}: ${body.choices?.length} choices, expected ${request.n}`);
    return;
  }
  for (const choice of body.choices) {
    if (choice.finish_reason !== 'stop' && choice.finish_reason !== 'length')
      fail(`${label}: finish_reason ${choice.finish_reason}`);
  }
  const tokens = body.usage?.completion_tokens;
  if (!(tokens >= request.n && tokens <= request.maxTokens * request.n))
    fail(`${label}: completion_tokens ${tokens} for max_tokens ${request.maxTokens} n ${request.n}`);
  else stats.completionTokens += tokens;
}

// Sends one request on `agent`. When `abortAfter` is set (streams only), the socket is destroyed
// after that many events: a client going away mid-stream.
function send(agent, request, abortAfter, label) {
  return new Promise((resolve) => {
    const payload = JSON.stringify(request.body);
    let settled = false;
    let aborting = false;
    const finish = (status) => {
      if (settled) return;
      settled = true;
      resolve(status);
    };
    const req = http.request({
      host: base.hostname, port: base.port, path: request.path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      timeout: 300_000,
    }, (res) => {
      const status = res.statusCode;
      const type = res.headers['content-type'] || '';
      res.setEncoding('utf8');
      let text = '';
      let buffer = '';
      const events = [];
      res.on('data', (data) => {
        if (status !== 200 || !request.stream) {
          text += data;
          return;
        }
        buffer = splitEvents(buffer + data, (event) => events.push(event));
        if (abortAfter !== null && events.length >= abortAfter && !aborting) {
          aborting = true;
          ++stats.aborted;
          req.destroy();  // closes the socket under the response
          finish(status);
        }
      });
      res.on('end', () => {
        if (aborting) return;
        if (status === 200) {
          if (request.stream) {
            if (!type.startsWith('text/event-stream')) fail(`${label}: stream Content-Type ${type}`);
            if (buffer.length) fail(`${label}: unterminated event at the end: ${buffer.slice(0, 80)}`);
            checkStream(label, request, events);
          } else {
            if (!type.startsWith('application/json')) fail(`${label}: Content-Type ${type}`);
            checkJson(label, request, text);
          }
        } else if (status !== 429) {
          fail(`${label}: status ${status}: ${text.slice(0, 200)}`);
        }
        finish(status);
      });
      res.on('error', (error) => {
        if (aborting) return;
        ++stats.resets;
        fail(`${label}: response error ${error.code || error.message}`);
        finish(-1);
      });
    });
    req.on('timeout', () => {
      fail(`${label}: no answer within 300 s`);
      req.destroy(new Error('timeout'));
    });
    req.on('error', (error) => {
      if (aborting) return;
      ++stats.resets;
      fail(`${label}: connection error ${error.code || error.message}`);
      finish(-1);
    });
    req.end(payload);
  });
}

async function client(id, deadline) {
  const random = makeRandom(options.seed * 1000 + id);
  // One keep-alive connection per client, as SDK clients hold one.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sequence = 0;
  while (Date.now() < deadline) {
    const request = randomRequest(random);
    const abortAfter = request.stream && random() < options.abortRate ? randomInt(random, 1, 8) : null;
    const label = `client ${id} request ${sequence++} (${request.kind}${request.stream ? ', stream' : ''}` +
      `${abortAfter !== null ? `, abort after ${abortAfter} events` : ''})`;
    ++stats.requests;
    count(stats.byKind, request.kind);
    if (request.stream) ++stats.streams;
    const status = await send(agent, request, abortAfter, label);
    count(stats.byStatus, status);
    if (status >= 500) fail(`${label}: status ${status}`);
    if (status === 429) await new Promise((r) => setTimeout(r, 200));
  }
  agent.destroy();
}

// ---------------------------------------------------------------------------------------------
// Server-side gauges.

function get(path) {
  return new Promise((resolve) => {
    const req = http.get({ host: base.hostname, port: base.port, path, agent: false, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, text }));
        res.on('error', () => resolve({ status: -1, text: '' }));
      });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: -1, text: '' }));
  });
}

function gauge(metrics, name) {
  const match = metrics.match(new RegExp(`^${name}\\{model="${options.model}"\\} ([0-9.eE+-]+)$`, 'm'));
  return match ? Number(match[1]) : NaN;
}

async function idleGauges() {
  let last = {};
  for (let i = 0; i < 100; ++i) {  // up to 10 s for cancelled sequences to be reaped
    const metrics = await get('/metrics');
    if (metrics.status === 200) {
      last = {
        kvUsed: gauge(metrics.text, 'bora_kv_blocks_used'),
        kvTotal: gauge(metrics.text, 'bora_kv_blocks_total'),
        running: gauge(metrics.text, 'bora_running_sequences'),
        queued: gauge(metrics.text, 'bora_queue_depth'),
        preemptions: gauge(metrics.text, 'bora_preemptions'),
      };
      if (last.kvUsed === 0 && last.running === 0 && last.queued === 0) return last;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

// ---------------------------------------------------------------------------------------------

const MiB = (kib) => (kib / 1024).toFixed(1);

async function main() {
  const health = await get('/health');
  if (health.status !== 200) {
    console.log(`soak: FAILED - /health answered ${health.status} before the run`);
    process.exit(1);
  }
  const start = Date.now();
  const deadline = start + options.seconds * 1000;
  const warmupEnd = start + options.seconds * 200;  // the first 20 %
  let rssWarm = -1;
  let rssPeak = 0;
  const sampler = setInterval(() => {
    const rss = rssKib();
    rssPeak = Math.max(rssPeak, rss);
    if (rssWarm < 0 && Date.now() >= warmupEnd) rssWarm = rss;
  }, 250);
  const rssStart = rssKib();
  await Promise.all(Array.from({ length: options.clients }, (_, id) => client(id, deadline)));
  clearInterval(sampler);
  const elapsed = (Date.now() - start) / 1000;
  const idle = await idleGauges();
  const rssEnd = rssKib();
  const alive = processAlive();

  if (!alive) fail('the server process is gone');
  if (rssWarm <= 0 || rssEnd <= 0) fail(`cannot read the server's RSS (pid ${options.pid})`);
  // Growth after warm-up must stay under 5 % (or 8 MiB: a 60 MiB tiny-model server still settles
  // its per-thread malloc arenas by a few MiB after the first 20 % of a 2-minute run).
  const growth = rssWarm > 0 ? (rssEnd - rssWarm) / rssWarm : 0;
  const allowedKib = Math.max(0.05 * rssWarm, 8 * 1024);
  if (rssEnd - rssWarm >= allowedKib) {
    fail(`RSS grew ${(growth * 100).toFixed(1)} % after warm-up (${MiB(rssWarm)} -> ${MiB(rssEnd)} MiB, ` +
      `allowed ${MiB(allowedKib)} MiB)`);
  }
  if (idle.kvUsed !== 0) fail(`KV blocks in use at idle: ${idle.kvUsed}`);
  if (idle.running !== 0) fail(`running sequences at idle: ${idle.running}`);
  if (idle.queued !== 0) fail(`queued requests at idle: ${idle.queued}`);
  const fivexx = [...stats.byStatus].filter(([s]) => s >= 500).reduce((a, [, c]) => a + c, 0);
  if (stats.resets) fail(`${stats.resets} connection resets on requests that were not abandoned`);
  if (stats.requests === 0) fail('no requests were sent');

  const statuses = [...stats.byStatus].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}:${c}`).join(',');
  const kinds = [...stats.byKind].map(([k, c]) => `${k}:${c}`).join(',');
  const ok = stats.failures.length === 0;
  for (const failure of stats.failures) console.log(`  - ${failure}`);
  console.log(`soak: ${ok ? 'ok' : 'FAILED'} - ${elapsed.toFixed(0)} s, ${options.clients} clients, ` +
    `requests=${stats.requests} (${kinds}), statuses=${statuses}, 5xx=${fivexx}, ` +
    `streams=${stats.streams}, aborted=${stats.aborted}, resets=${stats.resets}, ` +
    `completion_tokens=${stats.completionTokens}, rss_start=${MiB(rssStart)} MiB, ` +
    `rss_warm=${MiB(rssWarm)} MiB, rss_end=${MiB(rssEnd)} MiB (${(growth * 100).toFixed(1)} %), ` +
    `rss_peak=${MiB(rssPeak)} MiB, kv_blocks_used_end=${idle.kvUsed}/${idle.kvTotal}, ` +
    `running_end=${idle.running}, queued_end=${idle.queued}, preemptions=${idle.preemptions}`);
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.log(`soak: FAILED - ${error.stack || error}`);
  process.exit(1);
});
