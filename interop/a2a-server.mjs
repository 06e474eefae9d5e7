// An A2A agent served by the official A2A JS SDK in 1.0 mode alone (no 0.3
// translation): Myriad's A2A tool calls it (interop/run). It echoes the
// text it is sent, and logs each JSON-RPC method with the request's
// A2A-Version header, so the test can tell which revision was spoken.
// Usage: node a2a-server.mjs  (prints "listening PORT")
import express from 'express';
import { AGENT_CARD_PATH, Role, TaskState } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler, UserBuilder } from '@a2a-js/sdk/server/express';

const app = express();
const server = app.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const card = {
  name: 'JS echo', description: 'Echoes the text it receives.', version: '1.0.0', provider: undefined,
  supportedInterfaces: [
    { url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
    { url: `${base}/a2a/rest`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: '1.0' },
  ],
  capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
  securitySchemes: {}, securityRequirements: [], defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
  skills: [{ id: 'echo', name: 'Echo', description: 'Echo text back', tags: ['echo'], examples: [], inputModes: [], outputModes: [], securityRequirements: [] }],
  signatures: [],
};
const text = (t) => ({ content: { $case: 'text', value: t }, metadata: undefined, filename: '', mediaType: '' });
const now = () => new Date().toISOString();

class Echo {
  async execute(ctx, bus) {
    const p = ctx.userMessage.parts.find((x) => x.content?.$case === 'text');
    const { taskId, contextId } = ctx;
    bus.publish(AgentEvent.task(ctx.task ?? { id: taskId, contextId, artifacts: [], history: [ctx.userMessage], metadata: undefined,
      status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: now() } }));
    bus.publish(AgentEvent.statusUpdate({ taskId, contextId, metadata: undefined, status: { state: TaskState.TASK_STATE_WORKING, timestamp: now(),
      message: { messageId: crypto.randomUUID(), contextId, taskId, role: Role.ROLE_AGENT, parts: [text('echoing…')], metadata: undefined, extensions: [], referenceTaskIds: [] } } }));
    bus.publish(AgentEvent.artifactUpdate({ taskId, contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: { artifactId: 'echo', name: 'echo', description: '', parts: [text('echo: ' + (p ? p.content.value : ''))], metadata: undefined, extensions: [] } }));
    bus.publish(AgentEvent.statusUpdate({ taskId, contextId, metadata: undefined, status: { state: TaskState.TASK_STATE_COMPLETED, timestamp: now(), message: undefined } }));
    bus.finished();
  }
  async cancelTask() {}
}

const requestHandler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new Echo());
app.use('/a2a/jsonrpc', express.json(), (req, _res, next) => {
  console.log(`method ${req.body?.method} A2A-Version ${req.get('A2A-Version') ?? '(none)'}`);
  next();
});
app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: requestHandler }));
app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler, userBuilder: UserBuilder.noAuthentication }));
app.use('/a2a/rest', restHandler({ requestHandler, userBuilder: UserBuilder.noAuthentication }));
