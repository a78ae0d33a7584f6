// cross-vendor.test.mjs: issue 4's cross-vendor failover, judged by the
// official SDKs. The route's primary is Gemini (the simulator in Gemini's
// format), which streams a few tokens and drops the connection; the
// fallback is OpenAI-compatible and continues the answer. The client
// speaks a third format (Anthropic Messages, or OpenAI Responses) and
// must get one complete answer, as if nothing had happened.
//
// Also: the same upstream error reaches a client alike, whatever the
// upstream's format.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ROUTES, VENDORS, anthropic, client, newAttempts, oracle, oracleText, upstream } from './lib.mjs';

// ORACLE is the sim.yaml profile whose answer length matches the routes'
// (oracle-xv); CUT_AFTER is how many tokens the primary sends first.
const ORACLE = 'oracle-xv';
const CUT_AFTER = 5;

const say = (name) => `keel e2e (cross-vendor): ${name}. Answer in one sentence.`;

// assertAttempts checks the simulator's log of one failed-over answer: the
// Gemini primary was asked once and cut after CUT_AFTER tokens; the
// fallback was asked once, after it, and completed the answer. With
// prefill the fallback sends only the rest; restarted, the whole answer.
function assertAttempts(route, after, { total, restart = false }) {
  const p = after[upstream(route, 0)];
  const f = after[upstream(route, 1)];
  assert.equal(p.length, 1, `want one primary attempt, got ${JSON.stringify(p)}`);
  assert.equal(p[0].fault, 'cut');
  assert.equal(p[0].status, 200);
  assert.equal(p[0].tokens, CUT_AFTER);
  assert.equal(p[0].completed, false);
  assert.equal(f.length, 1, `want one fallback attempt, got ${JSON.stringify(f)}`);
  assert.equal(f[0].fault, undefined);
  assert.equal(f[0].status, 200);
  assert.equal(f[0].completed, true);
  assert.equal(f[0].tokens, restart ? total : total - CUT_AFTER);
  assert.ok(Date.parse(f[0].arrived) >= Date.parse(p[0].first_token), 'the fallback must come after the primary started answering');
}

describe('cross-vendor failover: Gemini primary cut mid-answer, OpenAI-compatible fallback', () => {
  for (const [route, restart] of [
    ['xv-failover', false],
    ['xv-failover-restart', true],
  ]) {
    test(`${route}: an Anthropic client streams one complete answer (continue: ${restart ? 'restart' : 'prefill'})`, async () => {
      // Both targets' providers are what the test is about.
      assert.match(ROUTES[route][0], /^gem\//);
      assert.match(ROUTES[route][1], /^backup\//);
      const messages = [{ role: 'user', content: say(route) }];
      const want = await oracleText({ messages }, ORACLE);
      const { result, after } = await newAttempts([upstream(route, 0), upstream(route, 1)], async () => {
        const s = anthropic().messages.stream({ model: route, max_tokens: 4096, messages });
        const got = { text: '', events: [] };
        s.on('text', (d) => (got.text += d));
        s.on('streamEvent', (e) => got.events.push(e.type));
        got.final = await s.finalMessage();
        return got;
      });
      const m = result.final;
      assert.equal(m.content.length, 1);
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, want.text);
      // The deltas, not only the accumulated message: nothing repeated or
      // lost at the seam.
      assert.equal(result.text, want.text);
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, want.usage.completion_tokens);
      const seq = result.events.filter((t) => t !== 'ping');
      assert.equal(seq[0], 'message_start');
      assert.equal(seq.at(-1), 'message_stop');
      assert.equal(seq.filter((t) => t === 'message_start').length, 1, `one message, not two: ${seq}`);
      assert.equal(seq.filter((t) => t === 'content_block_start').length, 1, `one text block, not two: ${seq}`);
      assertAttempts(route, after, { total: want.usage.completion_tokens, restart });
    });
  }

  test('xv-failover-whole: a non-streaming Anthropic client gets the whole answer', async () => {
    const route = 'xv-failover-whole';
    const messages = [{ role: 'user', content: say(route) }];
    const want = await oracleText({ messages }, ORACLE);
    const { result: m, after } = await newAttempts([upstream(route, 0), upstream(route, 1)], () =>
      anthropic().messages.create({ model: route, max_tokens: 4096, messages }),
    );
    assert.equal(m.type, 'message');
    assert.deepEqual(
      m.content.map((b) => b.type),
      ['text'],
    );
    assert.equal(m.content[0].text, want.text);
    assert.equal(m.stop_reason, 'end_turn');
    assertAttempts(route, after, { total: want.usage.completion_tokens });
  });

  // Regression: the prefill continuation asked the fallback for max_tokens
  // more tokens, not for max_tokens minus those already sent, so the answer
  // the client got was longer than its limit (20 + 5).
  test(
    'xv-failover-max: max_tokens bounds the whole answer, the tokens before the cut included',
    async () => {
      const route = 'xv-failover-max';
      const maxTokens = 20;
      const messages = [{ role: 'user', content: say(route) }];
      const want = await oracle({ messages, max_completion_tokens: maxTokens }, ORACLE);
      assert.equal(want.choices[0].finish_reason, 'length');
      const { result: m, after } = await newAttempts([upstream(route, 0), upstream(route, 1)], () =>
        anthropic().messages.stream({ model: route, max_tokens: maxTokens, messages }).finalMessage(),
      );
      // The break did happen mid-answer, and the fallback continued it.
      assert.equal(after[upstream(route, 0)][0]?.fault, 'cut');
      assert.equal(after[upstream(route, 1)].length, 1);
      assert.equal(m.stop_reason, 'max_tokens');
      assert.equal(m.content[0].text, want.choices[0].message.content);
      assert.equal(m.usage.output_tokens, maxTokens);
    },
  );

  test('xv-failover-resp: an OpenAI Responses client streams one complete answer', async () => {
    const route = 'xv-failover-resp';
    const input = say(route);
    const want = await oracleText({ messages: [{ role: 'user', content: input }] }, ORACLE);
    const { result, after } = await newAttempts([upstream(route, 0), upstream(route, 1)], async () => {
      const evs = [];
      for await (const e of await client().responses.create({ model: route, input, stream: true })) evs.push(e);
      return evs;
    });
    const types = result.map((e) => e.type);
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(types.filter((t) => t === 'response.output_item.added').length, 1, `one output item: ${types}`);
    const text = result.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(text, want.text);
    const done = result.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, want.text);
    assertAttempts(route, after, { total: want.usage.completion_tokens });
  });
});

// The same upstream failure must reach a client alike whatever the
// upstream's wire format: the neutral model carries its meaning, and each
// client API renders it in its own vocabulary.
describe('upstream errors reach the client alike from every upstream format', () => {
  for (const vendor of VENDORS) {
    const route = `filter-${vendor}`;
    // Regression: a prompt Gemini blocks (a 200 with
    // promptFeedback.blockReason, llm.KindContentFilter without a status)
    // became 502: the SDKs retried it, and the client was told the gateway
    // failed.
    test(`a prompt the ${vendor} upstream's content filter refuses is a 400 client error, not retried`, async () => {
      const messages = [{ role: 'user', content: say(`content filter ${vendor}`) }];
      const { after } = await newAttempts([upstream(route)], async () => {
        await assert.rejects(anthropic().messages.create({ model: route, max_tokens: 64, messages }), (e) => {
          assert.ok(e instanceof Anthropic.BadRequestError, `Anthropic client: got ${e?.constructor?.name} ${e?.status}: ${e?.message}`);
          assert.equal(e.error?.error?.type, 'invalid_request_error');
          return true;
        });
        await assert.rejects(client().chat.completions.create({ model: route, messages }), (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, `OpenAI client: got ${e?.constructor?.name} ${e?.status}: ${e?.message}`);
          assert.equal(e.error?.type, 'invalid_request_error');
          return true;
        });
      });
      // One upstream attempt per request: keel lets the refusal stand.
      assert.equal(after[upstream(route)].length, 2, JSON.stringify(after[upstream(route)]));
    });
  }

  // Regression: the OpenAI envelope carried the Gemini status
  // (RESOURCE_EXHAUSTED) as its type.
  test(
    "a Gemini 429 reaches an OpenAI client as a RateLimitError in OpenAI's vocabulary",
    async () => {
      const route = 'rate-limited-gemini';
      const messages = [{ role: 'user', content: say('gemini 429') }];
      await assert.rejects(anthropic().messages.create({ model: route, max_tokens: 64, messages }), (e) => {
        assert.ok(e instanceof Anthropic.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.error?.error?.type, 'rate_limit_error');
        return true;
      });
      for (const call of [
        () => client().chat.completions.create({ model: route, messages }),
        () => client().responses.create({ model: route, input: messages[0].content }),
      ]) {
        await assert.rejects(call(), (e) => {
          assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
          assert.ok(e.headers.get('retry-after'), 'retry-after was not relayed');
          // OpenAI's error types are lower snake_case (invalid_request_error,
          // rate_limit_error, insufficient_quota, ...), never Google's
          // canonical codes.
          assert.match(e.error?.type ?? '', /^[a-z_]+$/, `error.type ${e.error?.type}`);
          return true;
        });
      }
    },
  );
});
