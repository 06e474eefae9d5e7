// The official A2A JS SDK's client drives Myriad's A2A agents: as a plain
// 1.0 client over JSON-RPC and over HTTP+JSON, and with its 0.3
// translation on, against a card that offers 0.3 alone.
// Usage: node a2a.mjs BASE_URL (e.g. http://127.0.0.1:8420)
import assert from 'node:assert/strict';
import { Role, TaskState } from '@a2a-js/sdk';
import {
  ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory,
} from '@a2a-js/sdk/client';

const base = process.argv[2];
const text = (t) => ({ content: { $case: 'text', value: t }, metadata: undefined, filename: '', mediaType: '' });
const message = (t, contextId = '') => ({
  messageId: crypto.randomUUID(), contextId, taskId: '', role: Role.ROLE_USER,
  parts: [text(t)], metadata: undefined, extensions: [], referenceTaskIds: [],
});
const send = (t, contextId) => ({ tenant: '', message: message(t, contextId), configuration: undefined, metadata: undefined });
const artifactText = (task) => task.artifacts?.[0]?.parts?.map((p) => p.content?.value).join('');

async function exercise(client, label) {
  const task = await client.sendMessage(send('hello'));
  assert.ok('status' in task, `${label}: sendMessage answers a task`);
  assert.equal(task.status.state, TaskState.TASK_STATE_COMPLETED, `${label}: state`);
  assert.equal(artifactText(task), 'echo: hello', `${label}: artifact`);

  const got = await client.getTask({ tenant: '', id: task.id, historyLength: 10 });
  assert.equal(got.id, task.id);
  assert.equal(got.status.state, TaskState.TASK_STATE_COMPLETED, `${label}: getTask state`);
  assert.equal(artifactText(got), 'echo: hello', `${label}: getTask artifact`);

  let last = null, cases = new Set(), streamed = '';
  for await (const ev of client.sendMessageStream(send('stream me'))) {
    cases.add(ev.payload?.$case);
    if (ev.payload?.$case === 'statusUpdate') last = ev.payload.value.status.state;
    if (ev.payload?.$case === 'artifactUpdate') streamed += ev.payload.value.artifact.parts.map((p) => p.content?.value).join('');
  }
  assert.equal(last, TaskState.TASK_STATE_COMPLETED, `${label}: the stream ends completed`);
  assert.ok(cases.has('task') && cases.has('statusUpdate'), `${label}: stream events ${[...cases]}`);
  assert.equal(streamed, 'echo: stream me', `${label}: streamed artifact`);
  if (client.protocolVersion === '1.0') {
    // 0.3's JSON-RPC binding has no tasks/list.
    const listed = await client.listTasks({ tenant: '', contextId: task.contextId, status: TaskState.TASK_STATE_COMPLETED,
      pageSize: 10, pageToken: '', historyLength: 1, statusTimestampAfter: undefined, includeArtifacts: true });
    assert.deepEqual(listed.tasks.map((t) => t.id), [task.id], `${label}: listTasks in the task's context`);
    assert.equal(artifactText(listed.tasks[0]), 'echo: hello', `${label}: listed artifact`);
    assert.equal(listed.totalSize, 1, `${label}: listTasks totalSize`);
  }
  console.log(`${label}: ok`);
}

async function contexts(client, label) {
  // One context is one instance of the agent: its second message is its
  // second turn.
  const counter = await client.sendMessage(send('a'));
  assert.equal(artifactText(counter), 'turn 1: a', `${label}: first turn`);
  const again = await client.sendMessage(send('b', counter.contextId));
  assert.equal(again.contextId, counter.contextId);
  assert.equal(artifactText(again), 'turn 2: b', `${label}: second turn`);
}

for (const transport of ['JSONRPC', 'HTTP+JSON']) {
  // A plain 1.0 client: no 0.3 translation anywhere.
  const factory = new ClientFactory({
    transports: [new JsonRpcTransportFactory(), new RestTransportFactory()],
    preferredTransports: [transport],
  });
  const client = await factory.createFromUrl(`${base}/a2a/echo/`);
  assert.equal(client.protocolVersion, '1.0');
  await exercise(client, `1.0 ${transport}`);
  await contexts(await factory.createFromUrl(`${base}/a2a/counter/`), `1.0 ${transport} contexts`);
}

// With the 0.3 translation on, given a card that offers 0.3 alone, the
// same client speaks 0.3 to the SDK-served binding.
const legacyCompat = { enabled: true };
const compat = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
  cardResolver: new DefaultAgentCardResolver({ legacyCompat }),
  transports: [new JsonRpcTransportFactory({ legacyCompat }), new RestTransportFactory({ legacyCompat })],
}));
const card = await (await fetch(`${base}/a2a/echo/.well-known/agent-card.json`)).json();
assert.ok(card.supportedInterfaces.some((i) => i.protocolVersion === '1.0' && i.protocolBinding === 'HTTP+JSON'));
const only03 = { ...card };
delete only03.supportedInterfaces;
const old = await compat.createFromAgentCard(only03);
assert.equal(old.protocolVersion, '0.3');
await exercise(old, '0.3 through the compat client');
// And given the whole card, it picks 1.0.
assert.equal((await compat.createFromUrl(`${base}/a2a/echo/`)).protocolVersion, '1.0');
console.log('a2a js sdk: ok');
