#!/usr/bin/env node
// End-to-end test of the fine-tuning API of `bora serve` (files + jobs), driven by the official
// Mistral Node SDK 1.15.1 (`mistralai-v1`: the last release with `fineTuning.jobs`; its zod schemas
// also check our response shapes), the OpenAI SDK (one upload, list and download in the OpenAI
// dialect) and raw fetch (error cases, exact wire fields). It starts `bora serve` itself, because
// the test kills it with SIGKILL while a job is RUNNING and restarts it on the same --state-dir:
//
//   server 1: upload files (Mistral SDK, OpenAI SDK, raw multipart), reject bad JSONL (422 naming
//             the line), list/retrieve/download/delete, foreign ids (404), auth; bad job requests
//             (404/422); job A: auto_start false -> VALIDATED -> start -> RUNNING -> cancel ->
//             CANCELLED; job B: auto_start -> QUEUED -> RUNNING with metrics and a checkpoint ->
//             kill -9
//   server 2: files and jobs survive, job B resumes from its last checkpoint (status-updated event
//             with resumed_from_step > 0), finishes SUCCESS with every step, metrics continue
//             after the resume step; ft:MODEL:e2e:XXXXXXXX is listed and answers chat (and has
//             learned the training answers); SIGTERM -> exit 0
//   server 3: the fine-tuned model, job and files are still there
//
//   node finetune_jobs.mjs --bora BIN --model-dir DIR --state-dir DIR --train FILE --eval FILE
//        --pretrain FILE --work DIR [--model-name tiny] [--api-key test-key] [--threads 2]
//        [--serve-args "..."] [--start-timeout 60] [--timeout 60] [--train-timeout 240] [--verbose]
//
// The state dir must be new (or empty): the test counts files and jobs. Server logs go to
// WORK/serve.N.log and every server pid is appended to WORK/servers.pid (run_finetune.sh kills
// whatever is left). Prints `ok - NAME` or `FAIL - NAME: REASON` per check and finally exactly one
// line `N passed, M failed`; exits 1 when M > 0 (2 on bad usage). The checks depend on each
// other: when one does not deliver what a later one needs, the later one fails with "not run" so
// that the total stays the same.

import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Mistral, HTTPClient } from 'mistralai-v1';
import * as V1Errors from 'mistralai-v1/models/errors/index.js';
import { Mistral as Mistral2 } from '@mistralai/mistralai';
import OpenAI from 'openai';
import { CheckError, assert, show, eq, isInt, isNum, isObj, oneLine, rootCause, expectError } from './check_util.mjs';

// ---------------------------------------------------------------------------------------------
// Command line

const USAGE = 'usage: node finetune_jobs.mjs --bora BIN --model-dir DIR --state-dir DIR --train FILE --eval FILE ' +
  '--pretrain FILE --work DIR [--model-name tiny] [--api-key KEY] [--threads 2] [--serve-args "..."] ' +
  '[--start-timeout 60] [--timeout 60] [--train-timeout 240] [--verbose]';

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      bora: { type: 'string' },
      'model-dir': { type: 'string' },
      'state-dir': { type: 'string' },
      train: { type: 'string' },
      eval: { type: 'string' },
      pretrain: { type: 'string' },
      work: { type: 'string' },
      'model-name': { type: 'string', default: 'tiny' },
      'api-key': { type: 'string', default: 'test-key' },
      threads: { type: 'string', default: '2' },
      'serve-args': { type: 'string', default: '' },
      'start-timeout': { type: 'string', default: '60' },
      timeout: { type: 'string', default: '60' },
      'train-timeout': { type: 'string', default: '240' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (e) {
  console.error(`${e.message}\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
for (const k of ['bora', 'model-dir', 'state-dir', 'train', 'eval', 'pretrain', 'work']) {
  if (!opts[k]) {
    console.error(`missing --${k}\n${USAGE}`);
    process.exit(2);
  }
}
const num = (k) => {
  const v = Number(opts[k]);
  if (!(v > 0)) {
    console.error(`--${k} must be a positive number\n${USAGE}`);
    process.exit(2);
  }
  return v;
};
const BORA = opts.bora;
const MODEL_DIR = opts['model-dir'];
const STATE_DIR = opts['state-dir'];
const WORK = opts.work;
const MODEL = opts['model-name'];
const KEY = opts['api-key'];
const THREADS = String(num('threads'));
const SERVE_ARGS = opts['serve-args'].split(/\s+/).filter(Boolean);
const START_TIMEOUT_S = num('start-timeout');
const TIMEOUT_S = num('timeout');
const TRAIN_TIMEOUT_S = num('train-timeout');
const VERBOSE = opts.verbose;

const TRAIN_BYTES = fs.readFileSync(opts.train);
const EVAL_BYTES = fs.readFileSync(opts.eval);
const PRETRAIN_BYTES = fs.readFileSync(opts.pretrain);
const TRAIN_NAME = path.basename(opts.train);
const EVAL_NAME = path.basename(opts.eval);
const PRETRAIN_NAME = path.basename(opts.pretrain);

// The job of the durability part (contract: checkpoints every ceil(training_steps / 10) steps).
const STEPS = 200;
const LR = 0.001;
const SEQ_LEN = 256;
const CKPT_EVERY = Math.ceil(STEPS / 10);
const SUFFIX = 'e2e';
const HYPER = { trainingSteps: STEPS, learningRate: LR, seqLen: SEQ_LEN };
const HYPER_WIRE = { training_steps: STEPS, learning_rate: LR, seq_len: SEQ_LEN };

const JOB_STATUSES = ['QUEUED', 'STARTED', 'VALIDATING', 'VALIDATED', 'RUNNING', 'FAILED_VALIDATION', 'FAILED',
  'SUCCESS', 'CANCELLED', 'CANCELLATION_REQUESTED'];
const TERMINAL = ['SUCCESS', 'FAILED', 'FAILED_VALIDATION', 'CANCELLED'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

process.on('unhandledRejection', (e) => {
  if (VERBOSE) console.log(`# late rejection (ignored): ${oneLine(errText(e))}`);
});

// ---------------------------------------------------------------------------------------------
// Assertions and small helpers (same conventions as conformance.mjs)

function sameJson(actual, expected, what) {
  assert(JSON.stringify(actual) === JSON.stringify(expected), `${what}: expected ${show(expected)}, got ${show(actual)}`);
}
function errText(e) {
  if (e instanceof V1Errors.ResponseValidationError) {
    return `ResponseValidationError (the SDK rejected the response shape, status ${e.statusCode}): ` +
      `${typeof e.pretty === 'function' ? e.pretty() : e.message} | body: ${show(e.body, 400)}`;
  }
  if (e instanceof V1Errors.MistralError) {
    return `${e.name} (status ${e.statusCode}, content-type ${e.contentType || '-'}): ${oneLine(e.message).slice(0, 300)}`;
  }
  if (e instanceof OpenAI.APIError) {
    return `${e.constructor.name} (status ${e.status ?? '-'}): ${e.message}${rootCause(e)}`;
  }
  if (e && typeof e === 'object') {
    return `${e.constructor?.name && !(e instanceof CheckError) ? `${e.constructor.name}: ` : ''}${e.message ?? String(e)}${rootCause(e)}`;
  }
  return String(e);
}
// An SDK v1 call must fail with an HTTP error of one of `statuses`.
async function expectSdkStatus(fn, statuses, what) {
  const e = await expectError(fn, what);
  assert(e instanceof V1Errors.MistralError && !(e instanceof V1Errors.ResponseValidationError),
    `${what}: expected an HTTP error ${statuses.join('/')}, got ${errText(e)}`);
  assert(statuses.includes(e.statusCode), `${what}: expected status ${statuses.join(' or ')}, got ${errText(e)}`);
  return e;
}
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new CheckError('aborted'));
    }, { once: true });
  });
}
function plausibleTime(t, what) {
  assert(isInt(t), `${what} must be an integer (Unix seconds): ${show(t)}`);
  const now = Date.now() / 1000;
  assert(Math.abs(t - now) < 86400, `${what} is not a Unix time in seconds near now (${Math.round(now)}): ${t}`);
}
function nonEmptyLines(bytes) {
  return bytes.toString('utf8').split('\n').filter((l) => l.trim().length > 0);
}
function sameBytes(a, b, what) {
  const x = Buffer.from(a);
  assert(x.length === b.length, `${what}: ${x.length} bytes, expected ${b.length}`);
  assert(x.equals(b), `${what}: same length but different bytes (first difference at ${[...x].findIndex((c, i) => c !== b[i])})`);
}

// ---------------------------------------------------------------------------------------------
// The server (started, killed and restarted by this script)

const PID_FILE = path.join(WORK, 'servers.pid');
let serverCount = 0;
let server = null;

class Server {
  constructor() {
    this.n = ++serverCount;
    this.log = path.join(WORK, `serve.${this.n}.log`);
    this.exit = null; // { code, signal } once it exited
  }

  args() {
    return ['serve', '--model', `${MODEL}=${MODEL_DIR}`, '--state-dir', STATE_DIR, '--host', '127.0.0.1', '--port', '0',
      '--api-key', KEY, '-t', THREADS, ...SERVE_ARGS];
  }

  // Resolves to the port once the server printed `listening on http://127.0.0.1:PORT`.
  async start() {
    const fd = fs.openSync(this.log, 'w');
    this.child = spawn(BORA, this.args(), { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.on('error', (e) => {
        this.exit = { code: null, signal: null, error: e };
        resolve(this.exit);
      });
    });
    if (this.child.pid) fs.appendFileSync(PID_FILE, `${this.child.pid}\n`);
    const deadline = Date.now() + START_TIMEOUT_S * 1000;
    for (;;) {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.readLog());
      if (m) {
        this.port = Number(m[1]);
        return this.port;
      }
      if (this.exit) {
        throw new CheckError(`bora serve exited before listening (${this.exitText()}); log: ${this.tail(8)}`);
      }
      if (Date.now() > deadline) {
        throw new CheckError(`no 'listening on http://127.0.0.1:PORT' line within ${START_TIMEOUT_S} s; log: ${this.tail(8)}`);
      }
      await sleep(100);
    }
  }

  readLog() {
    try {
      return fs.readFileSync(this.log, 'utf8');
    } catch {
      return '';
    }
  }
  tail(n) {
    return this.readLog().trimEnd().split('\n').slice(-n).join(' | ');
  }
  exitText() {
    if (!this.exit) return 'running';
    if (this.exit.error) return `spawn error: ${this.exit.error.message}`;
    return this.exit.signal ? `killed by ${this.exit.signal}` : `exit code ${this.exit.code}`;
  }
  alive() {
    return this.exit === null;
  }
  // Sends `sig` and waits up to `ms` for the process to end; returns the exit or null.
  async stop(sig, ms) {
    if (!this.alive()) return this.exit;
    this.child.kill(sig);
    let timer;
    const r = await Promise.race([this.exited, new Promise((res) => { timer = setTimeout(() => res(null), ms); })]);
    clearTimeout(timer);
    return r;
  }
}

function assertServerAlive() {
  assert(server && server.alive(), `bora serve is not running (${server ? server.exitText() : 'never started'}); log: ${server ? server.tail(8) : ''}`);
}

process.on('exit', () => {
  if (server && server.alive()) {
    try {
      server.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(sig === 'SIGINT' ? 130 : 143));
}

// ---------------------------------------------------------------------------------------------
// Clients (rebuilt for every server: the port changes)

let BASE = '';
let v1; // Mistral SDK 1.15.1
let v2; // Mistral SDK 2.7.0 (only to check that it still types the model cards)
let openai;
// The last response the v1 SDK received (status and body), to check exact wire field names: the
// SDK maps snake_case to camelCase and drops keys it does not know.
let lastWire = null;

function makeClients(port) {
  BASE = `http://127.0.0.1:${port}`;
  const httpClient = new HTTPClient({
    fetcher: async (input, init) => {
      const res = await fetch(input, init);
      const text = await res.clone().text();
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      lastWire = { status: res.status, text, json };
      return res;
    },
  });
  v1 = new Mistral({ apiKey: KEY, serverURL: BASE, httpClient, timeoutMs: TIMEOUT_S * 1000 });
  v2 = new Mistral2({ apiKey: KEY, serverURL: BASE, timeoutMs: TIMEOUT_S * 1000 });
  openai = new OpenAI({ apiKey: KEY, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: TIMEOUT_S * 1000 });
}

function wire(what) {
  assert(lastWire && lastWire.json !== undefined, `${what}: the last SDK response was not JSON: ${show(lastWire?.text)}`);
  return lastWire.json;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

async function raw(p, { method = 'GET', body, auth = true, headers = {}, signal } = {}) {
  const h = { ...headers };
  if (auth && KEY) h.Authorization = `Bearer ${KEY}`;
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${BASE}${p}`, { method, headers: h, body: payload, signal });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text, json };
}

function mediaType(headers) {
  return (headers.get('content-type') || '').split(';')[0].trim().toLowerCase();
}

function expectStatus(r, statuses, what) {
  const list = Array.isArray(statuses) ? statuses : [statuses];
  assert(list.includes(r.status), `${what}: expected status ${list.join(' or ')}, got ${r.status}: ${show(r.text, 400)}`);
}

// The error body of mistral-api.md §7 (what conformance.mjs checks): JSON, `error.message` for the
// OpenAI SDK, a top-level `message` for Mistral's clients.
function checkErrorBody(r, what) {
  eq(mediaType(r.headers), 'application/json', `${what}: content-type`);
  const b = r.json;
  assert(isObj(b), `${what}: error body is not a JSON object: ${show(r.text)}`);
  assert(isObj(b.error) && typeof b.error.message === 'string' && b.error.message.length > 0,
    `${what}: body lacks a non-empty error.message: ${show(r.text)}`);
  assert(typeof b.message === 'string' && b.message.length > 0, `${what}: body lacks a non-empty top-level message: ${show(r.text)}`);
  return `${b.message} ${b.error.message}`;
}

async function rawUpload(bytes, filename, { purpose = 'fine-tune', signal, auth = true } = {}) {
  const fd = new FormData();
  fd.append('purpose', purpose);
  fd.append('file', new Blob([bytes], { type: 'application/octet-stream' }), filename);
  return raw('/v1/files', { method: 'POST', body: fd, signal, auth });
}

// ---------------------------------------------------------------------------------------------
// Shape checks on the wire JSON (snake_case, exactly the contract's names)

function checkFileWire(f, { id, bytes, filename, sampleType, numLines }, what) {
  assert(isObj(f), `${what}: not an object: ${show(f)}`);
  assert(typeof f.id === 'string' && UUID_RE.test(f.id), `${what}: id must be a UUID: ${show(f.id)}`);
  if (id) eq(f.id, id, `${what}: id`);
  eq(f.object, 'file', `${what}: object`);
  eq(f.bytes, bytes, `${what}: bytes`);
  plausibleTime(f.created_at, `${what}: created_at`);
  eq(f.filename, filename, `${what}: filename`);
  eq(f.purpose, 'fine-tune', `${what}: purpose`);
  eq(f.sample_type, sampleType, `${what}: sample_type`);
  eq(f.num_lines, numLines, `${what}: num_lines`);
  eq(f.source, 'upload', `${what}: source`);
  assert('mimetype' in f && (f.mimetype === null || typeof f.mimetype === 'string'), `${what}: mimetype must be a string or null: ${show(f)}`);
  eq(f.status, 'processed', `${what}: status`);
}

function checkJobWire(j, what, { id, status, statuses } = {}) {
  assert(isObj(j), `${what}: job is not an object: ${show(j)}`);
  assert(typeof j.id === 'string' && j.id.length >= 8, `${what}: id must be a string of 8 or more characters: ${show(j.id)}`);
  if (id) eq(j.id, id, `${what}: id`);
  eq(j.object, 'job', `${what}: object`);
  eq(j.job_type, 'completion', `${what}: job_type`);
  eq(j.model, MODEL, `${what}: model`);
  assert(JOB_STATUSES.includes(j.status), `${what}: status ${show(j.status)} is not one of Mistral's job statuses`);
  if (status) eq(j.status, status, `${what}: status`);
  if (statuses) assert(statuses.includes(j.status), `${what}: status ${show(j.status)}, expected one of ${statuses.join(', ')}`);
  plausibleTime(j.created_at, `${what}: created_at`);
  plausibleTime(j.modified_at, `${what}: modified_at`);
  assert(j.modified_at >= j.created_at, `${what}: modified_at ${j.modified_at} < created_at ${j.created_at}`);
  assert(Array.isArray(j.training_files) && j.training_files.every((x) => typeof x === 'string'),
    `${what}: training_files must be a list of file ids: ${show(j.training_files)}`);
  assert(j.validation_files === null || j.validation_files === undefined ||
    (Array.isArray(j.validation_files) && j.validation_files.every((x) => typeof x === 'string')),
  `${what}: validation_files must be a list of file ids or null: ${show(j.validation_files)}`);
  assert(typeof j.auto_start === 'boolean', `${what}: auto_start must be a boolean: ${show(j.auto_start)}`);
  const h = j.hyperparameters;
  assert(isObj(h), `${what}: hyperparameters is not an object: ${show(h)}`);
  for (const k of ['training_steps', 'learning_rate', 'seq_len']) {
    eq(h[k], HYPER_WIRE[k], `${what}: hyperparameters.${k}`);
  }
  assert('epochs' in h && (h.epochs === null || isNum(h.epochs)), `${what}: hyperparameters.epochs must be present (number or null): ${show(h)}`);
  assert('fine_tuned_model' in j, `${what}: fine_tuned_model key missing: ${show(j)}`);
  assert(j.fine_tuned_model === null || typeof j.fine_tuned_model === 'string', `${what}: fine_tuned_model: ${show(j.fine_tuned_model)}`);
  assert('trained_tokens' in j && (j.trained_tokens === null || (isInt(j.trained_tokens) && j.trained_tokens >= 0)),
    `${what}: trained_tokens must be present (integer >= 0 or null): ${show(j.trained_tokens)}`);
  assert('metadata' in j && (j.metadata === null || isObj(j.metadata)), `${what}: metadata must be present (object or null): ${show(j.metadata)}`);
}

// Events oldest first (the contract does not fix the order; created_at has one-second resolution,
// so the array order is kept and only reversed when it is clearly newest first).
function chronological(events) {
  if (events.length > 1 && events[0].created_at > events[events.length - 1].created_at) return [...events].reverse();
  return events;
}

// `accuracy: false` leaves valid_mean_token_accuracy out (checked once, on the finished job).
function checkDetailWire(j, what, { accuracy = true } = {}) {
  assert(Array.isArray(j.events), `${what}: events must be a list: ${show(j.events)}`);
  assert(Array.isArray(j.checkpoints), `${what}: checkpoints must be a list: ${show(j.checkpoints)}`);
  for (const [i, e] of j.events.entries()) {
    assert(isObj(e) && typeof e.name === 'string' && e.name.length > 0, `${what}: event ${i} has no name: ${show(e)}`);
    plausibleTime(e.created_at, `${what}: event ${i} created_at`);
    assert(e.data === null || e.data === undefined || isObj(e.data), `${what}: event ${i} data must be an object: ${show(e)}`);
    if (e.name === 'status-updated') {
      assert(isObj(e.data) && JOB_STATUSES.includes(e.data.status), `${what}: status-updated event ${i} lacks data.status: ${show(e)}`);
    } else if (e.name === 'metrics') {
      const d = e.data;
      assert(isObj(d), `${what}: metrics event ${i} without data: ${show(e)}`);
      if (isTrainMetrics(e)) {
        assert(isInt(d.step) && d.step >= 1 && d.step <= STEPS, `${what}: metrics event ${i}: step must be an int in 1..${STEPS}: ${show(d)}`);
        assert(isNum(d.train_loss) && d.train_loss >= 0, `${what}: metrics event ${i}: train_loss: ${show(d)}`);
        assert(d.valid_loss === undefined || d.valid_loss === null || (isNum(d.valid_loss) && d.valid_loss >= 0),
          `${what}: metrics event ${i}: valid_loss: ${show(d)}`);
        assert(isNum(d.learning_rate) && d.learning_rate >= 0, `${what}: metrics event ${i}: learning_rate: ${show(d)}`);
        assert(isNum(d.tokens_per_s) && d.tokens_per_s >= 0, `${what}: metrics event ${i}: tokens_per_s: ${show(d)}`);
      } else {
        // An evaluation without a training step (bora also evaluates before step 1): step and valid_loss.
        assert(isInt(d.step) && d.step >= 0 && d.step <= STEPS, `${what}: evaluation metrics event ${i}: step must be an int in 0..${STEPS}: ${show(d)}`);
        assert(isNum(d.valid_loss) && d.valid_loss >= 0,
          `${what}: metrics event ${i} has neither train_loss (training step) nor valid_loss (evaluation): ${show(d)}`);
      }
    }
  }
  for (const [i, c] of j.checkpoints.entries()) {
    assert(isObj(c), `${what}: checkpoint ${i} is not an object: ${show(c)}`);
    assert(isInt(c.step_number) && c.step_number >= 1 && c.step_number <= STEPS, `${what}: checkpoint ${i}: step_number: ${show(c)}`);
    assert(c.step_number % CKPT_EVERY === 0 || c.step_number === STEPS,
      `${what}: checkpoint ${i}: step_number ${c.step_number} is not a multiple of ceil(${STEPS}/10) = ${CKPT_EVERY}`);
    plausibleTime(c.created_at, `${what}: checkpoint ${i} created_at`);
    const m = c.metrics;
    assert(isObj(m), `${what}: checkpoint ${i} has no metrics object: ${show(c)}`);
    assert(isNum(m.train_loss) && m.train_loss >= 0, `${what}: checkpoint ${i}: metrics.train_loss: ${show(c)}`);
    assert(isNum(m.valid_loss) && m.valid_loss >= 0, `${what}: checkpoint ${i}: metrics.valid_loss (the job has a validation file): ${show(c)}`);
    if (accuracy) {
      assert(isNum(m.valid_mean_token_accuracy) && m.valid_mean_token_accuracy >= 0 && m.valid_mean_token_accuracy <= 1,
        `${what}: checkpoint ${i}: metrics.valid_mean_token_accuracy must be a number in [0, 1]: ${show(c)}`);
    }
  }
}

// Metrics events: training steps carry train_loss; evaluation-only events carry just step and
// valid_loss (the contract has valid_loss optional on the training event; bora sends evaluations
// as their own events, also one at step 0 before training).
const isTrainMetrics = (e) => e.name === 'metrics' && isObj(e.data) && 'train_loss' in e.data;
const metricSteps = (events) => events.filter((e) => e.name === 'metrics').map((e) => e.data.step);
const trainSteps = (events) => events.filter(isTrainMetrics).map((e) => e.data.step);
const statusEvents = (events) => events.filter((e) => e.name === 'status-updated');
const maxCheckpoint = (j) => Math.max(0, ...j.checkpoints.map((c) => c.step_number));

// Polls the detailed job (SDK v1 get, so each poll also validates the shape) until `pred(wire)`
// holds; fails early when the server died or the job reached a terminal status `pred` rejects.
async function pollJob(id, pred, { what, timeoutS = TRAIN_TIMEOUT_S, signal, intervalMs = 200 }) {
  const deadline = Date.now() + timeoutS * 1000;
  let j;
  for (;;) {
    assertServerAlive();
    await v1.fineTuning.jobs.get({ jobId: id }, { signal });
    j = wire('GET job');
    if (pred(j)) return j;
    assert(!TERMINAL.includes(j.status), `${what}: job reached ${j.status} first (last checkpoint ${maxCheckpoint(j)}, ` +
      `last metrics step ${Math.max(0, ...metricSteps(j.events ?? []))}, events ${show(statusEvents(j.events ?? []).map((e) => e.data))})`);
    assert(Date.now() < deadline, `${what}: not reached within ${timeoutS} s (status ${j.status}, ` +
      `${(j.events ?? []).length} events, checkpoints ${show((j.checkpoints ?? []).map((c) => c.step_number))})`);
    await sleep(intervalMs, signal);
  }
}

// ---------------------------------------------------------------------------------------------
// Runner: checks run in order; `needs` names state entries an earlier check must have set.

const state = {};
let passed = 0;
let failed = 0;

async function check(name, fn, { needs = [], timeoutS = TIMEOUT_S } = {}) {
  const missing = needs.filter((k) => !state[k]);
  if (missing.length > 0) {
    failed++;
    console.log(`FAIL - ${name}: not run (needs ${missing.join(', ')} from an earlier check)`);
    return false;
  }
  const ac = new AbortController();
  let timer;
  const started = Date.now();
  const run = Promise.resolve().then(() => fn({ signal: ac.signal }));
  run.catch(() => {});
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      reject(new CheckError(`timed out after ${timeoutS} s`));
      ac.abort();
    }, timeoutS * 1000);
  });
  try {
    await Promise.race([run, timeout]);
    passed++;
    console.log(`ok - ${name}${VERBOSE ? ` (${Date.now() - started} ms)` : ''}`);
    return true;
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${oneLine(errText(e))}`);
    if (VERBOSE && e?.stack && !(e instanceof CheckError)) console.log(`# ${oneLine(e.stack)}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function startServer() {
  server = new Server();
  const port = await server.start();
  makeClients(port);
  if (VERBOSE) console.log(`# bora serve #${server.n} (pid ${server.child.pid}) on 127.0.0.1:${port}, log ${server.log}`);
  return port;
}

// Training questions with one-word answers from the training file (single-turn, no system
// prompt), used to see that the fine-tuned model learned them.
function trainingQuestions(n) {
  const out = [];
  const seen = new Set();
  for (const line of nonEmptyLines(TRAIN_BYTES)) {
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue;
    }
    const m = r.messages;
    if (!Array.isArray(m) || m.length !== 2 || r.system_prompt || m[0].role !== 'user' || m[1].role !== 'assistant') continue;
    const answer = String(m[1].content).replace(/[.!]+$/, '').trim();
    if (!answer || seen.has(m[0].content)) continue;
    seen.add(m[0].content);
    out.push({ question: m[0].content, answer });
    if (out.length === n) break;
  }
  return out;
}

async function chatText(model, content, signal) {
  const res = await v1.chat.complete({ model, messages: [{ role: 'user', content }], temperature: 0, maxTokens: 8 }, { signal });
  const c = res.choices?.[0]?.message?.content;
  assert(typeof c === 'string', `chat with ${model}: content is not a string: ${show(res)}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// The test

const t0 = Date.now();
fs.mkdirSync(WORK, { recursive: true });
console.log(`# bora fine-tuning e2e: ${BORA}, model ${MODEL}=${MODEL_DIR}, state ${STATE_DIR}, ` +
  `job ${STEPS} steps (checkpoint every ${CKPT_EVERY}), timeouts ${TIMEOUT_S}/${TRAIN_TIMEOUT_S} s`);

// === server 1 =================================================================================

await check('server: starts with --state-dir', async () => {
  await startServer();
  state.up = true;
}, { timeoutS: START_TIMEOUT_S + 5 });

const trainLines = nonEmptyLines(TRAIN_BYTES).length;
const evalLines = nonEmptyLines(EVAL_BYTES).length;
const pretrainLines = nonEmptyLines(PRETRAIN_BYTES).length;

await check('files: upload instruct JSONL (mistral sdk v1)', async ({ signal }) => {
  const f = await v1.files.upload({ file: { fileName: TRAIN_NAME, content: new Uint8Array(TRAIN_BYTES) }, purpose: 'fine-tune' }, { signal });
  // Later checks need the id even when a shape check below fails.
  state.trainFile = f.id;
  state.trainFileWire = wire('upload');
  eq(lastWire.status, 200, 'status');
  checkFileWire(wire('upload'), { bytes: TRAIN_BYTES.length, filename: TRAIN_NAME, sampleType: 'instruct', numLines: trainLines }, 'upload');
  eq(f.sampleType, 'instruct', 'sdk sampleType');
  eq(f.numLines, trainLines, 'sdk numLines');
  eq(f.sizeBytes, TRAIN_BYTES.length, 'sdk sizeBytes');
}, { needs: ['up'] });

await check('files: upload, list and download with the openai sdk', async ({ signal }) => {
  const f = await openai.files.create({ file: fs.createReadStream(opts.eval), purpose: 'fine-tune' }, { signal });
  if (typeof f.id === 'string' && f.id) state.evalFile = f.id;
  assert(typeof f.id === 'string' && UUID_RE.test(f.id), `id must be a UUID: ${show(f)}`);
  eq(f.object, 'file', 'object');
  eq(f.bytes, EVAL_BYTES.length, 'bytes');
  eq(f.filename, EVAL_NAME, 'filename');
  eq(f.purpose, 'fine-tune', 'purpose');
  eq(f.status, 'processed', 'status');
  plausibleTime(f.created_at, 'created_at');
  state.evalFile = f.id;
  const r = await raw(`/v1/files/${f.id}`, { signal });
  expectStatus(r, 200, 'GET /v1/files/{id}');
  checkFileWire(r.json, { id: f.id, bytes: EVAL_BYTES.length, filename: EVAL_NAME, sampleType: 'instruct', numLines: evalLines }, 'retrieve');
  const page = await openai.files.list({ purpose: 'fine-tune' }, { signal });
  assert(page.data.some((x) => x.id === f.id), `openai files.list lacks ${f.id}: ${show(page.data.map((x) => x.id))}`);
  const content = await openai.files.content(f.id, { signal });
  sameBytes(Buffer.from(await content.arrayBuffer()), EVAL_BYTES, 'openai files.content');
}, { needs: ['up'] });

await check('files: upload pretrain JSONL (raw multipart)', async ({ signal }) => {
  const r = await rawUpload(PRETRAIN_BYTES, PRETRAIN_NAME, { signal });
  expectStatus(r, 200, 'POST /v1/files');
  eq(mediaType(r.headers), 'application/json', 'content-type');
  if (typeof r.json?.id === 'string' && r.json.id) state.pretrainFile = r.json.id;
  checkFileWire(r.json, { bytes: PRETRAIN_BYTES.length, filename: PRETRAIN_NAME, sampleType: 'pretrain', numLines: pretrainLines }, 'upload');
}, { needs: ['up'] });

await check('files: invalid JSONL is rejected with 422 naming the line', async ({ signal }) => {
  const before = await raw('/v1/files', { signal });
  expectStatus(before, 200, 'GET /v1/files');
  const first = nonEmptyLines(TRAIN_BYTES)[0];
  const cases = [
    ['messages is not a list', `${first}\n{"messages": 5}\n${first}\n`],
    ['a line that is not JSON', `${first}\nnot json at all\n${first}\n`],
    ['a truncated JSON line', `${first}\n{"messages": [{"role": "user", "content": "hi"}\n`],
  ];
  for (const [what, text] of cases) {
    const r = await rawUpload(Buffer.from(text), 'bad.jsonl', { signal });
    expectStatus(r, 422, what);
    const msg = checkErrorBody(r, what);
    assert(/\bline 2\b|:2:/i.test(msg), `${what}: the error message names neither "line 2" nor "FILE:2:": ${show(msg)}`);
  }
  await expectSdkStatus(() => v1.files.upload({ file: { fileName: 'bad.jsonl', content: Buffer.from(cases[0][1]) }, purpose: 'fine-tune' }, { signal }),
    [422], 'sdk v1 upload of invalid JSONL');
  const after = await raw('/v1/files', { signal });
  expectStatus(after, 200, 'GET /v1/files');
  eq(after.json?.total, before.json?.total, 'total number of files after the rejected uploads');
}, { needs: ['up'] });

await check('files: list (mistral sdk v1)', async ({ signal }) => {
  const list = await v1.files.list({}, { signal });
  const w = wire('list');
  eq(w.object, 'list', 'object');
  assert(Array.isArray(w.data), `data is not a list: ${show(w)}`);
  eq(w.total, 3, 'total (fresh state dir, three uploads)');
  const ids = list.data.map((f) => f.id).sort();
  sameJson(ids, [state.trainFile, state.evalFile, state.pretrainFile].sort(), 'file ids');
  const t = w.data.find((f) => f.id === state.trainFile);
  checkFileWire(t, { id: state.trainFile, bytes: TRAIN_BYTES.length, filename: TRAIN_NAME, sampleType: 'instruct', numLines: trainLines }, 'listed file');
}, { needs: ['trainFile', 'evalFile', 'pretrainFile'] });

await check('files: retrieve (mistral sdk v1)', async ({ signal }) => {
  const f = await v1.files.retrieve({ fileId: state.trainFile }, { signal });
  eq(f.deleted, false, 'deleted');
  const w = wire('retrieve');
  checkFileWire(w, { id: state.trainFile, bytes: TRAIN_BYTES.length, filename: TRAIN_NAME, sampleType: 'instruct', numLines: trainLines }, 'retrieve');
  eq(w.deleted, false, 'wire deleted');
  eq(w.created_at, state.trainFileWire.created_at, 'created_at (same as at upload)');
}, { needs: ['trainFile'] });

await check('files: download returns the uploaded bytes', async ({ signal }) => {
  const stream = await v1.files.download({ fileId: state.trainFile }, { signal });
  const chunks = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  sameBytes(Buffer.concat(chunks), TRAIN_BYTES, 'sdk v1 download');
  const r = await raw(`/v1/files/${state.trainFile}/content`, { signal });
  expectStatus(r, 200, 'GET /v1/files/{id}/content');
  sameBytes(r.buf, TRAIN_BYTES, 'raw GET content');
}, { needs: ['trainFile'] });

await check('files: delete (mistral sdk v1), then 404', async ({ signal }) => {
  const id = state.pretrainFile;
  const d = await v1.files.delete({ fileId: id }, { signal });
  sameJson({ id: d.id, object: d.object, deleted: d.deleted }, { id, object: 'file', deleted: true }, 'delete response');
  await expectSdkStatus(() => v1.files.retrieve({ fileId: id }, { signal }), [404], 'sdk retrieve after delete');
  for (const [what, p, method] of [['GET', `/v1/files/${id}`, 'GET'], ['GET content', `/v1/files/${id}/content`, 'GET'],
    ['DELETE again', `/v1/files/${id}`, 'DELETE']]) {
    const r = await raw(p, { method, signal });
    expectStatus(r, 404, `${what} after delete`);
    checkErrorBody(r, `${what} after delete`);
  }
  const list = await raw('/v1/files', { signal });
  assert(!list.json.data.some((f) => f.id === id), `the deleted file is still listed: ${show(list.json)}`);
  eq(list.json.total, 2, 'total after the delete');
  state.deletedFile = id;
}, { needs: ['pretrainFile'] });

await check('files: ids that are not ours get 404, never 5xx', async ({ signal }) => {
  const uuid = randomUUID();
  const cases = [
    ['GET', `/v1/files/${encodeURIComponent('../../etc/passwd')}`],
    ['GET', `/v1/files/${encodeURIComponent('../../etc/passwd')}/content`],
    ['GET', '/v1/files/..%2F..%2F..%2F..%2Fetc%2Fpasswd/content'],
    ['GET', `/v1/files/${encodeURIComponent('/etc/passwd')}/content`],
    ['GET', '/v1/files/%2e%2e/content'],
    ['GET', `/v1/files/${uuid}`],
    ['GET', `/v1/files/${uuid}/content`],
    ['DELETE', `/v1/files/${uuid}`],
    ['DELETE', `/v1/files/${encodeURIComponent('../state.db')}`],
    ['GET', '/v1/files/not-a-file-id'],
    ['GET', `/v1/files/${'a'.repeat(5000)}`, [404, 414]],
  ];
  for (const [method, p, statuses = [404]] of cases) {
    const r = await raw(p, { method, signal });
    const what = `${method} ${p.length > 80 ? `${p.slice(0, 80)}...` : p}`;
    assert(r.status < 500, `${what}: server error ${r.status}: ${show(r.text)}`);
    assert(!r.text.includes('root:'), `${what}: the answer contains a passwd file: ${show(r.text)}`);
    expectStatus(r, statuses, what);
    checkErrorBody(r, what);
  }
  await expectSdkStatus(() => v1.files.retrieve({ fileId: uuid }, { signal }), [404], 'sdk v1 retrieve of a random uuid');
  assertServerAlive();
}, { needs: ['up'] });

await check('auth: files and jobs routes need the API key', async ({ signal }) => {
  const before = await raw('/v1/files', { signal });
  expectStatus(before, 200, 'GET /v1/files with the key');
  const cases = [
    ['GET /v1/files', () => raw('/v1/files', { auth: false, signal })],
    ['POST /v1/files', () => rawUpload(TRAIN_BYTES, TRAIN_NAME, { auth: false, signal })],
    ['GET /v1/files/{id}/content', () => raw(`/v1/files/${state.trainFile ?? randomUUID()}/content`, { auth: false, signal })],
    ['GET /v1/fine_tuning/jobs', () => raw('/v1/fine_tuning/jobs', { auth: false, signal })],
    ['POST /v1/fine_tuning/jobs', () => raw('/v1/fine_tuning/jobs', { method: 'POST', auth: false, signal, body: { model: MODEL } })],
  ];
  for (const [what, f] of cases) {
    const r = await f();
    expectStatus(r, 401, `${what} without a key`);
  }
  const after = await raw('/v1/files', { signal });
  eq(after.json?.total, before.json?.total, 'total files (the unauthenticated upload must not be stored)');
}, { needs: ['up'] });

// --- job requests the server must refuse ---------------------------------------------------------

function jobBody(extra = {}) {
  return {
    model: MODEL,
    training_files: [{ file_id: state.trainFile, weight: 1 }],
    validation_files: [state.evalFile],
    suffix: SUFFIX,
    auto_start: true,
    hyperparameters: { ...HYPER_WIRE },
    ...extra,
  };
}

await check('jobs: unknown model -> 404', async ({ signal }) => {
  const r = await raw('/v1/fine_tuning/jobs', { method: 'POST', body: jobBody({ model: 'no-such-model' }), signal });
  expectStatus(r, 404, 'POST /v1/fine_tuning/jobs');
  checkErrorBody(r, 'unknown model');
}, { needs: ['trainFile', 'evalFile'] });

await check('jobs: ids that are not ours get 404, never 5xx', async ({ signal }) => {
  const uuid = randomUUID();
  const cases = [
    ['GET', `/v1/fine_tuning/jobs/${uuid}`],
    ['POST', `/v1/fine_tuning/jobs/${uuid}/cancel`],
    ['POST', `/v1/fine_tuning/jobs/${uuid}/start`],
    ['GET', `/v1/fine_tuning/jobs/${encodeURIComponent('../../etc/passwd')}`],
    ['POST', `/v1/fine_tuning/jobs/${encodeURIComponent('../files')}/cancel`],
  ];
  for (const [method, p] of cases) {
    const r = await raw(p, { method, signal });
    const what = `${method} ${p}`;
    assert(r.status < 500, `${what}: server error ${r.status}: ${show(r.text)}`);
    expectStatus(r, 404, what);
    checkErrorBody(r, what);
  }
  await expectSdkStatus(() => v1.fineTuning.jobs.get({ jobId: uuid }, { signal }), [404], 'sdk v1 get of a random uuid');
  assertServerAlive();
}, { needs: ['up'] });

await check('jobs: unknown or deleted file -> 404/422', async ({ signal }) => {
  const cases = [
    ['random training file id', jobBody({ training_files: [{ file_id: randomUUID(), weight: 1 }] })],
    ['path as training file id', jobBody({ training_files: [{ file_id: '../../etc/passwd', weight: 1 }] })],
    ['random validation file id', jobBody({ validation_files: [randomUUID()] })],
  ];
  if (state.deletedFile) cases.push(['deleted training file', jobBody({ training_files: [{ file_id: state.deletedFile, weight: 1 }] })]);
  for (const [what, body] of cases) {
    const r = await raw('/v1/fine_tuning/jobs', { method: 'POST', body, signal });
    expectStatus(r, [404, 422], what);
    checkErrorBody(r, what);
  }
}, { needs: ['trainFile', 'evalFile'] });

await check('jobs: bad hyperparameters -> 422', async ({ signal }) => {
  const cases = [
    ['learning_rate 0', { ...HYPER_WIRE, learning_rate: 0 }],
    ['learning_rate < 0', { ...HYPER_WIRE, learning_rate: -0.001 }],
    ['training_steps 0', { ...HYPER_WIRE, training_steps: 0 }],
    ['training_steps < 0', { ...HYPER_WIRE, training_steps: -5 }],
    ['learning_rate a string', { ...HYPER_WIRE, learning_rate: 'fast' }],
  ];
  for (const [what, hyperparameters] of cases) {
    const r = await raw('/v1/fine_tuning/jobs', { method: 'POST', body: jobBody({ hyperparameters }), signal });
    expectStatus(r, 422, what);
    checkErrorBody(r, what);
  }
  await expectSdkStatus(() => v1.fineTuning.jobs.create({
    model: MODEL, trainingFiles: [{ fileId: state.trainFile, weight: 1 }], suffix: SUFFIX, autoStart: false,
    hyperparameters: { ...HYPER, learningRate: 0 },
  }, { signal }), [422], 'sdk v1 create with learningRate 0');
  const list = await raw('/v1/fine_tuning/jobs', { signal });
  expectStatus(list, 200, 'GET /v1/fine_tuning/jobs');
  eq(list.json?.total, 0, 'jobs after the refused requests (none may be stored)');
}, { needs: ['trainFile', 'evalFile'] });

// --- job A: auto_start false, start, cancel ------------------------------------------------------

await check('jobs: auto_start false waits in VALIDATED', async ({ signal }) => {
  const j = await v1.fineTuning.jobs.create({
    model: MODEL, trainingFiles: [{ fileId: state.trainFile, weight: 1 }], validationFiles: [state.evalFile],
    suffix: SUFFIX, autoStart: false, hyperparameters: HYPER,
  }, { signal });
  state.jobA = j.id;
  eq(lastWire.status, 200, 'status');
  checkJobWire(wire('create'), 'create', { statuses: ['QUEUED', 'VALIDATING', 'VALIDATED'] });
  eq(j.autoStart, false, 'autoStart');
  await pollJob(j.id, (w) => w.status === 'VALIDATED', { what: 'VALIDATED', timeoutS: 30, signal });
  await sleep(2000, signal);
  await v1.fineTuning.jobs.get({ jobId: j.id }, { signal });
  const w = wire('get');
  eq(w.status, 'VALIDATED', 'status 2 s later (must not start by itself)');
  eq(metricSteps(w.events).length, 0, 'metrics events of a job that was never started');
}, { needs: ['trainFile', 'evalFile'] });

await check('jobs: start a VALIDATED job (mistral sdk v1)', async ({ signal }) => {
  await v1.fineTuning.jobs.start({ jobId: state.jobA }, { signal });
  checkJobWire(wire('start'), 'start', { id: state.jobA, statuses: ['QUEUED', 'STARTED', 'RUNNING'] });
  await pollJob(state.jobA, (w) => w.status === 'RUNNING', { what: 'RUNNING', timeoutS: 60, signal, intervalMs: 100 });
  state.jobARunning = true;
}, { needs: ['jobA'], timeoutS: 70 });

await check('jobs: cancel a running job (mistral sdk v1)', async ({ signal }) => {
  await v1.fineTuning.jobs.cancel({ jobId: state.jobA }, { signal });
  checkJobWire(wire('cancel'), 'cancel', { id: state.jobA, statuses: ['CANCELLATION_REQUESTED', 'CANCELLED'] });
  let w = await pollJob(state.jobA, (x) => x.status === 'CANCELLED', { what: 'CANCELLED', timeoutS: 60, signal });
  eq(w.fine_tuned_model, null, 'fine_tuned_model of a cancelled job');
  assert(statusEvents(w.events).some((e) => e.data.status === 'CANCELLED'), `no status-updated event with CANCELLED: ${show(statusEvents(w.events))}`);
  await sleep(1500, signal);
  await v1.fineTuning.jobs.get({ jobId: state.jobA }, { signal });
  w = wire('get');
  eq(w.status, 'CANCELLED', 'status 1.5 s later');
  const models = await raw('/v1/models', { signal });
  const ft = `ft:${MODEL}:${SUFFIX}:${state.jobA.slice(0, 8)}`;
  assert(!models.json.data.some((m) => m.id === ft || m.job === state.jobA), `the cancelled job's model is listed: ${show(models.json.data.map((m) => m.id))}`);
  state.jobACancelled = true;
}, { needs: ['jobARunning'], timeoutS: 70 });

// --- job B: the durability run -------------------------------------------------------------------

await check('jobs: create with auto_start (mistral sdk v1) -> QUEUED', async ({ signal }) => {
  const j = await v1.fineTuning.jobs.create({
    model: MODEL, trainingFiles: [{ fileId: state.trainFile, weight: 1 }], validationFiles: [state.evalFile],
    suffix: SUFFIX, autoStart: true, hyperparameters: HYPER,
  }, { signal });
  state.jobB = j.id;
  const w = wire('create');
  state.jobBCreated = w;
  eq(lastWire.status, 200, 'status');
  checkJobWire(w, 'create', { status: 'QUEUED' });
  sameJson(w.training_files, [state.trainFile], 'training_files');
  sameJson(w.validation_files, [state.evalFile], 'validation_files');
  eq(w.suffix, SUFFIX, 'suffix');
  eq(w.auto_start, true, 'auto_start');
  eq(w.fine_tuned_model, null, 'fine_tuned_model');
  eq(j.id, w.id, 'sdk id');
}, { needs: ['trainFile', 'evalFile'] });

await check('jobs: list, paging and status filter', async ({ signal }) => {
  const list = await v1.fineTuning.jobs.list({ page: 0, pageSize: 10 }, { signal });
  const w = wire('list');
  eq(w.object, 'list', 'object');
  const ids = [state.jobA, state.jobB].filter(Boolean);
  eq(w.total, ids.length, 'total');
  sameJson(list.data.map((x) => x.id).sort(), [...ids].sort(), 'job ids');
  for (const x of w.data) checkJobWire(x, `listed job ${x.id}`);
  const p0 = await raw('/v1/fine_tuning/jobs?page=0&page_size=1', { signal });
  const p1 = await raw('/v1/fine_tuning/jobs?page=1&page_size=1', { signal });
  expectStatus(p0, 200, 'page 0');
  expectStatus(p1, 200, 'page 1');
  eq(p0.json.data.length, Math.min(1, ids.length), 'page 0 size (page_size=1)');
  eq(p0.json.total, ids.length, 'page 0 total (all pages)');
  sameJson([...p0.json.data, ...p1.json.data].map((x) => x.id).sort(), [...ids].sort(), 'pages 0 and 1 together');
  if (state.jobACancelled) {
    const c = await raw('/v1/fine_tuning/jobs?page=0&page_size=10&status=CANCELLED', { signal });
    expectStatus(c, 200, 'status=CANCELLED');
    eq(c.json.object, 'list', 'object');
    eq(c.json.total, 1, 'total with status=CANCELLED');
    sameJson(c.json.data.map((x) => x.id), [state.jobA], 'ids with status=CANCELLED');
    const s = await v1.fineTuning.jobs.list({ status: 'CANCELLED' }, { signal });
    sameJson(s.data.map((x) => x.id), [state.jobA], 'sdk list status CANCELLED');
  }
  const none = await raw('/v1/fine_tuning/jobs?page=0&page_size=10&status=SUCCESS', { signal });
  expectStatus(none, 200, 'status=SUCCESS');
  eq(none.json.total, 0, 'total with status=SUCCESS (nothing finished yet)');
  sameJson(none.json.data, [], 'data with status=SUCCESS');
}, { needs: ['jobB'] });

await check('jobs: RUNNING with metrics events and a checkpoint', async ({ signal }) => {
  const w = await pollJob(state.jobB, (x) => x.status === 'RUNNING' && x.checkpoints.length >= 1,
    { what: 'RUNNING with a checkpoint', signal, intervalMs: 100 });
  state.jobBRunning = true; // the kill goes ahead even if a shape check below fails
  state.ckptSeen = maxCheckpoint(w);
  state.stepSeen = Math.max(0, ...metricSteps(w.events));
  checkJobWire(w, 'detailed job', { id: state.jobB, status: 'RUNNING' });
  checkDetailWire(w, 'detailed job', { accuracy: false });
  const ev = chronological(w.events);
  assert(statusEvents(ev).some((e) => e.data.status === 'RUNNING'), `no status-updated event with RUNNING: ${show(statusEvents(ev))}`);
  assert(trainSteps(ev).length >= 1, `no training metrics event yet (checkpoint at ${state.ckptSeen}): ${show(ev.slice(-5))}`);
  assert(state.stepSeen >= state.ckptSeen, `latest metrics step ${state.stepSeen} is before the checkpoint at ${state.ckptSeen}`);
}, { needs: ['jobB'], timeoutS: TRAIN_TIMEOUT_S + 10 });

await check('durability: kill -9 while the job is RUNNING', async ({ signal }) => {
  await v1.fineTuning.jobs.get({ jobId: state.jobB }, { signal });
  const w = wire('get');
  // Read just before the kill: a checkpoint written after this is fine (resume may be later).
  state.ckptSeen = Math.max(state.ckptSeen, maxCheckpoint(w));
  eq(w.status, 'RUNNING', 'status just before the kill');
  assert(state.ckptSeen < STEPS, `all ${STEPS} steps are checkpointed already`);
  const exit = await server.stop('SIGKILL', 10000);
  assert(exit, 'the server did not die within 10 s of SIGKILL');
  eq(exit.signal, 'SIGKILL', 'exit signal');
  state.killed = true;
  if (VERBOSE) console.log(`# killed at checkpoint ${state.ckptSeen}, metrics step >= ${Math.max(0, ...metricSteps(w.events))}`);
}, { needs: ['jobBRunning'] });

// === server 2: after kill -9 ===================================================================

await check('durability: restart on the same state dir', async () => {
  if (server?.alive()) await server.stop('SIGKILL', 10000);
  await startServer();
  state.up2 = true;
}, { needs: ['up'], timeoutS: START_TIMEOUT_S + 15 });

await check('durability: files survive the kill', async ({ signal }) => {
  const list = await v1.files.list({}, { signal });
  const expected = [state.trainFile, state.evalFile].filter(Boolean).sort();
  sameJson(list.data.map((f) => f.id).sort(), expected, 'file ids (the deleted one stays deleted)');
  eq(wire('list').total, expected.length, 'total');
  await v1.files.retrieve({ fileId: state.trainFile }, { signal });
  checkFileWire(wire('retrieve'), { id: state.trainFile, bytes: TRAIN_BYTES.length, filename: TRAIN_NAME, sampleType: 'instruct', numLines: trainLines }, 'retrieve');
  eq(wire('retrieve').created_at, state.trainFileWire.created_at, 'created_at');
  const r = await raw(`/v1/files/${state.trainFile}/content`, { signal });
  expectStatus(r, 200, 'content');
  sameBytes(r.buf, TRAIN_BYTES, 'content after the kill');
  if (state.deletedFile) expectStatus(await raw(`/v1/files/${state.deletedFile}`, { signal }), 404, 'deleted file');
}, { needs: ['up2', 'trainFile', 'evalFile'] });

await check('durability: jobs survive the kill', async ({ signal }) => {
  const list = await v1.fineTuning.jobs.list({ page: 0, pageSize: 10 }, { signal });
  const ids = [state.jobA, state.jobB].filter(Boolean);
  sameJson(list.data.map((x) => x.id).sort(), [...ids].sort(), 'job ids');
  await v1.fineTuning.jobs.get({ jobId: state.jobB }, { signal });
  const w = wire('get');
  checkJobWire(w, 'job B', { id: state.jobB, statuses: ['QUEUED', 'STARTED', 'RUNNING', 'SUCCESS'] });
  for (const k of ['created_at', 'suffix', 'auto_start']) eq(w[k], state.jobBCreated[k], k);
  sameJson(w.training_files, state.jobBCreated.training_files, 'training_files');
  sameJson(w.validation_files, state.jobBCreated.validation_files, 'validation_files');
  if (state.jobACancelled) {
    await v1.fineTuning.jobs.get({ jobId: state.jobA }, { signal });
    eq(wire('get').status, 'CANCELLED', 'job A status');
  }
}, { needs: ['up2', 'killed'] });

await check('durability: the job resumes from its last checkpoint', async ({ signal }) => {
  const resumeEvent = (x) => statusEvents(chronological(x.events)).find((e) => isNum(e.data.resumed_from_step));
  const w = await pollJob(state.jobB, (x) => resumeEvent(x) !== undefined || x.status === 'SUCCESS',
    { what: 'a status-updated event with resumed_from_step', signal, timeoutS: 60 });
  const e = resumeEvent(w);
  assert(e, `the job finished without a status-updated event carrying resumed_from_step: ${show(statusEvents(w.events).map((x) => x.data))}`);
  const r = e.data.resumed_from_step;
  assert(isInt(r) && r > 0, `resumed_from_step must be an int > 0: ${show(e)}`);
  assert(r >= state.ckptSeen, `resumed from step ${r}, but a checkpoint at step ${state.ckptSeen} existed before the kill`);
  assert(r < STEPS, `resumed_from_step ${r} >= ${STEPS}`);
  assert(r % CKPT_EVERY === 0, `resumed_from_step ${r} is not a checkpoint step (multiple of ${CKPT_EVERY})`);
  assert(w.checkpoints.some((c) => c.step_number === r), `no checkpoint with step_number ${r}: ${show(w.checkpoints.map((c) => c.step_number))}`);
  assert(['RUNNING', 'SUCCESS'].includes(w.status), `status ${w.status} after the resume`);
  state.resumedFrom = r;
}, { needs: ['up2', 'killed'], timeoutS: 70 });

await check('jobs: finishes SUCCESS with every step done', async ({ signal }) => {
  const w = await pollJob(state.jobB, (x) => x.status === 'SUCCESS', { what: 'SUCCESS', signal, intervalMs: 500 });
  state.jobBDone = w;
  const ft = `ft:${MODEL}:${SUFFIX}:${state.jobB.slice(0, 8)}`;
  eq(w.fine_tuned_model, ft, 'fine_tuned_model');
  state.ftModel = ft;
  checkJobWire(w, 'finished job', { id: state.jobB, status: 'SUCCESS' });
  assert(isInt(w.trained_tokens) && w.trained_tokens > 0, `trained_tokens must be an int > 0: ${show(w.trained_tokens)}`);
  const steps = metricSteps(w.events);
  eq(Math.max(0, ...steps), STEPS, 'last metrics step');
  const st = statusEvents(chronological(w.events)).map((e) => e.data.status);
  eq(st[st.length - 1], 'SUCCESS', 'last status-updated event');
}, { needs: ['jobB', 'up2'], timeoutS: TRAIN_TIMEOUT_S + 10 });

await check('jobs: events and checkpoints of the finished job have the contract\'s shape', async () => {
  checkDetailWire(state.jobBDone, 'finished job');
}, { needs: ['jobBDone'] });

await check('jobs: metrics continue from the resume step (no restart from step 1)', async () => {
  const w = state.jobBDone;
  const ev = chronological(w.events);
  const all = trainSteps(ev);
  const lowest = Math.min(...all);
  eq(all.filter((s) => s === lowest).length, 1, `training metrics events with the first step ${lowest} (a resumed job must not start over)`);
  const at = ev.findIndex((e) => e.name === 'status-updated' && isNum(e.data.resumed_from_step));
  if (at < 0) {
    const back = all.findIndex((s, i) => i > 0 && s <= all[i - 1]);
    assert(false, `no status-updated event with resumed_from_step; training steps ${back > 0 ? `go back from ${all[back - 1]} to ${all[back]}` : 'never go back'}`);
  }
  const r = ev[at].data.resumed_from_step;
  const before = trainSteps(ev.slice(0, at));
  const after = trainSteps(ev.slice(at + 1));
  const evalAfter = ev.slice(at + 1).filter((e) => e.name === 'metrics' && !isTrainMetrics(e)).map((e) => e.data.step);
  assert(evalAfter.every((s) => s >= r), `evaluation events after resuming from ${r} at earlier steps: ${show(evalAfter)}`);
  assert(before.length > 0, 'no training metrics events before the resume');
  assert(after.length > 0, 'no training metrics events after the resume');
  assert(after.every((s) => s > r), `training steps after resuming from ${r} must all be > ${r}: ${show(after.slice(0, 20))}`);
  assert(after[0] <= r + CKPT_EVERY, `first training step after the resume is ${after[0]}, expected ${r + 1}..${r + CKPT_EVERY}`);
  for (let i = 1; i < after.length; i++) {
    assert(after[i] > after[i - 1], `training steps after the resume are not increasing: ${after[i - 1]} then ${after[i]}`);
  }
  eq(after[after.length - 1], STEPS, 'last training step');
  for (let i = 1; i < before.length; i++) {
    assert(before[i] > before[i - 1], `training steps before the kill are not increasing: ${before[i - 1]} then ${before[i]}`);
  }
  const stepsDone = new Set([...before.filter((s) => s <= r), ...after]);
  if (VERBOSE) console.log(`# training metrics events: ${before.length} before the kill (last step ${before[before.length - 1]}), resume at ${r}, ${after.length} after; ${stepsDone.size} distinct steps`);
}, { needs: ['jobBDone', 'killed'] });

await check('jobs: checkpoints every ceil(steps/10) steps, validation loss falls', async () => {
  const w = state.jobBDone;
  const nums = [...new Set(w.checkpoints.map((c) => c.step_number))].sort((a, b) => a - b);
  const expected = Array.from({ length: STEPS / CKPT_EVERY }, (_, i) => (i + 1) * CKPT_EVERY);
  sameJson(nums, expected, 'checkpoint steps');
  const byStep = (s) => w.checkpoints.find((c) => c.step_number === s).metrics;
  const first = byStep(expected[0]);
  const last = byStep(STEPS);
  assert(last.valid_loss < first.valid_loss, `valid_loss did not fall: step ${expected[0]} ${first.valid_loss}, step ${STEPS} ${last.valid_loss}`);
}, { needs: ['jobBDone'] });

await check('jobs: list status=SUCCESS', async ({ signal }) => {
  const r = await raw('/v1/fine_tuning/jobs?page=0&page_size=10&status=SUCCESS', { signal });
  expectStatus(r, 200, 'GET');
  eq(r.json.object, 'list', 'object');
  eq(r.json.total, 1, 'total');
  eq(r.json.data[0]?.id, state.jobB, 'id');
  eq(r.json.data[0]?.fine_tuned_model, state.ftModel, 'fine_tuned_model');
  const s = await v1.fineTuning.jobs.list({ status: 'SUCCESS', page: 0, pageSize: 10 }, { signal });
  sameJson(s.data.map((x) => x.id), [state.jobB], 'sdk v1 list status SUCCESS');
}, { needs: ['ftModel'] });

async function checkFtCard({ signal }) {
  const list = await v1.models.list({}, { signal });
  const card = list.data?.find((m) => m.id === state.ftModel);
  assert(card, `${state.ftModel} not in /v1/models: ${show(list.data?.map((m) => m.id))}`);
  eq(card.type, 'fine-tuned', 'sdk v1 card type');
  eq(card.job, state.jobB, 'card job');
  eq(card.root, MODEL, 'card root');
  const w = wire('models').data.find((m) => m.id === state.ftModel);
  eq(w.parent, MODEL, 'card parent');
  const list2 = await v2.models.list({}, { signal });
  for (const c of list2.data ?? []) assert(!c.isUnknown, `sdk 2.7.0 could not type a card: ${show(c.raw ?? c)}`);
  assert(list2.data.some((c) => c.id === state.ftModel), 'sdk 2.7.0: fine-tuned model not listed');
}

await check('models: the fine-tuned model is listed (card job, root, parent)', checkFtCard, { needs: ['ftModel'] });

await check('models: retrieve the fine-tuned model', async ({ signal }) => {
  const r = await raw(`/v1/models/${encodeURIComponent(state.ftModel)}`, { signal });
  expectStatus(r, 200, 'GET /v1/models/{id}');
  eq(r.json.id, state.ftModel, 'id');
  eq(r.json.job, state.jobB, 'job');
  const m = await openai.models.retrieve(state.ftModel, { signal });
  eq(m.id, state.ftModel, 'openai sdk id');
}, { needs: ['ftModel'] });

await check('chat: the fine-tuned model answers (mistral sdk v1, openai sdk)', async ({ signal }) => {
  const res = await v1.chat.complete({ model: state.ftModel, messages: [{ role: 'user', content: 'Hello!' }], maxTokens: 8, temperature: 0 }, { signal });
  eq(res.model, state.ftModel, 'response model');
  assert(typeof res.choices[0]?.message?.content === 'string', `no content: ${show(res)}`);
  assert(['stop', 'length'].includes(res.choices[0].finishReason), `finish reason ${show(res.choices[0].finishReason)}`);
  const o = await openai.chat.completions.create({ model: state.ftModel, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 8, temperature: 0 }, { signal });
  eq(o.model, state.ftModel, 'openai response model');
  assert(typeof o.choices[0]?.message?.content === 'string', `openai: no content: ${show(o)}`);
}, { needs: ['ftModel'] });

await check('chat: the fine-tuned model learned the training answers', async ({ signal }) => {
  const qs = trainingQuestions(4);
  assert(qs.length >= 3, `found only ${qs.length} single-turn questions in ${TRAIN_NAME}`);
  const rows = [];
  for (const { question, answer } of qs) {
    const ft = await chatText(state.ftModel, question, signal);
    const base = await chatText(MODEL, question, signal);
    rows.push({ question, answer, ft, base, right: ft.toLowerCase().includes(answer.toLowerCase()) });
  }
  state.ftAnswers = rows.map((x) => x.ft);
  const right = rows.filter((x) => x.right).length;
  if (VERBOSE) for (const x of rows) console.log(`# ${show(x.question)} -> ft ${show(x.ft)}, base ${show(x.base)} (expected ${show(x.answer)})`);
  assert(rows.some((x) => x.ft !== x.base), `the fine-tuned model answers exactly like the base model (adapter not applied?): ${show(rows)}`);
  assert(right >= Math.ceil(rows.length / 2), `only ${right} of ${rows.length} training answers right: ${show(rows.map(({ question, answer, ft }) => ({ question, answer, ft })))}`);
}, { needs: ['ftModel'], timeoutS: 120 });

await check('durability: SIGTERM stops the server with exit code 0', async () => {
  assertServerAlive();
  const exit = await server.stop('SIGTERM', 30000);
  assert(exit, `bora serve did not exit within 30 s of SIGTERM; log: ${server.tail(5)}`);
  assert(exit.code === 0, `bora serve ${server.exitText()} after SIGTERM; log: ${server.tail(5)}`);
}, { needs: ['up2'], timeoutS: 40 });

// === server 3: plain restart =====================================================================

await check('durability: after a plain restart the fine-tuned model is still served', async ({ signal }) => {
  if (server?.alive()) await server.stop('SIGKILL', 10000);
  await startServer();
  await checkFtCard({ signal });
  await v1.fineTuning.jobs.get({ jobId: state.jobB }, { signal });
  const w = wire('get');
  eq(w.status, 'SUCCESS', 'job status');
  eq(w.fine_tuned_model, state.ftModel, 'fine_tuned_model');
  const files = await v1.files.list({}, { signal });
  sameJson(files.data.map((f) => f.id).sort(), [state.trainFile, state.evalFile].sort(), 'file ids');
  const qs = trainingQuestions(4);
  if (state.ftAnswers) {
    const again = await chatText(state.ftModel, qs[0].question, signal);
    eq(again, state.ftAnswers[0], 'greedy answer of the fine-tuned model (same as before the restart)');
  } else {
    await chatText(state.ftModel, qs[0].question, signal);
  }
}, { needs: ['ftModel'], timeoutS: START_TIMEOUT_S + 60 });

if (server?.alive()) {
  const exit = await server.stop('SIGTERM', 30000);
  if (!exit) await server.stop('SIGKILL', 10000);
  if (VERBOSE || !exit || exit.code !== 0) console.log(`# last server: ${server.exitText()}`);
}

console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.stdout.write(`${passed} passed, ${failed} failed\n`, () => process.exit(failed > 0 ? 1 : 0));
