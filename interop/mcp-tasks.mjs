// The official MCP TypeScript SDK's client calls Myriad's agents and flows
// as MCP tasks (2025-11-25) over streamable HTTP: the call answers with a
// task at once, the client polls it and reads its result; a flow's
// question reaches the client as an elicitation tied to the task.
// Usage: node mcp-tasks.mjs BASE_URL (e.g. http://127.0.0.1:8420)
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const client = new Client({ name: 'interop', version: '1' }, { capabilities: { elicitation: { form: {} } } });
const elicited = [];
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  elicited.push(req.params);
  return { action: 'accept', content: { answer: 'yes, ship it' } };
});
await client.connect(new StreamableHTTPClientTransport(new URL(`${process.argv[2]}/mcp`)));
assert.ok(client.getServerCapabilities()?.tasks?.requests?.tools?.call, 'the server offers tool calls as tasks');
const { tools } = await client.listTools();
assert.equal(tools.find((t) => t.name === 'echo')?.execution?.taskSupport, 'optional');

async function asTask(name, args) {
  const seen = [];
  let result = null;
  for await (const m of client.experimental.tasks.callToolStream({ name, arguments: args }, CallToolResultSchema, { task: { ttl: 60000 } })) {
    if (process.env.DEBUG) console.error(name, m.type, JSON.stringify(m.task ?? m.result ?? m.error ?? ''));
    seen.push(m.type === 'taskStatus' ? `${m.type}:${m.task.status}` : m.type);
    if (m.type === 'result') result = m.result;
    if (m.type === 'error') throw m.error;
  }
  return { seen, result };
}

const echo = await asTask('echo', { input: 'as a task' });
assert.equal(echo.seen[0], 'taskCreated');
assert.equal(echo.result.content[0].text, 'echo: as a task');
assert.equal(echo.result._meta?.['io.modelcontextprotocol/related-task']?.taskId?.startsWith('run_'), true);

const review = await asTask('review', { input: 'v2' });
assert.equal(review.result.content[0].text, 'yes, ship it', JSON.stringify(review));
assert.equal(elicited.length, 1);
assert.match(elicited[0].message, /Ship v2\?/);

// A task canceled while it waits: cancelled, and a second cancel refused.
let waiting;
for await (const m of client.experimental.tasks.callToolStream({ name: 'review', arguments: { input: 'v3' } }, CallToolResultSchema, { task: {} })) {
  waiting = m.task.taskId;
  break;
}
const canceled = await client.experimental.tasks.cancelTask(waiting);
assert.equal(canceled.status, 'cancelled');
assert.equal((await client.experimental.tasks.getTask(waiting)).status, 'cancelled');
await assert.rejects(client.experimental.tasks.cancelTask(waiting), (err) => err.code === -32602);

const { tasks } = await client.experimental.tasks.listTasks();
assert.ok(tasks.length >= 3 && tasks.some((t) => t.taskId === waiting && t.status === 'cancelled'), JSON.stringify(tasks));
await client.close();
console.log('mcp ts sdk tasks: ok');
