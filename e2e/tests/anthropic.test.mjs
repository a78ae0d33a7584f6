// anthropic.test.mjs: the official @anthropic-ai/sdk judges keel's
// Anthropic Messages API (/v1/messages and /v1/messages/count_tokens; wire
// README §0, §3, §10), served from each upstream wire format (issue 4):
// OpenAI-compatible, Anthropic and Gemini, all the same simulator.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import {
  KEEL_KEY,
  KEEL_ROOT,
  ROUTES,
  VENDORS,
  anthropic,
  newAttempts,
  oracleMessage,
  route,
  upstream,
} from './lib.mjs';

// user is a conversation of one user message, unique to a test.
const user = (name) => [{ role: 'user', content: `keel e2e (anthropic): ${name}. Answer in one sentence.` }];

const TOOLS = [
  {
    name: 'get_weather',
    description: 'Current weather in a city',
    input_schema: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
    },
  },
  {
    name: 'book_table',
    description: 'Book a restaurant table',
    input_schema: {
      type: 'object',
      properties: {
        restaurant: { type: 'string' },
        guests: { type: 'integer', minimum: 1, maximum: 12 },
        outdoor: { type: 'boolean' },
      },
      required: ['restaurant', 'guests', 'outdoor'],
    },
  },
];
// The second tool, so that an answer naming it shows tool_choice reached
// the upstream (without it the simulator calls the first tool).
const TOOL_CHOICE = { type: 'tool', name: 'book_table' };

// textOf is the text of a message's content blocks.
const textOf = (m) =>
  m.content
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');

// assertText checks a message against the oracle's text answer.
function assertText(got, want) {
  assert.equal(got.type, 'message');
  assert.equal(got.role, 'assistant');
  assert.match(got.id, /^msg_/);
  assert.deepEqual(
    got.content.map((b) => b.type),
    ['text'],
  );
  assert.equal(textOf(got), textOf(want));
  assert.equal(got.stop_reason, 'end_turn');
  assert.equal(got.stop_sequence ?? null, null);
  assert.equal(got.usage.input_tokens, want.usage.input_tokens);
  assert.equal(got.usage.output_tokens, want.usage.output_tokens);
}

// assertToolUse checks a message holding one tool_use block against the
// oracle's: same tool, same input, and an input that fits the schema.
function assertToolUse(got, want) {
  assert.equal(got.stop_reason, 'tool_use');
  const calls = got.content.filter((b) => b.type === 'tool_use');
  assert.equal(calls.length, 1, `want one tool_use block, got ${JSON.stringify(got.content)}`);
  const [w] = want.content.filter((b) => b.type === 'tool_use');
  const [c] = calls;
  assert.equal(c.name, 'book_table');
  assert.equal(c.name, w.name);
  assert.ok(typeof c.id === 'string' && c.id.length > 0, `tool_use id: ${c.id}`);
  assert.equal(typeof c.input, 'object', `input is not an object: ${JSON.stringify(c.input)}`);
  assert.deepEqual(c.input, w.input);
  assert.equal(typeof c.input.restaurant, 'string');
  assert.ok(Number.isInteger(c.input.guests) && c.input.guests >= 1 && c.input.guests <= 12, `guests: ${c.input.guests}`);
  assert.equal(typeof c.input.outdoor, 'boolean');
  return c;
}

// streamed runs messages.stream(body) to its end and returns the final
// message, the text deltas, the stream's event types, and the error if it
// failed.
async function streamed(body, client = anthropic()) {
  const s = client.messages.stream(body);
  const got = { text: '', events: [], inputJSON: '', final: null, error: null, response: null };
  s.on('text', (d) => (got.text += d));
  s.on('inputJson', (d) => (got.inputJSON += d));
  s.on('streamEvent', (e) => got.events.push(e.type));
  try {
    got.final = await s.finalMessage();
  } catch (e) {
    got.error = e;
  }
  return got;
}

// assertEventOrder checks a complete message stream's event sequence (wire
// README §3): message_start, then blocks (start, deltas, stop), then
// message_delta and message_stop, each exactly once where it must be.
function assertEventOrder(events) {
  const seq = events.filter((t) => t !== 'ping');
  assert.equal(seq[0], 'message_start', `events: ${seq}`);
  assert.equal(seq.at(-1), 'message_stop', `events: ${seq}`);
  assert.equal(seq.at(-2), 'message_delta', `events: ${seq}`);
  assert.equal(seq.filter((t) => t === 'message_start').length, 1);
  assert.equal(seq.filter((t) => t === 'message_stop').length, 1);
  let open = false;
  for (const t of seq.slice(1, -2)) {
    if (t === 'content_block_start') {
      assert.ok(!open, `a block started inside another: ${seq}`);
      open = true;
    } else if (t === 'content_block_delta') {
      assert.ok(open, `a delta outside a block: ${seq}`);
    } else if (t === 'content_block_stop') {
      assert.ok(open, `a block stopped twice: ${seq}`);
      open = false;
    } else {
      assert.fail(`unexpected event ${t} in ${seq}`);
    }
  }
  assert.ok(!open, `a block was never stopped: ${seq}`);
}

for (const vendor of VENDORS) {
  const model = route('msg', vendor);
  describe(`anthropic messages from a ${vendor} upstream (${ROUTES[model][0]})`, () => {
    test('messages.create returns the canonical answer', async () => {
      const body = { model, max_tokens: 1024, messages: user(`create ${vendor}`) };
      const want = await oracleMessage(body);
      const { data: m, response } = await anthropic().messages.create(body).withResponse();
      assertText(m, want);
      assert.equal(response.headers.get('x-keel-target'), ROUTES[model][0]);
    });

    test('messages.stream: finalMessage and the text deltas give the canonical answer', async () => {
      const body = { model, max_tokens: 1024, messages: user(`stream ${vendor}`) };
      const want = await oracleMessage(body);
      const got = await streamed(body);
      assert.equal(got.error, null, `the stream failed: ${got.error?.message}`);
      assertText(got.final, want);
      assert.equal(got.text, textOf(want));
      assertEventOrder(got.events);
      assert.ok(got.events.filter((t) => t === 'content_block_delta').length > 3, 'want a real stream');
    });

    test('system prompt and a multi-turn conversation', async () => {
      const body = {
        model,
        max_tokens: 1024,
        system: [{ type: 'text', text: 'You are terse.' }],
        messages: [
          ...user(`multi-turn ${vendor}`),
          { role: 'assistant', content: 'Earlier answer.' },
          { role: 'user', content: [{ type: 'text', text: 'And then?' }] },
        ],
      };
      const want = await oracleMessage(body);
      // The system prompt and the earlier turns reach the upstream: the
      // answer to the last message alone would differ.
      const alone = await oracleMessage({ ...body, system: undefined, messages: body.messages.slice(-1) });
      assert.notEqual(textOf(alone), textOf(want));
      assertText(await anthropic().messages.create(body), want);
    });

    test('max_tokens cuts the answer: stop_reason max_tokens', async () => {
      const body = { model, max_tokens: 5, messages: user(`max tokens ${vendor}`) };
      const want = await oracleMessage(body);
      assert.equal(want.stop_reason, 'max_tokens');
      for (const m of [await anthropic().messages.create(body), (await streamed(body)).final]) {
        assert.equal(m.stop_reason, 'max_tokens');
        assert.equal(textOf(m), textOf(want));
        assert.equal(m.usage.output_tokens, 5);
      }
    });

    test('tool call, non-streaming: a tool_use block with the parsed input', async () => {
      const body = { model, max_tokens: 1024, messages: user(`tool ${vendor}`), tools: TOOLS, tool_choice: TOOL_CHOICE };
      const want = await oracleMessage(body);
      assertToolUse(await anthropic().messages.create(body), want);
    });

    test('tool call, streamed: input_json deltas accumulate into the parsed input', async () => {
      const body = { model, max_tokens: 1024, messages: user(`streamed tool ${vendor}`), tools: TOOLS, tool_choice: TOOL_CHOICE };
      const want = await oracleMessage(body);
      const got = await streamed(body);
      assert.equal(got.error, null, `the stream failed: ${got.error?.message}`);
      assertToolUse(got.final, want);
      assertEventOrder(got.events);
      assert.deepEqual(JSON.parse(got.inputJSON), got.final.content.find((b) => b.type === 'tool_use').input);
    });

    test('tool_result turn: the answer to the whole exchange', async () => {
      const first = { model, max_tokens: 1024, messages: user(`tool result ${vendor}`), tools: TOOLS };
      const m = await anthropic().messages.create(first);
      assert.equal(m.stop_reason, 'tool_use');
      const call = m.content.find((b) => b.type === 'tool_use');
      const body = {
        ...first,
        messages: [
          ...first.messages,
          { role: 'assistant', content: m.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temperature": 21}' }] },
        ],
      };
      const want = await oracleMessage(body);
      assert.equal(want.stop_reason, 'end_turn');
      assertText(await anthropic().messages.create(body), want);
    });

    test('messages.countTokens returns a positive count that grows with the prompt', async () => {
      const short = await anthropic().messages.countTokens({ model, messages: user('count') });
      const { data: long, response } = await anthropic()
        .messages.countTokens({
          model,
          system: 'You are terse.',
          messages: user(`count ${'many more words in this prompt '.repeat(20)}`),
          tools: TOOLS,
        })
        .withResponse();
      assert.ok(Number.isInteger(short.input_tokens) && short.input_tokens > 0, `short: ${JSON.stringify(short)}`);
      assert.ok(long.input_tokens > short.input_tokens, `long ${long.input_tokens} <= short ${short.input_tokens}`);
      assert.match(response.headers.get('x-keel-token-count') ?? '', /^(upstream|estimate)$/);
    });
  });
}

describe('anthropic response headers', () => {
  // Wire README §3: Anthropic answers carry request-id, which the SDKs
  // expose as _request_id (and put in their errors) for support requests.
  // Regression: keel sent only x-request-id.
  test(
    'a message carries a request-id header (the SDK’s _request_id)',
    async () => {
      const m = await anthropic().messages.create({ model: 'msg-openai', max_tokens: 64, messages: user('request id') });
      assert.ok(m._request_id, `_request_id is ${m._request_id}`);
    },
  );
});

describe('anthropic auth', () => {
  test('a bad keel key raises AuthenticationError (401)', async () => {
    const c = anthropic({ apiKey: 'sk-keel-not-a-real-key' });
    const body = { model: 'msg-openai', max_tokens: 64, messages: user('bad key') };
    for (const call of [
      () => c.messages.create(body),
      () => c.messages.stream(body).finalMessage(),
      () => c.messages.countTokens({ model: body.model, messages: body.messages }),
    ]) {
      await assert.rejects(call(), (e) => {
        assert.ok(e instanceof Anthropic.AuthenticationError, `got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.status, 401);
        assert.equal(e.error?.type, 'error');
        assert.equal(e.error?.error?.type, 'authentication_error');
        return true;
      });
    }
  });

  // Wire README §3: older SDKs and the docs send x-api-key, newer SDKs
  // Authorization: Bearer; any anthropic-version goes.
  for (const [name, headers, status] of [
    ['x-api-key', { 'x-api-key': KEEL_KEY, 'anthropic-version': '2023-06-01' }, 200],
    ['Authorization: Bearer', { authorization: `Bearer ${KEEL_KEY}`, 'anthropic-version': '2026-10-21' }, 200],
    ['no key', { 'anthropic-version': '2023-06-01' }, 401],
    ['a wrong x-api-key', { 'x-api-key': 'sk-keel-wrong', 'anthropic-version': '2023-06-01' }, 401],
  ]) {
    test(`raw request with ${name} → ${status}`, async () => {
      const res = await fetch(`${KEEL_ROOT}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'msg-openai', max_tokens: 64, messages: user(`raw ${name}`) }),
      });
      const body = await res.json();
      assert.equal(res.status, status, JSON.stringify(body));
      if (status === 401) {
        // Anthropic's envelope, not OpenAI's.
        assert.equal(body.type, 'error');
        assert.equal(body.error?.type, 'authentication_error');
        assert.equal(typeof body.error?.message, 'string');
      } else {
        assert.equal(body.type, 'message');
      }
    });
  }
});

describe('anthropic errors', () => {
  for (const [model, stream] of [
    ['msg-overloaded', false],
    ['msg-overloaded-stream', true],
  ]) {
    test(`an upstream that is always overloaded (529) raises OverloadedError (stream=${stream})`, async () => {
      const body = { model, max_tokens: 64, messages: user(`overloaded stream=${stream}`) };
      const check = (e) => {
        assert.ok(e instanceof Anthropic.APIError, `got ${e?.constructor?.name}: ${e?.message}`);
        assert.ok(
          e instanceof Anthropic.OverloadedError || e.error?.error?.type === 'overloaded_error',
          `got ${e.constructor.name} ${e.status}: ${JSON.stringify(e.error)}`,
        );
        assert.equal(e.error?.type, 'error', `not Anthropic's envelope: ${JSON.stringify(e.error)}`);
        return true;
      };
      const { after } = await newAttempts([upstream(model)], () =>
        assert.rejects(stream ? anthropic().messages.stream(body).finalMessage() : anthropic().messages.create(body), check),
      );
      // The upstream really was asked: the error is its answer, relayed.
      const a = after[upstream(model)];
      assert.ok(a.length >= 1, `attempts: ${JSON.stringify(a)}`);
      for (const x of a) assert.equal(x.status, 529);
    });
  }

  for (const vendor of VENDORS) {
    const model = `msg-cut-${vendor}`;
    test(`a stream cut mid-answer with no fallback (${vendor} upstream) throws an in-band error`, async () => {
      const body = { model, max_tokens: 4096, messages: user(`cut ${vendor}`) };
      const want = textOf(await oracleMessage(body, 'oracle-long'));
      const got = await streamed(body);
      const e = got.error;
      assert.ok(e, `the stream ended cleanly: ${JSON.stringify(got.final)?.slice(0, 200)}`);
      // event: error is an APIError; a dropped connection or a stream that
      // just stops would be another error.
      assert.ok(e instanceof Anthropic.APIError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.ok(!(e instanceof Anthropic.APIConnectionError), `the connection broke instead: ${e.message}`);
      assert.equal(e.error?.type, 'error');
      assert.equal(typeof e.error?.error?.type, 'string');
      assert.equal(typeof e.error?.error?.message, 'string');
      assert.ok(!got.events.includes('message_stop'), `events: ${got.events}`);
      assert.ok(!got.events.includes('message_delta'), 'a cut answer must not carry a stop_reason');
      assert.ok(got.text.length > 0, 'the cut should come mid-answer, after some text');
      assert.ok(want.startsWith(got.text) && got.text.length < want.length, `not a strict prefix: ${JSON.stringify(got.text)}`);
    });
  }

  test('a cut stream on the wire: its last event is event: error', async () => {
    const res = await fetch(`${KEEL_ROOT}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEEL_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'msg-cut-raw', max_tokens: 4096, stream: true, messages: user('cut raw') }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const raw = await res.text();
    assert.ok(raw.endsWith('\n\n'), 'the last event must end with a blank line (wire README §0)');
    const events = raw
      .trim()
      .split('\n\n')
      .map((e) => Object.fromEntries(e.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()])));
    for (const e of events) assert.ok(e.event, `an event without an event: line: ${JSON.stringify(e)}`);
    const last = events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(JSON.parse(last.data).type, 'error');
    assert.equal(events[0].event, 'message_start');
  });

  test('an unknown model raises NotFoundError (404)', async () => {
    await assert.rejects(anthropic().messages.create({ model: 'no-such-route', max_tokens: 64, messages: user('404') }), (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.error?.error?.type, 'not_found_error');
      return true;
    });
  });

  test('a request without max_tokens raises BadRequestError (400)', async () => {
    await assert.rejects(anthropic().messages.create({ model: 'msg-openai', messages: user('400') }), (e) => {
      assert.ok(e instanceof Anthropic.BadRequestError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.error?.error?.type, 'invalid_request_error');
      return true;
    });
  });
});
