// Assertions and small helpers shared by the e2e suites in this folder (conformance.mjs,
// finetune_jobs.mjs): a failed check throws CheckError with a one-line reason.

export class CheckError extends Error {}

export function assert(cond, msg) {
  if (!cond) throw new CheckError(msg);
}
// JSON of `v` (Float32Array embeddings as arrays), cut to `max` characters.
export function show(v, max = 200) {
  let s;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, (_, x) => (x instanceof Float32Array ? Array.from(x) : x));
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > max ? `${s.slice(0, max)}...(${s.length} chars)` : s;
}
export function eq(actual, expected, what) {
  assert(actual === expected, `${what}: expected ${show(expected)}, got ${show(actual)}`);
}
export function isInt(x) {
  return typeof x === 'number' && Number.isInteger(x);
}
export function isNum(x) {
  return typeof x === 'number' && Number.isFinite(x);
}
export function isObj(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}
export function oneLine(s, max = 600) {
  return String(s).replace(/\s*\n\s*/g, ' | ').slice(0, max);
}
// The innermost `cause` (fetch wraps the socket error twice).
export function rootCause(e) {
  let c = e?.cause;
  while (c?.cause) c = c.cause;
  return c ? ` (cause: ${c.code ? `${c.code} ` : ''}${c.message ?? c})` : '';
}
// Runs `fn` and returns the error it throws; fails when it does not throw.
export async function expectError(fn, what) {
  try {
    const r = await fn();
    throw new CheckError(`${what}: expected an error, got success: ${show(r)}`);
  } catch (e) {
    if (e instanceof CheckError) throw e;
    return e;
  }
}
