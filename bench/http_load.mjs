// HTTP load client for `bora serve`: N concurrent clients each stream R chat completions and the
// run reports aggregate output tokens/s and p50/p99 time to first token (Node 20+, no packages).
//
//   node bench/http_load.mjs --url http://127.0.0.1:8080 --model tiny [--clients 8]
//        [--requests 4] [--max-tokens 64] [--prompt-words 200] [--api-key K] [--json]
//
// Every request asks for exactly --max-tokens tokens of text (`ignore_eos` is not an API field,
// so the count is what the server reports in the final usage chunk). Time to first token is
// measured to the first chunk carrying content, from the moment the request is sent.

import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8080" },
    model: { type: "string" },
    clients: { type: "string", default: "8" },
    requests: { type: "string", default: "4" },
    "max-tokens": { type: "string", default: "64" },
    "prompt-words": { type: "string", default: "200" },
    "api-key": { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
});
if (!args.model) {
  console.error("usage: node bench/http_load.mjs --url URL --model ID [--clients 8] [--requests 4]");
  process.exit(2);
}
const clients = Number(args.clients);
const requestsPerClient = Number(args.requests);
const maxTokens = Number(args["max-tokens"]);
const promptWords = Number(args["prompt-words"]);

const kWords = ("the quick brown fox jumps over a lazy dog while seven engineers measure time " +
  "to first token under load on two small cores with continuous batching").split(" ");

function prompt(client, index) {
  // Distinct prompts per request (no prefix-cache help beyond the chat template).
  const words = [`Request ${client}-${index}:`];
  for (let i = 0; i < promptWords; ++i) words.push(kWords[(i * 7 + client * 3 + index) % kWords.length]);
  return words.join(" ");
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

async function streamOne(client, index) {
  const headers = { "Content-Type": "application/json" };
  if (args["api-key"]) headers.Authorization = `Bearer ${args["api-key"]}`;
  const body = {
    model: args.model,
    messages: [{ role: "user", content: prompt(client, index) }],
    max_tokens: maxTokens,
    temperature: 0.7,
    random_seed: client * 1000 + index,
    stream: true,
    stream_options: { include_usage: true },
  };
  const sent = performance.now();
  const response = await fetch(`${args.url}/v1/chat/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  }
  const decoder = new TextDecoder();
  let buffer = "";
  let ttft = null;
  let tokens = 0;
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") continue;
      const parsed = JSON.parse(data);
      const delta = parsed.choices?.[0]?.delta;
      if (ttft === null && delta && typeof delta.content === "string" && delta.content.length > 0) {
        ttft = performance.now() - sent;
      }
      if (parsed.usage) tokens = parsed.usage.completion_tokens;
    }
  }
  return { ttft: ttft ?? performance.now() - sent, tokens, seconds: (performance.now() - sent) / 1000 };
}

const start = performance.now();
const results = [];
let failures = 0;
await Promise.all(
  Array.from({ length: clients }, async (_, client) => {
    for (let index = 0; index < requestsPerClient; ++index) {
      try {
        results.push(await streamOne(client, index));
      } catch (error) {
        ++failures;
        console.error(`client ${client} request ${index}: ${error.message}`);
      }
    }
  }),
);
const wall = (performance.now() - start) / 1000;
const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
const totalTokens = results.reduce((sum, r) => sum + r.tokens, 0);
const summary = {
  clients,
  requests: results.length,
  failures,
  max_tokens: maxTokens,
  prompt_words: promptWords,
  output_tokens: totalTokens,
  wall_seconds: Number(wall.toFixed(2)),
  aggregate_tok_s: Number((totalTokens / wall).toFixed(2)),
  ttft_ms_p50: Number(percentile(ttfts, 50).toFixed(1)),
  ttft_ms_p99: Number(percentile(ttfts, 99).toFixed(1)),
};
if (args.json) {
  console.log(JSON.stringify(summary));
} else {
  console.log(
    `${clients} clients x ${requestsPerClient} streamed requests (${maxTokens} tokens each): ` +
      `${summary.aggregate_tok_s} tok/s aggregate, ttft p50 ${summary.ttft_ms_p50} ms, ` +
      `p99 ${summary.ttft_ms_p99} ms, ${failures} failed, ${summary.wall_seconds} s`,
  );
}
process.exit(failures > 0 ? 1 : 0);
