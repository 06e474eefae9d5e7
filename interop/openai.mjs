// The official `openai` npm package calls Myriad agents through
// /v1/chat/completions, streaming and not, and continues an instance.
// Usage: node openai.mjs BASE_URL (e.g. http://127.0.0.1:8420/v1)
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'unused' });

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id).sort(), ['counter', 'echo', 'review']);

const c = await client.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hello' }] });
assert.equal(c.choices[0].message.content, 'echo: hello');
assert.equal(c.choices[0].finish_reason, 'stop');
assert.ok(c.usage.total_tokens > 0, 'usage');
assert.match(c.id, /^chatcmpl-run_/);

const stream = await client.chat.completions.create({
  model: 'echo', stream: true, stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'streamed words come in pieces' }],
});
let text = '', chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const ch of chunk.choices) {
    text += ch.delta?.content ?? '';
    finish = ch.finish_reason ?? finish;
  }
}
assert.equal(text, 'echo: streamed words come in pieces');
assert.equal(finish, 'stop');
assert.ok(chunks >= 4, `${chunks} chunks`);
assert.ok(usage && usage.total_tokens > 0, 'stream usage');

// The user field names the instance: the second call is its second turn.
const user = 'npm-' + Date.now();
const t1 = await client.chat.completions.create({ model: 'counter', user, messages: [{ role: 'user', content: 'a' }] });
assert.equal(t1.choices[0].message.content, 'turn 1: a');
const t2 = await client.chat.completions.create({ model: 'counter', user, messages: [{ role: 'user', content: 'b' }] });
assert.equal(t2.choices[0].message.content, 'turn 2: b');

await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
  (err) => err.status === 404 && err.code === 'model_not_found');
console.log('openai npm: ok');
