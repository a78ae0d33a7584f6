// openai.test.mjs: the official openai JS SDK judges keel's OpenAI Chat
// Completions wire format (wire README §0, §1, §10), talking to a running
// keel in front of `keel sim` (see e2e/run).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import {
  KEEL_URL,
  ROUTES,
  client,
  newAttempts,
  oracle,
  oracleText,
  prompt,
  simRaw,
  upstream,
} from './lib.mjs';

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'book_table',
      description: 'Book a restaurant table',
      parameters: {
        type: 'object',
        properties: {
          restaurant: { type: 'string' },
          guests: { type: 'integer', minimum: 1, maximum: 12 },
          outdoor: { type: 'boolean' },
        },
        required: ['restaurant', 'guests', 'outdoor'],
        additionalProperties: false,
      },
    },
  },
];
// The second tool, so that an answer naming it shows tool_choice reached
// the upstream (without it the simulator calls the first tool).
const TOOL_CHOICE = { type: 'function', function: { name: 'book_table' } };

// Booking is the structured-output schema; its JSON Schema (via zod) goes
// out as response_format json_schema.
const Booking = z.object({
  restaurant: z.string(),
  guests: z.number().int().min(1).max(12),
  seating: z.enum(['indoor', 'outdoor', 'bar']),
  confirmed: z.boolean(),
  notes: z.array(z.string()),
});

// assertToolCallsMatch checks tool calls against the oracle's: same
// function name, id and arguments, and arguments that parse as JSON
// satisfying the tool's schema.
function assertToolCallsMatch(got, want) {
  assert.equal(got?.length, 1, `want one tool call, got ${JSON.stringify(got)}`);
  const [g] = got;
  const [w] = want;
  assert.equal(g.type, 'function');
  assert.equal(g.function.name, 'book_table');
  assert.equal(g.function.name, w.function.name);
  assert.equal(g.id, w.id);
  const args = JSON.parse(g.function.arguments);
  assert.deepEqual(args, JSON.parse(w.function.arguments));
  assert.equal(typeof args.restaurant, 'string');
  assert.ok(Number.isInteger(args.guests) && args.guests >= 1 && args.guests <= 12, `guests: ${args.guests}`);
  assert.equal(typeof args.outdoor, 'boolean');
}

// collect reads a chat stream to its end, keeping what came before a
// failure; it returns the error thrown, if any.
async function collect(stream) {
  const got = { text: '', finish: null, error: null };
  try {
    for await (const ch of stream) {
      got.text += ch.choices[0]?.delta?.content ?? '';
      got.finish = ch.choices[0]?.finish_reason ?? got.finish;
    }
  } catch (e) {
    got.error = e;
  }
  return got;
}

// assertInBandError checks that e is the SDK's error for an in-band
// {"error":...} event, not a dropped connection.
function assertInBandError(e) {
  assert.ok(e, 'the stream ended cleanly: a cut answer must end with an error');
  assert.ok(e instanceof OpenAI.APIError, `got ${e?.constructor?.name}: ${e?.message}`);
  assert.ok(!(e instanceof OpenAI.APIConnectionError), `the connection broke instead: ${e.message}`);
  assert.equal(typeof e.error?.message, 'string', 'the in-band error has no message');
}

describe('chat completions', () => {
  test('non-streaming chat returns the canonical answer', async () => {
    const body = { model: 'chat', messages: prompt('non-streaming chat') };
    const want = await oracleText(body);
    const { data: r, response } = await client().chat.completions.create(body).withResponse();
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, want.text);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, want.usage.prompt_tokens);
    assert.equal(r.usage.completion_tokens, want.usage.completion_tokens);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.ok(response.headers.get('x-request-id'), 'x-request-id is missing');
    assert.equal(response.headers.get('x-keel-target'), ROUTES.chat[0]);
  });

  test('streaming chat with include_usage accumulates the canonical answer', async () => {
    const body = {
      model: 'chat',
      messages: prompt('streaming chat with usage'),
      stream: true,
      stream_options: { include_usage: true },
    };
    const want = await oracleText(body);
    const { data: stream, response } = await client().chat.completions.create(body).withResponse();
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    let text = '';
    let finish = null;
    let chunks = 0;
    const ids = new Set();
    const usages = [];
    for await (const ch of stream) {
      chunks++;
      ids.add(ch.id);
      assert.equal(ch.object, 'chat.completion.chunk');
      const c = ch.choices[0];
      text += c?.delta?.content ?? '';
      if (c?.finish_reason) {
        assert.equal(finish, null, 'finish_reason sent twice');
        finish = c.finish_reason;
      }
      if (ch.usage) {
        assert.deepEqual(ch.choices, [], 'the usage chunk must have choices: []');
        usages.push(ch.usage);
      }
    }
    assert.equal(text, want.text);
    assert.equal(finish, 'stop');
    assert.ok(chunks > 3, `want a real stream, got ${chunks} chunks`);
    assert.equal(ids.size, 1, `every chunk must share one id, got ${[...ids]}`);
    assert.equal(usages.length, 1, `want exactly one usage chunk, got ${usages.length}`);
    assert.equal(usages[0].prompt_tokens, want.usage.prompt_tokens);
    assert.equal(usages[0].completion_tokens, want.usage.completion_tokens);
    assert.equal(usages[0].total_tokens, usages[0].prompt_tokens + usages[0].completion_tokens);
  });

  test('stream helper: finalChatCompletion assembles the canonical answer', async () => {
    const body = { model: 'chat', messages: prompt('stream helper'), stream_options: { include_usage: true } };
    const want = await oracleText(body);
    const s = client().chat.completions.stream(body);
    let deltas = '';
    let snapshot = '';
    s.on('content.delta', (e) => {
      deltas += e.delta;
      snapshot = e.snapshot;
    });
    const final = await s.finalChatCompletion();
    assert.equal(final.choices[0].message.content, want.text);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(deltas, want.text);
    assert.equal(snapshot, want.text);
    assert.equal(await s.finalContent(), want.text);
    assert.equal(final.usage?.completion_tokens, want.usage.completion_tokens);
  });

  test('tool call, non-streaming: tool_choice honoured, arguments are JSON', async () => {
    const body = { model: 'chat', messages: prompt('tool call'), tools: TOOLS, tool_choice: TOOL_CHOICE };
    const want = await oracle(body);
    const r = await client().chat.completions.create(body);
    const msg = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.content, null);
    assertToolCallsMatch(msg.tool_calls, want.choices[0].message.tool_calls);
  });

  test('tool call, streamed: raw deltas and finalChatCompletion', async () => {
    const body = { model: 'chat', messages: prompt('streamed tool call'), tools: TOOLS, tool_choice: TOOL_CHOICE };
    const want = await oracle(body);

    // Raw chunks: concatenate argument fragments per index (README §1.3).
    // Whether keel relays the upstream's fragments or holds the call and
    // sends it whole (router.Policy.HoldToolCalls) is its choice; both are
    // valid on the wire.
    const calls = [];
    let finish = null;
    for await (const ch of await client().chat.completions.create({ ...body, stream: true })) {
      const c = ch.choices[0];
      if (c?.finish_reason) finish = c.finish_reason;
      for (const d of c?.delta?.tool_calls ?? []) {
        const call = (calls[d.index] ??= { id: '', type: '', function: { name: '', arguments: '' } });
        if (d.id) call.id = d.id;
        if (d.type) call.type = d.type;
        if (d.function?.name) call.function.name += d.function.name;
        call.function.arguments += d.function?.arguments ?? '';
      }
    }
    assert.equal(finish, 'tool_calls');
    assertToolCallsMatch(calls, want.choices[0].message.tool_calls);

    // The SDK's accumulating helper, with its argument events.
    const s = client().chat.completions.stream(body);
    let doneArgs;
    s.on('tool_calls.function.arguments.done', (e) => (doneArgs = e.arguments));
    const final = await s.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assertToolCallsMatch(final.choices[0].message.tool_calls, want.choices[0].message.tool_calls);
    assert.deepEqual(JSON.parse(doneArgs ?? 'null'), JSON.parse(want.choices[0].message.tool_calls[0].function.arguments));
  });

  test('response_format json_schema: content parses and matches the schema', async () => {
    const body = {
      model: 'chat',
      messages: prompt('json schema'),
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'booking', strict: true, schema: z.toJSONSchema(Booking) },
      },
    };
    const want = await oracle(body);
    const r = await client().chat.completions.create(body);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const got = JSON.parse(r.choices[0].message.content);
    Booking.parse(got);
    assert.deepEqual(got, JSON.parse(want.choices[0].message.content));
  });

  test('chat.completions.parse with zodResponseFormat', async () => {
    const body = {
      model: 'chat',
      messages: prompt('zod parse'),
      response_format: zodResponseFormat(Booking, 'booking'),
    };
    const want = await oracle(body);
    const r = await client().chat.completions.parse(body);
    const msg = r.choices[0].message;
    assert.equal(msg.refusal ?? null, null);
    assert.ok(msg.parsed, `nothing parsed from ${JSON.stringify(msg.content)}`);
    assert.deepEqual(msg.parsed, Booking.parse(JSON.parse(want.choices[0].message.content)));
  });
});

// Issue 4: the same Chat Completions client, served from Anthropic's and
// Gemini's formats. (Tool call ids are the upstream's own, or keel's where
// Gemini has none, so they are not compared with the oracle's.)
for (const route of ['chat-anthropic', 'chat-gemini']) {
  describe(`chat completions from ${ROUTES[route][0]}`, () => {
    test('non-streaming and streaming chat return the canonical answer', async () => {
      const body = { model: route, messages: prompt(`${route} chat`) };
      const want = await oracleText(body);
      const r = await client().chat.completions.create(body);
      assert.equal(r.choices[0].message.content, want.text);
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.equal(r.usage.prompt_tokens, want.usage.prompt_tokens);
      assert.equal(r.usage.completion_tokens, want.usage.completion_tokens);
      const got = await collect(await client().chat.completions.create({ ...body, stream: true }));
      assert.equal(got.error, null);
      assert.equal(got.text, want.text);
      assert.equal(got.finish, 'stop');
    });

    test('tool call, streamed and not: tool_choice honoured, arguments are the oracle’s', async () => {
      const body = { model: route, messages: prompt(`${route} tool call`), tools: TOOLS, tool_choice: TOOL_CHOICE };
      const want = await oracle(body);
      const [w] = want.choices[0].message.tool_calls;
      const r = await client().chat.completions.create(body);
      const final = await client().chat.completions.stream(body).finalChatCompletion();
      for (const c of [r.choices[0], final.choices[0]]) {
        assert.equal(c.finish_reason, 'tool_calls');
        assert.equal(c.message.tool_calls?.length, 1, JSON.stringify(c.message));
        const [g] = c.message.tool_calls;
        assert.equal(g.function.name, w.function.name);
        assert.ok(g.id, 'the tool call has no id');
        assert.deepEqual(JSON.parse(g.function.arguments), JSON.parse(w.function.arguments));
      }
    });
  });
}

describe('models', () => {
  test('models.list() lists every configured route', async () => {
    const ids = [];
    for await (const m of client().models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    for (const route of Object.keys(ROUTES)) assert.ok(ids.includes(route), `route ${route} missing from ${ids}`);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids}`);
  });
});

describe('errors', () => {
  test('a bad keel key raises AuthenticationError (401)', async () => {
    const c = client({ apiKey: 'sk-keel-not-a-real-key' });
    await assert.rejects(c.chat.completions.create({ model: 'chat', messages: prompt('bad key') }), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 401);
      assert.equal(typeof e.error?.message, 'string');
      return true;
    });
    await assert.rejects(c.models.list(), OpenAI.AuthenticationError);
  });

  test('a missing key gets a 401 OpenAI error envelope', async () => {
    const res = await fetch(`${KEEL_URL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: prompt('missing key') }),
    });
    assert.equal(res.status, 401);
    const body = await res.json();
    // README §10: all four keys present (nullable).
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(typeof body.error.message, 'string');
  });

  for (const [route, stream] of [
    ['rate-limited', false],
    ['rate-limited-stream', true],
  ]) {
    test(`an upstream 429 raises RateLimitError with the upstream's retry-after (stream=${stream})`, async () => {
      const body = { model: route, messages: prompt(`rate limited stream=${stream}`), stream };
      // What the upstream itself says, to compare with what keel relays.
      const up = await simRaw({ ...body, model: upstream(route) });
      assert.equal(up.status, 429);
      const upRetry = up.headers.get('retry-after');
      const upBody = await up.json();
      assert.ok(upRetry, 'the simulator sent no retry-after: check sim.yaml');

      await assert.rejects(client().chat.completions.create(body), (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.status, 429);
        assert.equal(e.headers.get('retry-after'), upRetry);
        assert.equal(e.code, upBody.error.code);
        return true;
      });
    });
  }

  test('a stream cut mid-answer with no fallback throws, never ends cleanly', async () => {
    const body = { model: 'cut', messages: prompt('cut stream'), stream: true };
    const want = await oracleText(body, 'oracle-long');
    const got = await collect(await client().chat.completions.create(body));
    assertInBandError(got.error);
    assert.equal(got.finish, null, 'a cut answer must not carry a finish_reason');
    assert.ok(got.text.length > 0, 'the cut should come mid-answer, after some text');
    assert.ok(
      want.text.startsWith(got.text) && got.text.length < want.text.length,
      `not a strict prefix of the answer: ${JSON.stringify(got.text)}`,
    );
  });

  test('stream helper: a cut answer rejects finalChatCompletion', async () => {
    const body = { model: 'cut-helper', messages: prompt('cut stream helper') };
    const want = await oracleText(body, 'oracle-long');
    const s = client().chat.completions.stream(body);
    let text = '';
    s.on('content.delta', (e) => (text += e.delta));
    let error = null;
    await s.finalChatCompletion().catch((e) => (error = e));
    assertInBandError(error);
    assert.ok(text.length > 0 && want.text.startsWith(text) && text.length < want.text.length, `text: ${JSON.stringify(text)}`);
  });

  test('a non-streaming answer cut mid-body raises an APIError', async () => {
    await assert.rejects(client().chat.completions.create({ model: 'cut-whole', messages: prompt('cut whole') }), (e) => {
      assert.ok(e instanceof OpenAI.APIError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.ok(e.status >= 500, `status ${e.status}`);
      return true;
    });
  });
});

describe('failover', () => {
  // primaryMax is how many attempts keel may spend on the failing primary
  // before it fails over: a 503 is retried once on the same target, a
  // reset connection fails over at once (router/failure.go, issue 3).
  const cases = [
    { route: 'failover-503', stream: false, status: 503, fault: 'http_error', primaryMax: 2 },
    { route: 'failover-503-stream', stream: true, status: 503, fault: 'http_error', primaryMax: 2 },
    { route: 'failover-reset', stream: false, status: 0, fault: 'reset', primaryMax: 1 },
    { route: 'failover-reset-stream', stream: true, status: 0, fault: 'reset', primaryMax: 1 },
  ];
  for (const { route, stream, status, fault, primaryMax } of cases) {
    test(`${route}: the fallback answers in full`, async () => {
      const [, fallback] = ROUTES[route];
      const [primaryModel, fallbackModel] = [upstream(route, 0), upstream(route, 1)];
      const body = { model: route, messages: prompt(route), stream };
      const want = await oracleText(body);
      const { result, after } = await newAttempts([primaryModel, fallbackModel], async () => {
        const { data, response } = await client().chat.completions.create(body).withResponse();
        const target = response.headers.get('x-keel-target');
        if (stream) return { ...(await collect(data)), target };
        return { text: data.choices[0].message.content, finish: data.choices[0].finish_reason, target };
      });
      assert.equal(result.error ?? null, null);
      assert.equal(result.text, want.text);
      assert.equal(result.finish, 'stop');
      assert.equal(result.target, fallback);

      const p = after[primaryModel];
      const f = after[fallbackModel];
      assert.ok(p.length >= 1 && p.length <= primaryMax, `want 1..${primaryMax} primary attempts, got ${JSON.stringify(p)}`);
      for (const a of p) {
        assert.equal(a.status, status);
        assert.equal(a.fault, fault);
        assert.equal(a.completed, false);
      }
      assert.equal(f.length, 1, `want one fallback attempt, got ${JSON.stringify(f)}`);
      assert.equal(f[0].status, 200);
      assert.equal(f[0].fault, undefined);
      assert.equal(f[0].completed, true);
      assert.ok(Date.parse(f[0].arrived) >= Date.parse(p[0].arrived), 'the fallback must come after the primary');
    });
  }
});
