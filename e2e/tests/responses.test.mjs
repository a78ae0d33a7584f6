// responses.test.mjs: the official openai JS SDK judges keel's OpenAI
// Responses API (/v1/responses; wire README §0, §2, §10), served from each
// upstream wire format (issue 4), and its stored responses: a conversation
// continues by previous_response_id under the key that stored it, and
// under no other.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { KEEL_KEY, KEEL_KEY_B, KEEL_URL, ROUTES, VENDORS, client, oracle, oracleText, route } from './lib.mjs';

// say is the user text of a test, unique to it.
const say = (name) => `keel e2e (responses): ${name}. Answer in one sentence.`;

// Tools are flat in the Responses API (wire README §2).
const TOOLS = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
    strict: true,
  },
  {
    type: 'function',
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
    strict: true,
  },
];
// The same tools in Chat Completions' nested shape, for the oracle.
const CHAT_TOOLS = TOOLS.map(({ type, strict, ...fn }) => ({ type, function: fn }));

const Booking = z.object({
  restaurant: z.string(),
  guests: z.number().int().min(1).max(12),
  seating: z.enum(['indoor', 'outdoor', 'bar']),
  confirmed: z.boolean(),
  notes: z.array(z.string()),
});

// assertCompleted checks a completed text response against the oracle.
// output_text is the SDK's own convenience (the wire has only output), set
// on what create() and finalResponse() return, not on streamed events.
function assertCompleted(r, want) {
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'completed');
  assert.equal(r.error ?? null, null);
  const messages = r.output.filter((o) => o.type === 'message');
  assert.equal(messages.length, 1, `output: ${JSON.stringify(r.output)}`);
  assert.equal(messages[0].role, 'assistant');
  assert.equal(messages[0].status, 'completed');
  assert.deepEqual(
    messages[0].content.map((c) => c.type),
    ['output_text'],
  );
  assert.equal(messages[0].content[0].text, want.text);
  if ('output_text' in r) assert.equal(r.output_text, want.text);
  assert.equal(r.usage.input_tokens, want.usage.prompt_tokens);
  assert.equal(r.usage.output_tokens, want.usage.completion_tokens);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
}

// callOf returns a response's one function_call item, checked against the
// oracle's tool call (a chat.completion).
function callOf(r, want) {
  const calls = r.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, `want one function_call, got ${JSON.stringify(r.output)}`);
  const [c] = calls;
  const w = want.choices[0].message.tool_calls[0];
  assert.equal(c.name, w.function.name);
  assert.ok(typeof c.call_id === 'string' && c.call_id.length > 0, `call_id: ${c.call_id}`);
  assert.deepEqual(JSON.parse(c.arguments), JSON.parse(w.function.arguments));
  return c;
}

// events reads a Responses stream to its end (or its error) and returns
// the events and the error thrown, if any.
async function events(stream) {
  const got = { events: [], error: null };
  try {
    for await (const e of stream) got.events.push(e);
  } catch (e) {
    got.error = e;
  }
  return got;
}

// assertEventSequence checks a complete text stream (wire README §2):
// created, in_progress, the item and part opened, deltas, everything
// closed, and response.completed last, with increasing sequence numbers.
function assertEventSequence(evs) {
  const types = evs.map((e) => e.type);
  const deltas = types.filter((t) => t === 'response.output_text.delta').length;
  assert.ok(deltas > 3, `want a real stream, got ${deltas} deltas`);
  assert.deepEqual(types, [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    ...Array(deltas).fill('response.output_text.delta'),
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  for (let i = 1; i < evs.length; i++) {
    assert.ok(evs[i].sequence_number > evs[i - 1].sequence_number, `sequence_number not increasing at ${i}`);
  }
}

for (const vendor of VENDORS) {
  const model = route('resp', vendor);
  describe(`responses from a ${vendor} upstream (${ROUTES[model][0]})`, () => {
    test('responses.create: output_text is the canonical answer', async () => {
      const input = say(`create ${vendor}`);
      const want = await oracleText({ messages: [{ role: 'user', content: input }] });
      const { data: r, response } = await client().responses.create({ model, input }).withResponse();
      assertCompleted(r, want);
      assert.equal(response.headers.get('x-keel-target'), ROUTES[model][0]);
    });

    test('instructions and input items reach the upstream', async () => {
      const body = {
        model,
        instructions: 'You are terse.',
        input: [
          { role: 'user', content: [{ type: 'input_text', text: say(`items ${vendor}`) }] },
          { role: 'assistant', content: [{ type: 'output_text', text: 'Earlier answer.' }] },
          { role: 'user', content: 'And then?' },
        ],
      };
      const want = await oracleText({
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: say(`items ${vendor}`) },
          { role: 'assistant', content: 'Earlier answer.' },
          { role: 'user', content: 'And then?' },
        ],
      });
      assertCompleted(await client().responses.create(body), want);
    });

    test('stream: true: the full event sequence, ending with response.completed', async () => {
      const input = say(`stream ${vendor}`);
      const want = await oracleText({ messages: [{ role: 'user', content: input }] });
      const { data: stream, response } = await client().responses.create({ model, input, stream: true }).withResponse();
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const got = await events(stream);
      assert.equal(got.error, null, `the stream failed: ${got.error?.message}`);
      assertEventSequence(got.events);
      const text = got.events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
      assert.equal(text, want.text);
      assert.equal(got.events.find((e) => e.type === 'response.output_text.done').text, want.text);
      const created = got.events[0].response;
      const completed = got.events.at(-1).response;
      assert.equal(created.status, 'in_progress');
      assert.equal(completed.id, created.id);
      assertCompleted(completed, want);
    });

    test('responses.stream(): finalResponse and the delta events', async () => {
      const input = say(`stream helper ${vendor}`);
      const want = await oracleText({ messages: [{ role: 'user', content: input }] });
      const s = client().responses.stream({ model, input });
      let deltas = '';
      let last = null;
      s.on('response.output_text.delta', (e) => (deltas += e.delta));
      s.on('event', (e) => (last = e.type));
      const final = await s.finalResponse();
      assert.equal(deltas, want.text);
      assert.equal(last, 'response.completed');
      assertCompleted(final, want);
    });

    test('function call, then a function_call_output turn (stateless and by previous_response_id)', async () => {
      const input = say(`function call ${vendor}`);
      const want = await oracle({
        messages: [{ role: 'user', content: input }],
        tools: CHAT_TOOLS,
        tool_choice: { type: 'function', function: { name: 'book_table' } },
      });
      const r = await client().responses.create({ model, input, tools: TOOLS, tool_choice: { type: 'function', name: 'book_table' } });
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, '');
      const call = callOf(r, want);
      assert.equal(call.name, 'book_table');
      Booking.pick({ restaurant: true, guests: true }).parse(JSON.parse(call.arguments));

      // The answer to the whole exchange, as the oracle gives it in Chat
      // Completions' shape.
      const output = JSON.stringify({ booked: true, table: 7 });
      const answer = await oracleText({
        messages: [
          { role: 'user', content: input },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } }],
          },
          { role: 'tool', tool_call_id: call.call_id, content: output },
        ],
        tools: CHAT_TOOLS,
      });
      const result = { type: 'function_call_output', call_id: call.call_id, output };
      const stateless = await client().responses.create({
        model,
        tools: TOOLS,
        store: false,
        input: [
          { role: 'user', content: input },
          { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
          result,
        ],
      });
      assertCompleted(stateless, answer);
      const chained = await client().responses.create({ model, tools: TOOLS, previous_response_id: r.id, input: [result] });
      assertCompleted(chained, answer);
      assert.equal(chained.previous_response_id, r.id);
    });

    test('function call, streamed: the arguments events', async () => {
      const input = say(`streamed function call ${vendor}`);
      const want = await oracle({
        messages: [{ role: 'user', content: input }],
        tools: CHAT_TOOLS,
        tool_choice: { type: 'function', function: { name: 'book_table' } },
      });
      const s = client().responses.stream({ model, input, tools: TOOLS, tool_choice: { type: 'function', name: 'book_table' } });
      let deltas = '';
      let done = null;
      s.on('response.function_call_arguments.delta', (e) => (deltas += e.delta));
      s.on('response.function_call_arguments.done', (e) => (done = e));
      const final = await s.finalResponse();
      const call = callOf(final, want);
      assert.deepEqual(JSON.parse(deltas), JSON.parse(call.arguments));
      assert.deepEqual(JSON.parse(done.arguments), JSON.parse(call.arguments));
    });

    test('text.format json_schema: output_text parses and matches the schema', async () => {
      const input = say(`json schema ${vendor}`);
      const schema = z.toJSONSchema(Booking);
      const want = await oracle({
        messages: [{ role: 'user', content: input }],
        response_format: { type: 'json_schema', json_schema: { name: 'booking', strict: true, schema } },
      });
      const r = await client().responses.create({
        model,
        input,
        text: { format: { type: 'json_schema', name: 'booking', strict: true, schema } },
      });
      assert.equal(r.status, 'completed');
      const got = JSON.parse(r.output_text);
      Booking.parse(got);
      assert.deepEqual(got, JSON.parse(want.choices[0].message.content));

      // The SDK's helper parses it too.
      const p = await client().responses.parse({ model, input, text: { format: zodTextFormat(Booking, 'booking') } });
      assert.deepEqual(p.output_parsed, Booking.parse(JSON.parse(want.choices[0].message.content)));
    });

    test('previous_response_id continues the stored conversation', async () => {
      const turns = [say(`conversation ${vendor}`), 'Say more.', 'And finally?'];
      const messages = [];
      let prev;
      for (const turn of turns) {
        messages.push({ role: 'user', content: turn });
        const want = await oracleText({ messages });
        const r = await client().responses.create({ model, input: turn, previous_response_id: prev?.id });
        assertCompleted(r, want);
        messages.push({ role: 'assistant', content: r.output_text });
        prev = r;
      }
    });
  });
}

describe('stored responses', () => {
  const model = 'resp-openai';

  test('instructions are not carried over by previous_response_id', async () => {
    const first = say('instructions carry-over');
    const r1 = await client().responses.create({ model, instructions: 'You are terse.', input: first });
    const r2 = await client().responses.create({ model, previous_response_id: r1.id, input: 'Go on.' });
    const want = await oracleText({
      messages: [
        { role: 'user', content: first },
        { role: 'assistant', content: r1.output_text },
        { role: 'user', content: 'Go on.' },
      ],
    });
    assertCompleted(r2, want);
  });

  test('a streamed response can be continued as soon as response.completed arrives', async () => {
    const first = say('continue after stream');
    const stream = await client().responses.create({ model, input: first, stream: true });
    let completed = null;
    let text = '';
    for await (const e of stream) {
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') {
        completed = e.response;
        break; // at once: keel must have saved it before sending this event
      }
    }
    assert.ok(completed, 'no response.completed');
    const r2 = await client().responses.create({ model, previous_response_id: completed.id, input: 'Go on.' });
    const want = await oracleText({
      messages: [
        { role: 'user', content: first },
        { role: 'assistant', content: text },
        { role: 'user', content: 'Go on.' },
      ],
    });
    assertCompleted(r2, want);
  });

  test('item_reference input items resolve to the stored items (as the AI SDK sends them)', async () => {
    const first = say('item reference');
    const r1 = await client().responses.create({ model, input: first });
    const want = await oracleText({
      messages: [
        { role: 'user', content: first },
        { role: 'assistant', content: r1.output_text },
        { role: 'user', content: 'Go on.' },
      ],
    });
    const r2 = await client().responses.create({
      model,
      input: [{ role: 'user', content: first }, { type: 'item_reference', id: r1.output[0].id }, { role: 'user', content: 'Go on.' }],
    });
    assertCompleted(r2, want);
  });

  test('store: false keeps nothing to continue from', async () => {
    const r = await client().responses.create({ model, input: say('store false'), store: false });
    assert.equal(r.status, 'completed');
    await assert.rejects(client().responses.create({ model, previous_response_id: r.id, input: 'Go on.' }), isNotFound);
  });

  test('an unknown previous_response_id is an error', async () => {
    await assert.rejects(client().responses.create({ model, previous_response_id: 'resp_nonexistent', input: 'x' }), isNotFound);
  });
});

// isNotFound accepts the SDK error for a stored object that is not there
// (OpenAI answers 400 or 404 for it).
function isNotFound(e) {
  assert.ok(e instanceof OpenAI.BadRequestError || e instanceof OpenAI.NotFoundError, `got ${e?.constructor?.name}: ${e?.message}`);
  assert.equal(typeof e.error?.message, 'string');
  return true;
}

describe('stored responses are per key', () => {
  const model = 'resp-gemini';
  const a = () => client({ apiKey: KEEL_KEY });
  const b = () => client({ apiKey: KEEL_KEY_B });
  assert.notEqual(KEEL_KEY, KEEL_KEY_B);

  test('previous_response_id: a response stored under key A is not usable by key B', async () => {
    const r = await a().responses.create({ model, input: say('isolation') });
    await assert.rejects(b().responses.create({ model, previous_response_id: r.id, input: 'What did I ask?' }), isNotFound);
    // The same request under key A works: the rejection was about the key.
    const ok = await a().responses.create({ model, previous_response_id: r.id, input: 'What did I ask?' });
    assert.equal(ok.status, 'completed');
  });

  test('item_reference: key B cannot read key A’s output items', async () => {
    const r = await a().responses.create({ model, input: say('isolation by reference') });
    const input = [{ type: 'item_reference', id: r.output[0].id }, { role: 'user', content: 'Repeat that.' }];
    await assert.rejects(b().responses.create({ model, input }), isNotFound);
    assert.equal((await a().responses.create({ model, input })).status, 'completed');
  });

  test('a response B stores is B’s: A cannot continue it either', async () => {
    const r = await b().responses.create({ model, input: say('isolation reversed'), stream: true });
    let id = null;
    for await (const e of r) if (e.type === 'response.completed') id = e.response.id;
    assert.ok(id);
    await assert.rejects(a().responses.create({ model, previous_response_id: id, input: 'x' }), isNotFound);
  });
});

describe('responses errors', () => {
  test('a bad keel key raises AuthenticationError (401)', async () => {
    await assert.rejects(client({ apiKey: 'sk-keel-not-a-real-key' }).responses.create({ model: 'resp-openai', input: 'x' }), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 401);
      return true;
    });
  });

  test('an unknown model raises NotFoundError (404)', async () => {
    await assert.rejects(client().responses.create({ model: 'no-such-route', input: 'x' }), OpenAI.NotFoundError);
  });

  test('a stream cut with no fallback: the SDK throws; on the wire, error then response.failed', async () => {
    const body = { model: 'resp-cut', input: say('cut') };
    const want = await oracleText({ messages: [{ role: 'user', content: body.input }] }, 'oracle-long');
    const got = await events(await client().responses.create({ ...body, stream: true }));
    assert.ok(got.error, 'the stream ended cleanly: a cut answer must end with an error');
    assert.ok(got.error instanceof OpenAI.APIError, `got ${got.error?.constructor?.name}: ${got.error?.message}`);
    assert.ok(!(got.error instanceof OpenAI.APIConnectionError), `the connection broke instead: ${got.error.message}`);
    const text = got.events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.ok(text.length > 0 && want.text.startsWith(text) && text.length < want.text.length, `text: ${JSON.stringify(text)}`);
    assert.ok(!got.events.some((e) => e.type === 'response.completed'));

    // The SDK stops at the error event; what follows it on the wire is
    // response.failed, the terminal event.
    const res = await fetch(`${KEEL_URL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEEL_KEY}` },
      body: JSON.stringify({ ...body, model: 'resp-cut-raw', stream: true }),
    });
    assert.equal(res.status, 200);
    const raw = await res.text();
    assert.ok(raw.endsWith('\n\n'), 'the last event must end with a blank line (wire README §0)');
    const evs = raw
      .trim()
      .split('\n\n')
      .map((e) => {
        const lines = Object.fromEntries(e.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        return { event: lines.event, data: JSON.parse(lines.data) };
      });
    for (const e of evs) assert.equal(e.event, e.data.type, 'event: must equal the data type');
    assert.deepEqual(
      evs.slice(-2).map((e) => e.event),
      ['error', 'response.failed'],
    );
    const failed = evs.at(-1).data.response;
    assert.equal(failed.status, 'failed');
    assert.equal(typeof failed.error?.message, 'string');
  });
});
