// embeddings.test.mjs: the official openai JS SDK judges keel's
// /v1/embeddings. The SDK asks for base64 unless told otherwise and decodes
// it to float32; the vectors must be the upstream's, bit for bit.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { client, newAttempts, oracleEmbeddings, upstream } from './lib.mjs';

const model = 'embed';

// recording returns an SDK client that keeps the raw request and response
// bodies it exchanges with keel.
function recording() {
  const log = [];
  const c = client({
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      log.push({ request: JSON.parse(init.body), response: await res.clone().json() });
      return res;
    },
  });
  return { c, log };
}

// assertVectors checks the SDK's decoded vectors against the oracle's,
// component by component, exactly.
function assertVectors(got, want) {
  assert.equal(got.length, want.length, 'number of vectors');
  got.forEach((g, i) => {
    assert.equal(g.length, want[i].length, `vector ${i}: length`);
    for (let j = 0; j < g.length; j++) {
      // Object.is: exact, and -0 is not 0.
      assert.ok(Object.is(g[j], want[i][j]), `vector ${i}[${j}]: got ${g[j]}, want ${want[i][j]}`);
    }
  });
}

describe('embeddings', () => {
  for (const [name, input] of [
    ['a string', 'keel e2e: embed a string'],
    ['an array of strings', ['keel e2e: first', 'keel e2e: second, a little longer', 'keel e2e: third']],
  ]) {
    test(`embeddings.create (SDK default base64) with ${name}: the upstream's vectors, float32-exact`, async () => {
      const want = await oracleEmbeddings({ input });
      const { c, log } = recording();
      const r = await c.embeddings.create({ model, input });
      // The SDK asked for base64 and got it: what it decoded is keel's bytes.
      assert.equal(log[0].request.encoding_format, 'base64');
      for (const d of log[0].response.data) assert.equal(typeof d.embedding, 'string', 'not base64 on the wire');
      assert.equal(r.object, 'list');
      assert.deepEqual(
        r.data.map((d) => [d.object, d.index]),
        want.vectors.map((_, i) => ['embedding', i]),
      );
      assertVectors(
        r.data.map((d) => d.embedding),
        want.vectors,
      );
      assert.equal(r.usage.prompt_tokens, want.usage.prompt_tokens);
      assert.equal(r.usage.total_tokens, want.usage.total_tokens);
    });
  }

  test('encoding_format float and dimensions: the same float32 values, as numbers', async () => {
    const input = ['keel e2e: float one', 'keel e2e: float two'];
    const want = await oracleEmbeddings({ input, dimensions: 16 });
    const r = await client().embeddings.create({ model, input, dimensions: 16, encoding_format: 'float' });
    assert.ok(Array.isArray(r.data[0].embedding), 'want a JSON array of numbers');
    // A JSON number that rounds to the float32 exactly is enough: keel may
    // print float32 or float64 digits.
    assertVectors(
      r.data.map((d) => d.embedding.map(Math.fround)),
      want.vectors,
    );
    assert.equal(r.data[0].embedding.length, 16);
  });

  for (const [name, input] of [
    ['an empty string', ''],
    ['an empty array', []],
  ]) {
    test(`${name} as input raises BadRequestError (400)`, async () => {
      const { after } = await newAttempts([upstream(model)], () =>
        assert.rejects(client().embeddings.create({ model, input }), (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, `got ${e?.constructor?.name}: ${e?.message}`);
          assert.equal(e.status, 400);
          assert.equal(e.error?.type, 'invalid_request_error');
          assert.equal(typeof e.error?.message, 'string');
          return true;
        }),
      );
      // Nothing an upstream could answer: keel refuses it itself.
      assert.deepEqual(after[upstream(model)], []);
    });
  }
});
