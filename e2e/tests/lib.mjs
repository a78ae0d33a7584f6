// lib.mjs: what the e2e tests share. e2e/run starts `keel sim` and `keel
// serve` and passes their addresses in the environment:
//
//	KEEL_URL    keel's API root, including /v1
//	KEEL_KEY    a valid keel API key
//	KEEL_KEY_B  another valid keel API key (per-key isolation)
//	SIM_URL     the simulator's API root, including /v1
//
// The expected answers never come from the tests themselves: oracle() asks
// the simulator directly, with the same request keel was sent.

import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests with e2e/run`);
  return v.replace(/\/+$/, '');
}

export const KEEL_URL = need('KEEL_URL');
export const KEEL_KEY = need('KEEL_KEY');
export const KEEL_KEY_B = need('KEEL_KEY_B');
export const SIM_URL = need('SIM_URL');
// KEEL_ROOT is keel's address without /v1: the Anthropic SDKs add /v1
// themselves.
export const KEEL_ROOT = KEEL_URL.replace(/\/v1$/, '');
const SIM_ROOT = SIM_URL.replace(/\/v1$/, '');

// ROUTES are the model names e2e/keel.yaml configures, each with its
// targets (provider/model) in order. The tests address keel by these names.
export const ROUTES = {
  chat: ['sim/e2e-chat'],
  'ai-sdk': ['sim/e2e-ai-sdk'],
  'rate-limited': ['sim/e2e-429'],
  'rate-limited-stream': ['sim/e2e-429-stream'],
  cut: ['sim/e2e-cut'],
  'cut-helper': ['sim/e2e-cut-helper'],
  'cut-whole': ['sim/e2e-cut-whole'],
  'failover-503': ['sim/e2e-503', 'backup/e2e-after-503'],
  'failover-503-stream': ['sim/e2e-503-stream', 'backup/e2e-after-503-stream'],
  'failover-reset': ['sim/e2e-reset', 'backup/e2e-after-reset'],
  'failover-reset-stream': ['sim/e2e-reset-stream', 'backup/e2e-after-reset-stream'],
  // Issue 4: one route per upstream wire format (provider sim: OpenAI,
  // ant: Anthropic, gem: Gemini) for each client API.
  'msg-openai': ['sim/e2e-msg-openai'],
  'msg-anthropic': ['ant/e2e-msg-anthropic'],
  'msg-gemini': ['gem/e2e-msg-gemini'],
  'resp-openai': ['sim/e2e-resp-openai'],
  'resp-anthropic': ['ant/e2e-resp-anthropic'],
  'resp-gemini': ['gem/e2e-resp-gemini'],
  'chat-anthropic': ['ant/e2e-chat-anthropic'],
  'chat-gemini': ['gem/e2e-chat-gemini'],
  embed: ['sim/e2e-embed'],
  'msg-overloaded': ['ant/e2e-529'],
  'msg-overloaded-stream': ['ant/e2e-529-stream'],
  'msg-cut-openai': ['sim/e2e-msg-cut-openai'],
  'msg-cut-anthropic': ['ant/e2e-msg-cut-anthropic'],
  'msg-cut-gemini': ['gem/e2e-msg-cut-gemini'],
  'msg-cut-raw': ['gem/e2e-msg-cut-raw'],
  'resp-cut': ['sim/e2e-resp-cut'],
  'resp-cut-raw': ['sim/e2e-resp-cut-raw'],
  'xv-failover': ['gem/e2e-gcut', 'backup/e2e-after-gcut'],
  'xv-failover-whole': ['gem/e2e-gcut-whole', 'backup/e2e-after-gcut-whole'],
  'xv-failover-restart': ['gem/e2e-gcut-restart', 'backup/e2e-after-gcut-restart'],
  'xv-failover-resp': ['gem/e2e-gcut-resp', 'backup/e2e-after-gcut-resp'],
  'xv-failover-max': ['gem/e2e-gcut-max', 'backup/e2e-after-gcut-max'],
  'filter-openai': ['sim/e2e-filter-openai'],
  'filter-anthropic': ['ant/e2e-filter-anthropic'],
  'filter-gemini': ['gem/e2e-filter-gemini'],
  'rate-limited-gemini': ['gem/e2e-429-gemini'],
};

// VENDORS are the upstream wire formats; route(api, vendor) names the
// route that serves a client API ('msg' or 'resp') from that vendor.
export const VENDORS = ['openai', 'anthropic', 'gemini'];
export const route = (api, vendor) => `${api}-${vendor}`;

// upstream returns the upstream model name of target i of a route.
export const upstream = (route, i = 0) => ROUTES[route][i].split('/')[1];

// client returns an openai SDK client for keel. SDK retries are off unless
// asked for, so that every failure the test sees is keel's own.
export function client(opts = {}) {
  return new OpenAI({ baseURL: KEEL_URL, apiKey: KEEL_KEY, maxRetries: 0, timeout: 20_000, ...opts });
}

// anthropic returns an @anthropic-ai/sdk client for keel (baseURL without
// /v1), SDK retries off.
export function anthropic(opts = {}) {
  return new Anthropic({ baseURL: KEEL_ROOT, apiKey: KEEL_KEY, maxRetries: 0, timeout: 20_000, ...opts });
}

// oracle sends body to the simulator directly, as a non-streaming request
// for an oracle profile (sim.yaml), and returns the parsed chat.completion.
// The simulator's answer depends only on the messages, tools, tool_choice,
// response_format and the profile's answer length, not on the model name or
// on streaming, so this is the canonical answer keel must relay.
export async function oracle(body, profile = 'oracle') {
  const { stream, stream_options, ...rest } = body;
  const res = await fetch(`${SIM_URL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...rest, model: profile }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `oracle: the simulator answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

// oracleText is the canonical text answer to body.
export async function oracleText(body, profile) {
  const r = await oracle(body, profile);
  const text = r.choices[0].message.content;
  assert.ok(typeof text === 'string' && text.endsWith('.'), `oracle: not a text answer: ${JSON.stringify(r)}`);
  return { text, usage: r.usage, completion: r };
}

// oracleMessage sends an Anthropic Messages body to the simulator's
// Anthropic endpoint directly, non-streaming, for an oracle profile, and
// returns the parsed message: the canonical answer in Anthropic's format.
export async function oracleMessage(body, profile = 'oracle') {
  const { stream, ...rest } = body;
  const res = await fetch(`${SIM_URL}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ ...rest, model: profile }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `oracle: the simulator answered ${res.status}: ${JSON.stringify(json)}`);
  assert.equal(json.type, 'message', `oracle: not a message: ${JSON.stringify(json)}`);
  return json;
}

// oracleEmbeddings asks the simulator directly for the embeddings of body
// (base64, the exact float32 bytes) and returns them as Float32Arrays, with
// the usage.
export async function oracleEmbeddings(body) {
  const res = await fetch(`${SIM_URL}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, model: 'oracle', encoding_format: 'base64' }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `oracle: the simulator answered ${res.status}: ${JSON.stringify(json)}`);
  const vectors = json.data
    .sort((a, b) => a.index - b.index)
    .map((d) => {
      // Copied: a pooled Buffer's offset need not be 4-aligned. The wire
      // is little-endian float32, as is every machine node runs on here.
      return new Float32Array(new Uint8Array(Buffer.from(d.embedding, 'base64')).buffer);
    });
  return { vectors, usage: json.usage };
}

// simRaw sends body to the simulator directly, unchanged, and returns the
// raw Response (for comparing keel's errors with the upstream's own).
export function simRaw(body) {
  return fetch(`${SIM_URL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

// attempts returns the simulator's attempt log for an upstream model name.
export async function attempts(model) {
  const res = await fetch(`${SIM_ROOT}/sim/attempts?model=${encodeURIComponent(model)}`);
  assert.equal(res.status, 200, `GET /sim/attempts: ${res.status}`);
  return res.json();
}

// newAttempts runs fn and returns its result with the attempts it caused
// for each of the given upstream models. It compares attempt numbers, so
// it does not depend on the log being empty or on /sim/reset (which would
// disturb test files running in parallel).
export async function newAttempts(models, fn) {
  const before = {};
  for (const m of models) before[m] = Math.max(0, ...(await attempts(m)).map((a) => a.number));
  const result = await fn();
  // The simulator writes an attempt's record when its handler returns,
  // which can be just after keel has read the last byte: wait for the
  // records to be final (every attempt has ended).
  const deadline = Date.now() + 5000;
  for (;;) {
    const after = {};
    for (const m of models) after[m] = (await attempts(m)).filter((a) => a.number > before[m]);
    const open = Object.values(after).flat().some((a) => !a.ended);
    if (!open || Date.now() > deadline) return { result, after };
    await new Promise((r) => setTimeout(r, 20));
  }
}

// prompt returns a user message unique to a test, so that every test has
// its own canonical answer and a mix-up between tests cannot pass.
export function prompt(name) {
  return [{ role: 'user', content: `keel e2e: ${name}. Answer in one sentence.` }];
}
