// ai-sdk.test.mjs: the Vercel AI SDK (ai + @ai-sdk/openai) judges keel,
// through its Chat Completions model, openai.chat(model). (openai(model)
// would use the Responses API; wire README §11.)

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool } from 'ai';
import { z } from 'zod';
import { KEEL_KEY, KEEL_URL, oracle, oracleText } from './lib.mjs';

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
