// ai-sdk.test.mjs: the Vercel AI SDK (ai + @ai-sdk/openai) judges keel,
// through its Chat Completions model, openai.chat(model), and its default
// model, openai(model), which speaks the Responses API (wire README §11).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { KEEL_KEY, KEEL_URL, VENDORS, oracle, oracleText, route } from './lib.mjs';

const openai = createOpenAI({ baseURL: KEEL_URL, apiKey: KEEL_KEY });
const model = openai.chat('ai-sdk');

// text is the user text of a test, unique to it.
const text = (name) => `keel e2e (ai sdk): ${name}. Answer in one sentence.`;

describe('Vercel AI SDK, chat completions model', () => {
  test('streamText: full text, finishReason stop, usage', async () => {
    const p = text('streamText');
    const want = await oracleText({ messages: [{ role: 'user', content: p }] });
    const errors = [];
    const r = streamText({ model, prompt: p, maxRetries: 0, onError: ({ error }) => errors.push(error) });
    let streamed = '';
    let parts = 0;
    for await (const d of r.textStream) {
      streamed += d;
      parts++;
    }
    assert.deepEqual(errors, []);
    assert.equal(streamed, want.text);
    assert.equal(await r.text, want.text);
    assert.ok(parts > 3, `want a real stream, got ${parts} text parts`);
    assert.equal(await r.finishReason, 'stop');
    const u = await r.usage;
    assert.equal(u.inputTokens, want.usage.prompt_tokens);
    assert.equal(u.outputTokens, want.usage.completion_tokens);
    assert.equal(u.totalTokens, want.usage.total_tokens);
  });

  test('generateText: text, finishReason stop, usage, system prompt', async () => {
    const system = 'You are terse.';
    const p = text('generateText');
    const want = await oracleText({
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: p },
      ],
    });
    const r = await generateText({ model, system, prompt: p, maxRetries: 0 });
    assert.equal(r.text, want.text);
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.usage.inputTokens, want.usage.prompt_tokens);
    assert.equal(r.usage.outputTokens, want.usage.completion_tokens);
    assert.equal(r.usage.totalTokens, want.usage.total_tokens);
  });

  test('streamText with a tool: the streamed call parses into the input', async () => {
    const input = z.object({ restaurant: z.string(), guests: z.number().int().min(1).max(12) });
    const p = text('tool call');
    const want = await oracle({
      messages: [{ role: 'user', content: p }],
      tools: [{ type: 'function', function: { name: 'book_table', parameters: z.toJSONSchema(input) } }],
      tool_choice: { type: 'function', function: { name: 'book_table' } },
    });
    const wantCall = want.choices[0].message.tool_calls[0];
    const errors = [];
    const r = streamText({
      model,
      prompt: p,
      tools: {
        get_weather: tool({ description: 'weather', inputSchema: z.object({ city: z.string() }) }),
        book_table: tool({ description: 'book a table', inputSchema: input }),
      },
      toolChoice: { type: 'tool', toolName: 'book_table' },
      maxRetries: 0,
      onError: ({ error }) => errors.push(error),
    });
    for await (const _ of r.fullStream);
    assert.deepEqual(errors, []);
    assert.equal(await r.finishReason, 'tool-calls');
    const calls = await r.toolCalls;
    assert.equal(calls.length, 1);
    assert.equal(calls[0].toolName, 'book_table');
    assert.equal(calls[0].toolCallId, wantCall.id);
    assert.deepEqual(calls[0].input, JSON.parse(wantCall.function.arguments));
    input.parse(calls[0].input);
  });
});

describe('Vercel AI SDK, default model openai(model): the Responses API', () => {
  // The default model must be the Responses one, or this block tests
  // nothing new.
  test('openai(model) is the Responses model', () => {
    assert.equal(openai('resp-openai').provider, 'openai.responses');
  });

  for (const vendor of VENDORS) {
    const model = openai(route('resp', vendor));

    test(`streamText from a ${vendor} upstream: full text, finishReason stop, usage`, async () => {
      const p = text(`responses streamText ${vendor}`);
      const want = await oracleText({ messages: [{ role: 'user', content: p }] });
      const errors = [];
      const r = streamText({ model, prompt: p, maxRetries: 0, onError: ({ error }) => errors.push(error) });
      let streamed = '';
      let parts = 0;
      for await (const d of r.textStream) {
        streamed += d;
        parts++;
      }
      assert.deepEqual(errors, []);
      assert.equal(streamed, want.text);
      assert.equal(await r.text, want.text);
      assert.ok(parts > 3, `want a real stream, got ${parts} text parts`);
      assert.equal(await r.finishReason, 'stop');
      const u = await r.usage;
      assert.equal(u.inputTokens, want.usage.prompt_tokens);
      assert.equal(u.outputTokens, want.usage.completion_tokens);
    });

    test(`generateText from a ${vendor} upstream: text, finishReason stop, system prompt`, async () => {
      const system = 'You are terse.';
      const p = text(`responses generateText ${vendor}`);
      const want = await oracleText({
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: p },
        ],
      });
      const r = await generateText({ model, system, prompt: p, maxRetries: 0 });
      assert.equal(r.text, want.text);
      assert.equal(r.finishReason, 'stop');
      assert.equal(r.usage.inputTokens, want.usage.prompt_tokens);
      assert.equal(r.usage.outputTokens, want.usage.completion_tokens);
    });
  }

  // The SDK stores responses by default and then sends earlier assistant
  // output back as item_reference items, which keel must resolve.
  test('a second turn built from response.messages (item_reference) gets the answer to the whole conversation', async () => {
    const model = openai('resp-anthropic');
    const first = text('responses second turn');
    const r1 = await generateText({ model, prompt: first, maxRetries: 0 });
    const messages = [{ role: 'user', content: first }, ...r1.response.messages, { role: 'user', content: 'Go on.' }];
    const want = await oracleText({
      messages: [
        { role: 'user', content: first },
        { role: 'assistant', content: r1.text },
        { role: 'user', content: 'Go on.' },
      ],
    });
    const r2 = await generateText({ model, messages, maxRetries: 0 });
    assert.equal(r2.text, want.text);
  });

  test('a tool loop (execute, stopWhen): the final text answers the tool result', async () => {
    const model = openai('resp-gemini');
    const p = text('responses tool loop');
    const inputSchema = z.object({ city: z.string() });
    const steps = [];
    const r = await generateText({
      model,
      prompt: p,
      maxRetries: 0,
      stopWhen: stepCountIs(3),
      tools: { get_weather: tool({ inputSchema, execute: async ({ city }) => ({ city, celsius: 21 }) }) },
      onStepFinish: (s) => steps.push(s),
    });
    assert.equal(steps.length, 2, `want a tool step and an answer, got ${steps.length} steps`);
    const [call] = steps[0].toolCalls;
    assert.equal(call.toolName, 'get_weather');
    inputSchema.parse(call.input);
    const want = await oracleText({
      messages: [
        { role: 'user', content: p },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: call.toolCallId, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(call.input) } }],
        },
        { role: 'tool', tool_call_id: call.toolCallId, content: JSON.stringify({ city: call.input.city, celsius: 21 }) },
      ],
    });
    assert.equal(r.text, want.text);
    assert.equal(r.finishReason, 'stop');
  });
});
