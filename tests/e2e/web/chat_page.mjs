// Headless Chromium test of the web chat page that `bora serve` serves at `/`, against a real server.
// Usage: node chat_page.mjs --base-url http://127.0.0.1:PORT [--api-key KEY] [--chromium PATH]
//                           [--vision-model NAME --image FILE]   (the server also serves a vision model)
// Prints `ok - name` / `FAIL - name: why` per check and `N passed, M failed`; exits 1 on any failure.
import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const opts = { baseUrl: '', apiKey: '', chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium', image: '', visionModel: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--base-url') opts.baseUrl = value().replace(/\/+$/, '');
    else if (a === '--api-key') opts.apiKey = value();
    else if (a === '--chromium') opts.chromium = value();
    else if (a === '--image') opts.image = value();
    else if (a === '--vision-model') opts.visionModel = value();
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument: ${a}`);
  }
  if (!opts.baseUrl) usage('--base-url is required');
  return opts;
}

function usage(error) {
  if (error) console.error(`chat_page.mjs: ${error}`);
  console.error('usage: node chat_page.mjs --base-url http://127.0.0.1:PORT [--api-key KEY] [--chromium PATH] ' +
    '[--vision-model NAME --image FILE]');
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHORT = 24;    // max reply tokens for ordinary turns (keeps the run fast)
const LONG = 1500;   // max reply tokens for the turn that is stopped (fits --ctx 2048)

let passed = 0, failed = 0;
const pageErrors = [];
const chatRequests = [];   // {body, headers} of every POST /v1/chat/completions the page made

function assert(cond, message) { if (!cond) throw new Error(message); }
function eq(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}

// Runs one named check; a failed `required` check stops the run (later checks would only cascade).
const pending = [];
function check(name, fn, { required = false } = {}) { pending.push({ name, fn, required }); }

async function runChecks() {
  for (let i = 0; i < pending.length; i++) {
    const { name, fn, required } = pending[i];
    try {
      await fn();
      passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL - ${name}: ${String(e && e.message || e).split('\n')[0]}`);
      if (required) {
        for (const rest of pending.slice(i + 1)) {
          failed++;
          console.log(`FAIL - ${rest.name}: not run (an earlier required check failed)`);
        }
        return;
      }
    }
  }
}

let browser, page;

// --- helpers over the page ---
const count = (sel) => page.locator(sel).count();
const lastText = (sel) => page.locator(sel).last().textContent();
const assistantText = () => lastText('.message.assistant .content');

async function waitIdle(timeout = 60000) {
  await page.waitForFunction(() => !document.querySelector('#send').disabled &&
    document.querySelector('#stop').disabled, null, { timeout });
}

// Types a message, presses Enter, waits for the reply to finish; returns the request body the page posted.
async function sendAndWait(text, { idle = true } = {}) {
  const before = chatRequests.length;
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  await until(() => chatRequests.length > before, 10000);
  if (idle) await waitIdle();
  assert(chatRequests.length > before, 'the page made no POST /v1/chat/completions');
  return chatRequests[chatRequests.length - 1];
}

async function until(cond, timeout) {
  for (const end = Date.now() + timeout; !cond() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
}

async function noErrorShown() {
  if (await count('.message.error')) throw new Error(`the page shows "${await lastText('.message.error .content')}"`);
}

async function setMaxTokens(n) { await page.fill('#max-tokens', String(n)); }

// --- the checks ---
check('page loads with the chat controls', async () => {
  const response = await page.goto(opts.baseUrl + '/', { waitUntil: 'load' });
  assert(response, 'no response for /');
  eq(response.status(), 200, 'status of GET /');
  assert((response.headers()['content-type'] || '').startsWith('text/html'),
    `content type of / is ${response.headers()['content-type']}`);
  for (const sel of ['#model', '#system', '#temperature', '#max-tokens', '#api-key', '#message', '#send',
    '#stop', '#new-chat', '#transcript']) {
    assert(await page.locator(sel).isVisible(), `${sel} is not visible`);
  }
  assert(await page.locator('#stop').isDisabled(), '#stop is enabled before anything was sent');
}, { required: true });

if (opts.apiKey) {
  check('without the API key the page reports the 401', async () => {
    await page.waitForFunction(() => /401/.test(document.querySelector('#status').textContent));
    eq(await count('#model option'), 0, 'model options without a key');
  });
  check('the API key field unlocks the models and is remembered', async () => {
    await page.fill('#api-key', opts.apiKey);
    await page.press('#api-key', 'Tab');
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    await page.reload({ waitUntil: 'load' });
    eq(await page.inputValue('#api-key'), opts.apiKey, 'API key after a reload');
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  }, { required: true });
}

check('model picker lists the models of GET /v1/models', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0 ||
    document.querySelector('#status').classList.contains('error'));
  const status = await page.textContent('#status');
  assert(await count('#model option') > 0, `no models in the picker; the page says "${status}"`);
  const headers = opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {};
  const r = await page.request.get(opts.baseUrl + '/v1/models', { headers });
  eq(r.status(), 200, 'status of GET /v1/models');
  const ids = (await r.json()).data.map((m) => m.id);
  const options = await page.locator('#model option').evaluateAll((os) => os.map((o) => o.value));
  eq(options, ids, 'model options');
}, { required: true });

check('a message streams back a non-empty assistant reply', async () => {
  await setMaxTokens(SHORT);
  const req = await sendAndWait('Hello there!');
  await noErrorShown();
  const reply = await assistantText();
  assert(reply && reply.length > 0, 'the assistant reply is empty');
  eq(await count('.message.user'), 1, 'user messages');
  eq(await count('.message.assistant'), 1, 'assistant messages');
  eq(await count('.message.error'), 0, 'error entries');
  const b = req.body;
  eq(b.model, await page.inputValue('#model'), 'model');
  eq(b.stream, true, 'stream');
  eq(b.stream_options, { include_usage: true }, 'stream_options');
  eq(b.messages, [{ role: 'user', content: 'Hello there!' }], 'messages');
  eq(b.temperature, 0.7, 'default temperature');
  eq(b.max_tokens, SHORT, 'max_tokens');
  if (opts.apiKey) eq(req.headers.authorization, `Bearer ${opts.apiKey}`, 'Authorization header');
}, { required: true });

check('usage and speed are shown after the reply', async () => {
  const meta = await lastText('.message.assistant .meta');
  assert(/\d+ prompt \+ \d+ completion tokens/.test(meta), `no usage in "${meta}"`);
});

check('a second message resends the conversation', async () => {
  const first = await assistantText();
  const req = await sendAndWait('Tell me more.');
  await noErrorShown();
  eq(req.body.messages, [{ role: 'user', content: 'Hello there!' }, { role: 'assistant', content: first },
    { role: 'user', content: 'Tell me more.' }], 'messages');
  eq(await count('.message.user'), 2, 'user messages');
  eq(await count('.message.assistant'), 2, 'assistant messages');
  assert((await assistantText()).length > 0, 'the second reply is empty');
});

const TRICKY = '<b id="injected">bold</b> & <img src=x onerror="window.__xss=1"> "quotes"\nsecond line';
check('system prompt and temperature go into the request; text is shown as text', async () => {
  await page.fill('#system', 'You are a terse assistant.');
  await page.fill('#temperature', '0.3');
  eq(await page.inputValue('#temperature-value'), '0.3', 'temperature number field');
  const req = await sendAndWait(TRICKY);
  await noErrorShown();
  const b = req.body;
  eq(b.messages[0], { role: 'system', content: 'You are a terse assistant.' }, 'first message');
  eq(b.messages.length, 6, 'message count (system + 2 turns + new user)');
  eq(b.messages[5], { role: 'user', content: TRICKY }, 'last message');
  eq(b.temperature, 0.3, 'temperature');
  eq(await lastText('.message.user .content'), TRICKY, 'user text as displayed');
  eq(await count('#transcript b, #transcript img'), 0, 'elements injected into the transcript');
  eq(await page.evaluate(() => window.__xss), undefined, 'window.__xss');
});

check('New chat clears the transcript and the history', async () => {
  await page.click('#new-chat');
  eq(await count('#transcript .message'), 0, 'transcript entries');
  await page.fill('#system', '');
  await setMaxTokens(SHORT);
  const req = await sendAndWait('Fresh start.');
  await noErrorShown();
  eq(req.body.messages, [{ role: 'user', content: 'Fresh start.' }], 'messages after New chat');
  await page.click('#new-chat');
  eq(await count('#transcript .message'), 0, 'transcript entries');
});

let partial = '';
check('Stop aborts a long reply, keeps the partial text and re-enables the UI', async () => {
  await setMaxTokens(LONG);
  for (let attempt = 1; ; attempt++) {
    await sendAndWait('Write a very long story about the sea.', { idle: false });
    await page.waitForFunction(() => {
      const c = [...document.querySelectorAll('.message.assistant .content')].pop();
      return (c && c.textContent.length > 0) || document.querySelector('#stop').disabled;
    });
    await noErrorShown();
    const finishedFirst = await page.locator('#stop').isDisabled();
    if (!finishedFirst) await page.click('#stop', { timeout: 2000 }).catch(() => {});
    await waitIdle(10000);
    const meta = await lastText('.message.assistant .meta');
    if (meta === 'stopped') break;
    // The reply ended (EOS or max_tokens) before Stop landed: try again in a new chat.
    assert(attempt < 3, `the reply always finished before Stop was clicked (last meta: "${meta}")`);
    await page.click('#new-chat');
  }
  partial = await assistantText();
  assert(partial.length > 0, 'the partial reply was removed');
  await page.waitForTimeout(500);
  eq(await assistantText(), partial, 'partial reply 0.5 s after Stop');
  assert(await page.locator('#send').isEnabled(), '#send is disabled after Stop');
  assert(await page.locator('#stop').isDisabled(), '#stop is enabled after Stop');
  assert(await page.locator('#model').isEnabled(), '#model is disabled after Stop');
  eq(await count('.message.error'), 0, 'error entries after Stop');
});

check('Stop cancels the request on the server (bora_running_sequences drops to 0)', async () => {
  const headers = opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {};
  let last = '';
  for (const end = Date.now() + 5000; Date.now() < end;) {
    const r = await page.request.get(opts.baseUrl + '/metrics', { headers });
    eq(r.status(), 200, 'status of GET /metrics');
    // One sample per model (`bora_running_sequences{model="tiny"} 0`); all must be 0.
    const samples = [...(await r.text()).matchAll(/^bora_running_sequences(?:\{[^}]*\})?\s+(\S+)/gm)];
    assert(samples.length, 'no bora_running_sequences in /metrics');
    last = samples.map((m) => m[1]).join(',');
    if (samples.every((m) => Number(m[1]) === 0)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`bora_running_sequences is still ${last} 5 s after Stop`);
});

check('the conversation goes on after Stop, with the partial reply in history', async () => {
  await setMaxTokens(SHORT);
  const req = await sendAndWait('Shorter, please.');
  await noErrorShown();
  const msgs = req.body.messages;
  eq(msgs.length, 3, 'message count');
  eq(msgs[1], { role: 'assistant', content: partial }, 'partial reply in history');
  assert((await assistantText()).length > 0, 'the reply after Stop is empty');
  eq(await count('.message.error'), 0, 'error entries');
});

check('a server error (unknown model) is shown and the UI recovers', async () => {
  const real = await page.inputValue('#model');
  await page.evaluate(() => document.querySelector('#model').add(new Option('no-such-model', 'no-such-model')));
  await page.selectOption('#model', 'no-such-model');
  const turns = await count('#transcript .message.user');
  await sendAndWait('This should fail.');
  await page.locator('.message.error').last().waitFor();
  const err = await lastText('.message.error .content');
  assert(/HTTP 4\d\d/.test(err) && err.length > 'HTTP 400'.length, `error text "${err}"`);
  eq(await page.inputValue('#message'), 'This should fail.', 'message box after the error');
  eq(await count('#transcript .message.user'), turns, 'user messages (the failed turn is taken back)');
  await page.evaluate(() => document.querySelector('#model option[value="no-such-model"]').remove());
  await page.selectOption('#model', real);
  await page.fill('#message', '');
  const req = await sendAndWait('Back to normal.');
  eq(req.body.messages.length, 5, 'message count (the failed turn is not in history)');
  assert((await assistantText()).length > 0, 'the reply after the error is empty');
});

if (opts.visionModel) {
  check('a vision model offers "Image…"; an attached image is sent as an image_url chunk and shown', async () => {
    const real = await page.inputValue('#model');
    assert(await page.locator('#attach').isHidden(), 'the attach button shows for a text model');
    await page.click('#new-chat');
    await page.selectOption('#model', opts.visionModel);
    await page.locator('#attach').waitFor({ state: 'visible' });
    await page.setInputFiles('#image-file', opts.image);
    await page.locator('#attachments img').waitFor();
    const req = await sendAndWait('What is in this image?');
    await noErrorShown();
    const content = req.body.messages[req.body.messages.length - 1].content;
    assert(Array.isArray(content) && content.length === 2, `user content ${JSON.stringify(content).slice(0, 120)}`);
    eq(content[0], { type: 'text', text: 'What is in this image?' }, 'text chunk');
    eq(content[1].type, 'image_url', 'image chunk type');
    assert(/^data:image\/(jpeg|png);base64,/.test(content[1].image_url.url), 'image chunk is a data: URL');
    eq(await count('.message.user .images img'), 1, 'image shown in the user message');
    eq(await count('#attachments img'), 0, 'attachments cleared after sending');
    assert((await assistantText()).length > 0, 'the reply to the image is empty');
    await page.selectOption('#model', real);
    assert(await page.locator('#attach').isHidden(), 'the attach button stays for a text model');
    await page.click('#new-chat');
  });
}

check('no uncaught errors in the page', async () => {
  eq(pageErrors, [], 'page errors');
});

// --- main ---
const watchdog = setTimeout(() => {
  console.log('FAIL - the test took more than 5 minutes');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 5 * 60 * 1000);

try {
  browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => pageErrors.push(String(e.message || e)));
  page.on('request', (req) => {
    if (req.method() !== 'POST' || !req.url().endsWith('/v1/chat/completions')) return;
    let body = null;
    try { body = JSON.parse(req.postData() || 'null'); } catch (_) {}
    chatRequests.push({ body, headers: req.headers() });
  });
  await runChecks();
} catch (e) {
  failed++;
  console.log(`FAIL - browser: ${String(e && e.message || e).split('\n')[0]}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
