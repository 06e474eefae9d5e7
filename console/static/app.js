// Myriad's console: runs, a run's steps, the inbox of what waits for a
// person, agents and flows, and cost. Every element is built with h(),
// never from HTML strings: run inputs and outputs are shown as text.
import { APIError, follow, get, post, setToken, token } from './api.js';

const main = document.getElementById('main');

// h builds an element: h('a', {href: '#'}, 'text', child, ...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') Object.assign(el.style, v); // through CSSOM: the CSP allows no style attributes
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function showError(e) {
  const box = document.getElementById('error');
  box.hidden = !e;
  if (!e) return;
  box.textContent = e instanceof APIError && e.status === 401
    ? (token() ? 'The server refused the API token typed at the top right.' : 'The server wants its API token: type it at the top right.')
    : e.message;
  box.title = 'Click to close';
}
document.getElementById('error').addEventListener('click', () => showError(null));

const money = (usd) => (usd ? '$' + usd.toFixed(usd < 0.01 ? 6 : 4) : '');
const when = (t) => (t ? new Date(t).toLocaleString() : '');
const ms = (n) => (n >= 1000 ? (n / 1000).toFixed(2) + ' s' : Math.round(n) + ' ms');
const statusBadge = (rec) => h('span', { class: 'status ' + rec.status }, rec.status + (rec.waiting_for ? ' (' + rec.waiting_for + ')' : ''));
const who = (rec) => (rec.flow ? 'flow ' + rec.flow : rec.agent) + (rec.instance ? '/' + rec.instance : '');

// Pages: each renders into main and may return a function that stops its
// polls and streams when another page opens.
const pages = { runs: runsPage, run: runPage, inbox: inboxPage, agents: agentsPage, tools: toolsPage, usage: usagePage, compare: comparePage };
let leave = null;

async function route() {
  if (leave) leave();
  leave = null;
  showError(null);
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const page = pages[name] ? name : 'runs';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page || (page === 'run' && a.dataset.page === 'runs'));
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    leave = (await pages[page](rest.map(decodeURIComponent))) || null;
  } catch (e) {
    showError(e);
    main.replaceChildren();
  }
  refreshInboxCount();
}

// every runs fn now and then every ms milliseconds, until stopped.
function every(msec, fn) {
  let stopped = false;
  let timer;
  const tick = async () => {
    try { await fn(); } catch (e) { showError(e); }
    if (!stopped) timer = setTimeout(tick, msec);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// --- Runs: a list with filters, paged on the server, refreshed live.
async function runsPage() {
  const params = new URLSearchParams(sessionStorage.getItem('myriad.runs.filters') || 'roots=true');
  const field = (name, placeholder) => h('input', { name, placeholder, value: params.get(name) || '' });
  const status = h('select', { name: 'status' }, ['', 'queued', 'running', 'waiting', 'in_doubt', 'completed', 'failed', 'canceled']
    .map((s) => h('option', { value: s, selected: params.get('status') === s }, s || 'any status')));
  const roots = h('input', { type: 'checkbox', name: 'roots', checked: params.get('roots') === 'true' });
  // Metadata is typed as key=value pairs, comma-separated, and sent as metadata[key]=value.
  const metaText = [...params].filter(([k]) => /^metadata\[.+\]$/.test(k)).map(([k, v]) => k.slice(9, -1) + '=' + v).join(', ');
  const meta = h('input', { name: 'meta', placeholder: 'metadata key=value', value: metaText });
  const day = (name, label) => h('label', {}, label + ' ', h('input', { type: 'date', name, value: params.get(name) || '' }));
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); apply(); } },
    field('agent', 'agent'), field('flow', 'flow'), status, field('instance', 'instance'), field('parent', 'parent run'), meta,
    day('from', 'from'), day('to', 'before'), h('label', {}, roots, ' top-level only'), h('button', {}, 'Filter'));
  const table = h('tbody');
  const more = h('p', { class: 'muted' });
  main.replaceChildren(h('h1', {}, 'Runs'), form, h('table', { class: 'runs' },
    h('thead', {}, h('tr', {}, ['Run', 'Agent / flow', 'Status', 'Created', 'Tokens', 'Cost', 'Path'].map((t) => h('th', {}, t)))), table), more);
  let cursor = '';
  let earlier = []; // the cursors of the pages before this one
  const apply = () => {
    const q = new URLSearchParams();
    for (const el of form.elements) {
      if (el.name === 'roots') {
        if (el.checked) q.set('roots', 'true');
      } else if (el.name === 'meta') {
        for (const pair of el.value.split(',').filter((p) => p.trim())) {
          const [k, ...v] = pair.split('=');
          const key = 'metadata[' + k.trim() + ']';
          if (!k.trim() || !v.length || q.has(key)) {
            showError(new Error('metadata: write key=value pairs, each key once, separated by commas (' + pair.trim() + ')'));
            return;
          }
          q.set(key, v.join('=').trim());
        }
      } else if (el.name && el.value) q.set(el.name, el.value);
    }
    showError(null);
    sessionStorage.setItem('myriad.runs.filters', q.toString());
    for (const k of [...params.keys()]) params.delete(k);
    q.forEach((v, k) => params.set(k, v));
    cursor = '';
    earlier = [];
    load().catch(showError);
  };
  const load = async () => {
    const q = new URLSearchParams(params);
    if (q.get('parent')) q.delete('roots'); // a parent's children are not top-level
    q.set('limit', '50');
    if (cursor) q.set('cursor', cursor);
    const list = await get('/v1/runs?' + q);
    table.replaceChildren(...list.runs.map((r) => h('tr', { 'data-run': r.id },
      h('td', {}, h('a', { href: '#/run/' + r.id }, r.id)), h('td', {}, who(r)), h('td', {}, statusBadge(r)), h('td', {}, when(r.created_at)),
      h('td', { class: 'num' }, r.usage.input_tokens + r.usage.output_tokens), h('td', { class: 'num' }, money(r.cost && r.cost.usd)), h('td', {}, r.path || ''))));
    if (!list.runs.length) table.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No runs match.')));
    const page = (move) => (ev) => { ev.preventDefault(); move(); load().then(() => window.scrollTo(0, 0), showError); };
    const older = list.next_cursor;
    more.replaceChildren(
      cursor ? h('a', { href: '#', class: 'newest', onclick: page(() => { cursor = ''; earlier = []; }) }, '⇤ Newest') : '',
      cursor ? h('a', { href: '#', class: 'newer', onclick: page(() => { cursor = earlier.pop() || ''; }) }, ' ← Newer') : '',
      older ? h('a', { href: '#', class: 'older', onclick: page(() => { earlier.push(cursor); cursor = older; }) }, ' Older runs →') : '');
  };
  return every(2000, load);
}

// --- A run: its record, a waterfall of its steps and child runs, every
// entry with its data, and what it waits for, live while it runs.
async function runPage([id]) {
  const head = h('div');
  const waiting = h('div');
  const waterfall = h('div', { class: 'waterfall' });
  const entries = h('ol', { class: 'entries' });
  main.replaceChildren(h('h1', {}, 'Run ', h('code', {}, id)), head, waiting, h('h2', {}, 'Timeline'), waterfall, h('h2', {}, 'Journal'), entries);
  const events = [];
  const refresh = async () => {
    const rec = await get('/v1/runs/' + encodeURIComponent(id));
    head.replaceChildren(h('dl', { class: 'record' },
      h('dt', {}, 'who'), h('dd', {}, who(rec), rec.parent ? h('span', {}, ' — child of ', h('a', { href: '#/run/' + rec.parent }, rec.parent)) : ''),
      h('dt', {}, 'status'), h('dd', {}, statusBadge(rec), rec.error ? h('span', { class: 'error' }, ' ' + rec.error.code + ': ' + rec.error.message) : ''),
      h('dt', {}, 'created'), h('dd', {}, when(rec.created_at), rec.ended_at ? ' — ended ' + when(rec.ended_at) + ' (' + ms(new Date(rec.ended_at) - new Date(rec.created_at)) + ')' : ''),
      h('dt', {}, 'tokens'), h('dd', {}, rec.usage.input_tokens + ' in, ' + rec.usage.output_tokens + ' out' + (rec.usage.cached_input_tokens ? ' (' + rec.usage.cached_input_tokens + ' cached)' : '')),
      rec.cost ? [h('dt', {}, 'cost'), h('dd', { class: 'cost' }, money(rec.cost.usd) + ' — ' + Object.entries({ ...rec.cost.models, ...rec.cost.tools }).map(([k, v]) => k + ' ' + money(v)).join(', '))] : '',
      rec.metadata && rec.metadata.forked_from ? [h('dt', {}, 'forked'), h('dd', { class: 'forked' }, 'from ', h('a', { href: '#/run/' + rec.metadata.forked_from }, rec.metadata.forked_from),
        ' at step ' + rec.metadata.forked_at + ' — ', h('a', { href: `#/compare/${rec.metadata.forked_from}/${rec.id}` }, 'compare side by side'))] : '',
      h('dt', {}, 'input'), h('dd', {}, h('pre', {}, rec.input)),
      rec.output ? [h('dt', {}, 'output'), h('dd', {}, h('pre', { class: 'output' }, rec.output))] : ''));
    waiting.replaceChildren(...decisions(rec, refresh));
    return rec;
  };
  const rec0 = await refresh();
  const stop = new AbortController();
  // The timeline is drawn at most every half second, whatever the pace of
  // entries: a flow with a thousand children must not freeze the page.
  let drawing = null;
  const draw = () => {
    if (drawing) return;
    drawing = setTimeout(() => { drawing = null; waterfall.replaceChildren(...drawWaterfall(events)); }, 500);
  };
  follow(id, (ev) => {
    if (!ev.type || ev.type.startsWith('model.delta') || ev.type === 'tool.progress') return;
    events.push(ev);
    entries.append(entry(ev, ev.run_id === id && !rec0.parent ? id : null));
    draw();
    if (ev.run_id === id) refresh().catch(showError);
  }, stop.signal).catch((e) => { if (e.name !== 'AbortError') showError(e); });
  return () => { stop.abort(); clearTimeout(drawing); };
}

// entry shows one journal entry: its step, its run's path, what it says;
// forkable names the root run whose entries can start a fork.
function entry(ev, forkable) {
  const d = ev.data || {};
  let text = ev.type;
  switch (ev.type) {
    case 'run.started': text = 'started' + (d.input ? ': ' + d.input : ''); break;
    case 'model.response': {
      const calls = (d.message.tool_calls || []).map((c) => 'call ' + c.name + '(' + JSON.stringify(c.arguments) + ')');
      text = 'model turn ' + d.turn + ' (' + d.usage.input_tokens + '+' + d.usage.output_tokens + ' tokens, ' + ms(d.duration_ms) + (d.cost_usd ? ', ' + money(d.cost_usd) : '') + '): ' + [d.message.content, ...calls].filter(Boolean).join(' · ');
      break;
    }
    case 'tool.started': text = 'tool ' + d.name + ' started: ' + JSON.stringify(d.arguments); break;
    case 'tool.finished': text = 'tool ' + d.name + (d.is_error ? ' failed: ' : ' → ') + d.content + ' (' + ms(d.duration_ms) + (d.cost_usd ? ', ' + money(d.cost_usd) : '') + ')'; break;
    case 'run.completed': text = 'completed: ' + d.output; break;
    case 'run.failed': text = 'failed: ' + d.code + ': ' + d.message; break;
    case 'approval.requested': text = 'waits for approval ' + d.approval_id + ': ' + d.name + '(' + JSON.stringify(d.arguments) + ')'; break;
    case 'approval.decided': text = 'approval ' + d.approval_id + ': ' + d.decision + (d.reason ? ' — ' + d.reason : ''); break;
    case 'run.waiting': text = 'waiting' + (d.approvals ? ' for approval of ' + d.approvals.join(', ') : '') + (d.inputs ? ' for input at ' + d.inputs.join(', ') : '') + (d.children ? ' for ' + d.children.length + ' child runs' : ''); break;
    case 'children.reported': text = (d.reports || []).map((r) => 'child ' + r.run_id + ' ' + r.status + (r.error ? ': ' + r.error : '')).join(' · '); break;
    case 'node.started': text = 'node ' + d.key + ' started' + (d.items ? ' over ' + d.items + ' items' : '') + (d.children ? ' (' + d.children.length + ' child runs)' : ''); break;
    case 'node.finished': text = 'node ' + d.key + (d.error ? ' failed: ' + d.error : ' finished') + (d.next && d.next.length ? ' → ' + d.next.join(', ') : '') + ' (' + ms(d.duration_ms) + ')'; break;
    case 'handoff': text = d.from + ' hands the conversation to ' + d.to + (d.reason ? ': ' + d.reason : ''); break;
    case 'run.in_doubt': text = 'in doubt over ' + d.name + ' (' + d.call_id + '): ' + d.reason; break;
    case 'tool.resolved': text = 'resolved ' + d.call_id + ': ' + d.action + (d.reason ? ' — ' + d.reason : ''); break;
    case 'input.requested': text = 'asks ' + d.key + ': ' + d.prompt; break;
    case 'input.received': text = 'answer to ' + d.key + ': ' + JSON.stringify(d.value) + (d.by_default ? ' (by default)' : ''); break;
    case 'run.canceled': text = 'canceled' + (d.reason ? ': ' + d.reason : ''); break;
    default: text = ev.type + ' ' + JSON.stringify(d);
  }
  const fork = async (body) => {
    try {
      const ref = await post(`/v1/runs/${forkable}/fork`, body);
      location.hash = '#/run/' + ref.id;
    } catch (e) { showError(e); }
  };
  // Fork with other instructions or another configured model, from here on.
  const changes = h('form', { class: 'fork-changes', hidden: true, onsubmit: (e) => {
    e.preventDefault();
    const body = { step: ev.step };
    const instructions = changes.elements.instructions.value.trim();
    const modelName = changes.elements.model.value.trim();
    if (instructions) body.instructions = instructions;
    if (modelName) body.model = modelName;
    fork(body);
  } }, h('textarea', { name: 'instructions', rows: 3, placeholder: 'instructions the agent goes on with (blank: its own)' }),
  h('input', { name: 'model', placeholder: 'model: a configured name (blank: its own)' }), h('button', {}, 'Fork'));
  const actions = forkable && !['run.completed', 'run.failed', 'run.canceled'].includes(ev.type) ? h('span', { class: 'actions' },
    h('button', { class: 'fork', title: 'Start a new run whose journal is this one up to here', onclick: () => fork({ step: ev.step }) }, 'Fork here'),
    h('button', { class: 'fork-with', type: 'button', title: 'Fork here, with other instructions or another model', onclick: () => { changes.hidden = !changes.hidden; } }, 'Fork with changes…'), changes,
    ev.type === 'tool.finished' ? h('button', { class: 'fork-result', title: 'Fork here, with another result for this call', onclick: () => {
      const content = prompt('The result ' + d.name + ' returns in the fork:', d.content);
      if (content !== null) fork({ step: ev.step, tool_result: { call_id: d.call_id, content } });
    } }, 'Fork with another result') : '') : '';
  // A child run's entries link to its own page.
  const path = forkable === null && ev.path && ev.path.includes('/') ? h('a', { href: '#/run/' + ev.run_id }, ev.path) : ev.path;
  return h('li', { class: 'entry ' + ev.type.replace('.', '-'), 'data-step': ev.step }, h('span', { class: 'step' }, ev.step), h('span', { class: 'path' }, path), h('span', { class: 'text' }, text, actions));
}

// --- Two runs side by side (a run and its fork): their journals, entry
// by entry.
async function comparePage([a, b]) {
  const stop = new AbortController();
  const column = (id) => {
    const list = h('ol', { class: 'entries' });
    follow(id, (ev) => { if (ev.type && ev.run_id === id && ev.type !== 'model.delta' && ev.type !== 'tool.progress') list.append(entry(ev, null)); }, stop.signal)
      .catch((e) => { if (e.name !== 'AbortError') showError(e); });
    return h('section', { class: 'column', 'data-run': id }, h('h2', {}, h('a', { href: '#/run/' + id }, id)), list);
  };
  main.replaceChildren(h('h1', {}, 'Compare'), h('div', { class: 'compare' }, column(a), column(b)));
  return () => stop.abort();
}

// drawWaterfall draws a bar per model call, tool call and child run, on
// one time axis from the tree's first entry.
function drawWaterfall(events) {
  if (!events.length) return [];
  const bars = [];
  const starts = {};
  for (const ev of events) {
    const end = new Date(ev.time).getTime();
    const d = ev.data || {};
    if (ev.type === 'run.started') starts[ev.run_id] = { at: end, path: ev.path };
    if (ev.type === 'model.response') bars.push({ label: ev.path + ' · model turn ' + d.turn, kind: 'model', start: end - d.duration_ms, end });
    if (ev.type === 'tool.finished') bars.push({ label: ev.path + ' · ' + d.name, kind: 'tool', start: end - d.duration_ms, end });
    if (['run.completed', 'run.failed', 'run.canceled'].includes(ev.type) && starts[ev.run_id]) {
      bars.push({ label: ev.path, kind: 'run', start: starts[ev.run_id].at, end });
    }
  }
  const ended = new Set(bars.filter((b) => b.kind === 'run').map((b) => b.label));
  for (const s of Object.values(starts)) {
    if (!ended.has(s.path)) bars.push({ label: s.path + ' (not ended)', kind: 'run open', start: s.at, end: Date.now() });
  }
  let t0 = Infinity, t1 = -Infinity;
  for (const b of bars) { t0 = Math.min(t0, b.start); t1 = Math.max(t1, b.end); }
  t1 = Math.max(t1, t0 + 1);
  bars.sort((a, b) => a.start - b.start);
  const shown = 150;
  const more = bars.length > shown ? [h('p', { class: 'muted' }, `… and ${bars.length - shown} more steps and child runs (the journal below has them all)`)] : [];
  return bars.slice(0, shown).map((b) => h('div', { class: 'bar-row' }, h('span', { class: 'bar-label' }, b.label),
    h('span', { class: 'bar-track' }, h('span', {
      class: 'bar ' + b.kind,
      style: { marginLeft: ((b.start - t0) / (t1 - t0)) * 100 + '%', width: Math.max(((b.end - b.start) / (t1 - t0)) * 100, 0.5) + '%' },
      title: ms(b.end - b.start),
    })), h('span', { class: 'bar-time' }, ms(b.end - b.start)))).concat(more);
}

// decisions are the forms that move a waiting or in-doubt run on.
function decisions(rec, done) {
  const out = [];
  const act = (fn) => async (ev) => {
    ev.preventDefault();
    const button = ev.target;
    button.disabled = true; // one decision per click
    try {
      await fn(new FormData(button.closest('form')));
      showError(null);
      button.blur();
      await done(true);
      refreshInboxCount();
    } catch (e) { showError(e); button.disabled = false; }
  };
  for (const a of rec.approvals || []) {
    if (a.decision) continue;
    const asked = JSON.stringify(a.arguments, null, 2);
    out.push(h('form', { class: 'decide', 'data-approval': a.approval_id },
      h('strong', {}, (a.agent || rec.agent) + ' wants to call ' + a.name),
      a.reason ? h('span', { class: 'muted' }, 'asked because ' + a.reason) : '',
      a.deadline ? h('span', { class: 'muted' }, 'if nobody decides by ' + when(a.deadline) + ': ' + (a.on_timeout || 'deny')) : '',
      h('label', { class: 'muted' }, 'arguments (edit them to approve with others)'),
      h('textarea', { name: 'arguments' }, asked),
      h('input', { name: 'reason', placeholder: 'reason' }),
      h('div', { class: 'buttons' },
        h('button', { class: 'approve', onclick: act((f) => post(`/v1/runs/${rec.id}/approvals/${a.approval_id}`, withArgs({ decision: 'approve', reason: f.get('reason') }, f.get('arguments'), asked))) }, 'Approve'),
        h('button', { class: 'deny', onclick: act((f) => post(`/v1/runs/${rec.id}/approvals/${a.approval_id}`, { decision: 'deny', reason: f.get('reason') })) }, 'Deny'))));
  }
  for (const q of rec.input_requests || []) {
    const schema = q.schema || {};
    const text = schema.type === 'string' || (!schema.type && !schema.enum);
    const hint = schema.enum ? 'one of: ' + schema.enum.map((v) => JSON.stringify(v)).join(', ') : text ? 'answer' : 'answer (JSON: ' + (schema.type || 'any') + ')';
    out.push(h('form', { class: 'answer' }, h('strong', {}, q.prompt), schema.type || schema.enum ? h('span', { class: 'muted' }, 'expects ' + hint) : '',
      h('input', { name: 'value', placeholder: hint }),
      h('button', { onclick: act((f) => post(`/v1/runs/${rec.id}/input`, { key: q.key, value: text ? f.get('value') : asJSON(f.get('value')) })) }, 'Answer')));
  }
  if (rec.status === 'in_doubt' && rec.in_doubt) {
    out.push(h('form', { class: 'resolve' }, h('strong', {}, 'In doubt: did ' + rec.in_doubt.name + ' happen? ' + rec.in_doubt.reason),
      h('input', { name: 'result', placeholder: 'result to use with skip' }), h('input', { name: 'reason', placeholder: 'reason' }),
      ...['retry', 'skip', 'fail'].map((action) => h('button', { onclick: act((f) => post(`/v1/runs/${rec.id}/resolve`, { action, result: f.get('result'), reason: f.get('reason') })) }, action))));
  }
  return out;
}

// withArgs adds edited arguments to an approval, when they were edited.
function withArgs(d, args, asked) {
  if (args && args.trim() && args.trim() !== asked.trim()) {
    try { d.arguments = JSON.parse(args); } catch (e) { throw new Error('the edited arguments are not JSON: ' + e.message); }
  }
  return d;
}

function asJSON(v) {
  try { return JSON.parse(v); } catch { return v; }
}

// --- The inbox: approvals, questions and runs in doubt, across runs.
async function inboxPage() {
  const list = h('div');
  main.replaceChildren(h('h1', {}, 'Inbox'), h('p', { class: 'muted' }, 'Tool calls waiting for approval, questions waiting for an answer, runs in doubt.'), list);
  const load = async (force) => {
    const [waiting, doubt] = await Promise.all([get('/v1/runs?status=waiting&limit=200'), get('/v1/runs?status=in_doubt&limit=200')]);
    const runs = [...waiting.runs.filter((r) => (r.approvals || []).some((a) => !a.decision) || (r.input_requests || []).length), ...doubt.runs];
    const typing = list.contains(document.activeElement) && ['INPUT', 'TEXTAREA'].includes(document.activeElement.tagName);
    if (typing && force !== true) return; // someone is typing
    list.replaceChildren(...(runs.length ? runs.map((r) => h('section', { class: 'item', 'data-run': r.id },
      h('h3', {}, h('a', { href: '#/run/' + r.id }, who(r)), ' ', statusBadge(r), h('span', { class: 'muted' }, ' ' + r.id)),
      ...decisions(r, load))) : [h('p', { class: 'muted' }, 'Nothing waits for a person.')]));
  };
  return every(3000, load);
}

async function refreshInboxCount() {
  try {
    const [waiting, doubt] = await Promise.all([get('/v1/runs?status=waiting&limit=200'), get('/v1/runs?status=in_doubt&limit=200')]);
    const n = waiting.runs.filter((r) => r.waiting_for === 'approval' || r.waiting_for === 'input').length + doubt.runs.length;
    document.getElementById('inbox-count').textContent = n ? '(' + n + ')' : '';
  } catch { /* the page shows errors */ }
}

// --- Agents and flows: definitions, who calls whom, and a box to start a run.
async function agentsPage() {
  const [{ agents }, { flows }] = await Promise.all([get('/v1/agents'), get('/v1/flows')]);
  const start = (kind, name) => h('form', { class: 'start', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const body = { [kind]: name, input: f.get('input') };
      if (f.get('instance')) body.instance = f.get('instance');
      if (f.get('state') && f.get('state').trim()) {
        try { body.state = JSON.parse(f.get('state')); } catch (e) { throw new Error('the state is not JSON: ' + e.message); }
      }
      const ref = await post('/v1/runs', body);
      location.hash = '#/run/' + ref.id;
    } catch (e) { showError(e); }
  } }, h('input', { name: 'input', placeholder: 'a message to start a run', required: true }),
  kind === 'agent' ? h('input', { name: 'instance', placeholder: 'instance (optional)' }) : h('textarea', { name: 'state', placeholder: 'initial state, a JSON object (optional)' }),
  h('button', {}, 'Run'));
  main.replaceChildren(h('h1', {}, 'Agents'), h('div', { class: 'cards' }, ...agents.map((a) => h('section', { class: 'card', 'data-agent': a.name },
    h('h3', {}, a.name), a.description ? h('p', {}, a.description) : '',
    h('p', { class: 'muted' }, 'model ' + a.model), a.tools.length ? h('p', {}, 'tools: ' + a.tools.join(', ')) : '',
    (a.sub_agents || []).length ? h('p', {}, 'calls: ' + a.sub_agents.join(', ')) : '', (a.handoffs || []).length ? h('p', {}, 'hands off to: ' + a.handoffs.join(', ')) : '',
    start('agent', a.name)))), h('h2', {}, 'Team'), team(agents),
  h('h1', {}, 'Flows'), flows.length ? h('div', { class: 'cards' }, ...flows.map((f) => h('section', { class: 'card', 'data-flow': f.name },
    h('h3', {}, f.name), f.description ? h('p', {}, f.description) : '', h('p', {}, 'starts at ' + f.start.join(', ')), h('p', { class: 'muted' }, 'nodes: ' + f.nodes.join(', ')),
    start('flow', f.name)))) : h('p', { class: 'muted' }, 'No flows.'),
  ...flows.flatMap((f) => [h('h2', {}, 'Flow ' + f.name), h('div', { class: 'flow-graph', 'data-flow': f.name }, flowGraph(f))]));
}

// team draws who calls whom: an arrow from an agent to each sub-agent it
// calls (solid) and each agent it may hand off to (dashed).
function team(agents) {
  const edges = agents.flatMap((a) => [...(a.sub_agents || []).map((b) => ({ from: a.name, to: b })), ...(a.handoffs || []).map((b) => ({ from: a.name, to: b, dashed: true }))]);
  if (!edges.length) return h('p', { class: 'muted' }, 'No agent calls another.');
  const names = agents.map((a) => a.name);
  return graph(names, edges, names.filter((n) => !edges.some((e) => e.to === n)), {});
}

// flowGraph draws a flow's nodes from its start: next edges solid, route
// edges dashed with their condition.
function flowGraph(f) {
  return graph(f.nodes, (f.edges || []).map((e) => ({ from: e.from, to: e.to, dashed: e.route, label: e.route ? e.when || 'else' : '' })), f.start, f.kinds || {});
}

// graph lays nodes out in rows by their distance from the roots and draws
// an arrow per edge (an edge back to an earlier row is a loop).
function graph(nodes, edges, roots, subtitles) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs, ...kids) => { const el = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); el.append(...kids); return el; };
  const depth = {};
  let frontier = roots.length ? [...roots] : nodes.slice(0, 1);
  for (const r of frontier) depth[r] = 0;
  while (frontier.length) {
    const next = [];
    for (const n of frontier) for (const e of edges) if (e.from === n && depth[e.to] === undefined) { depth[e.to] = depth[n] + 1; next.push(e.to); }
    frontier = next;
  }
  const layers = [];
  for (const n of nodes) (layers[depth[n] ?? layers.length] ||= []).push(n);
  const rows = layers.filter(Boolean).flatMap((layer) => Array.from({ length: Math.ceil(layer.length / 4) }, (_, i) => layer.slice(i * 4, i * 4 + 4)));
  const pos = {};
  rows.filter(Boolean).forEach((row, r) => row.forEach((n, i) => { pos[n] = { x: ((i + 0.5) * 820) / row.length, y: 40 + r * 90 }; }));
  const height = 40 + rows.filter(Boolean).length * 90;
  return svg('svg', { class: 'team', viewBox: `0 0 820 ${height}`, role: 'img' },
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '6', markerHeight: '6', orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))),
    ...edges.filter((e) => pos[e.from] && pos[e.to]).flatMap((e) => {
      const a = pos[e.from], b = pos[e.to];
      if (e.from === e.to) { // a loop on itself: an arc on its right
        const arc = svg('path', { d: `M ${a.x + 80} ${a.y - 8} C ${a.x + 130} ${a.y - 40}, ${a.x + 130} ${a.y + 40}, ${a.x + 80} ${a.y + 8}`, class: 'edge' + (e.dashed ? ' handoff' : ''), 'marker-end': 'url(#arrow)' });
        return e.label ? [arc, svg('text', { x: a.x + 128, y: a.y + 4, class: 'edge-label' }, e.label)] : [arc];
      }
      const down = b.y > a.y;
      const line = svg('line', { x1: a.x, y1: a.y + (down ? 14 : -14), x2: b.x, y2: b.y + (down ? -14 : 14), class: 'edge' + (e.dashed ? ' handoff' : ''), 'marker-end': 'url(#arrow)' });
      return e.label ? [line, svg('text', { x: (a.x + b.x) / 2 + 4, y: (a.y + b.y) / 2, class: 'edge-label' }, e.label)] : [line];
    }),
    ...nodes.filter((n) => pos[n]).map((n) => svg('g', {}, svg('rect', { x: pos[n].x - 80, y: pos[n].y - 16, width: 160, height: 32, rx: 6 }),
      svg('text', { x: pos[n].x, y: pos[n].y + (subtitles[n] ? -1 : 5), 'text-anchor': 'middle' }, n),
      subtitles[n] ? svg('text', { x: pos[n].x, y: pos[n].y + 11, 'text-anchor': 'middle', class: 'subtitle' }, subtitles[n]) : '')));
}

// --- Tools: calls, failures, latency and cost by tool, over the runs that
// ended (GET /v1/usage?group_by=tool).
async function toolsPage() {
  const u = await get('/v1/usage?group_by=tool');
  const pct = (n, d) => (d ? Math.round((100 * n) / d) + '%' : '');
  const row = (g) => h('tr', { 'data-tool': g.key }, h('td', {}, g.key), h('td', { class: 'num' }, g.calls || 0), h('td', { class: 'num' }, g.errors || 0),
    h('td', { class: 'num' + ((g.errors || 0) * 10 > (g.calls || 0) ? ' bad' : '') }, pct(g.errors || 0, g.calls)),
    h('td', { class: 'num' }, g.calls ? ms(g.duration_ms / g.calls) : ''), h('td', { class: 'num' }, money(g.usd) || '$0'), h('td', { class: 'num' }, g.runs));
  main.replaceChildren(h('h1', {}, 'Tools'),
    h('p', { class: 'muted' }, 'Tool calls of the runs that ended, their child runs included; sub-agent calls count as their runs\' own tool calls.'),
    u.groups.length ? h('table', { class: 'usage tools' },
      h('thead', {}, h('tr', {}, ['tool', 'calls', 'failed', 'error rate', 'mean latency', 'cost', 'runs'].map((t, j) => h('th', { class: j ? 'num' : '' }, t)))),
      h('tbody', {}, ...u.groups.map(row))) : h('p', {}, 'No tool has been called yet.'));
}

// --- Cost: totals by agent, model and tool (GET /v1/usage).
async function usagePage() {
  const groups = ['agent', 'model', 'tool'];
  const [tables, { budgets }] = await Promise.all([Promise.all(groups.map((g) => get('/v1/usage?group_by=' + g))), get('/v1/budgets')]);
  // Cost over the last 14 days (UTC), a bar per day, by agent.
  const day = (d) => d.toISOString().slice(0, 10);
  const today = new Date();
  const days = Array.from({ length: 14 }, (_, i) => new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - 13 + i)));
  const perDay = await Promise.all(days.map((d) => get(`/v1/usage?group_by=agent&from=${day(d)}&to=${day(new Date(d.getTime() + 86400000))}`)));
  const top = Math.max(...perDay.map((u) => u.total.usd), 1e-9);
  const overTime = h('div', { class: 'days' }, ...perDay.map((u, i) => h('div', { class: 'day', title: day(days[i]) + ': ' + (money(u.total.usd) || '$0') + ' in ' + u.total.runs + ' runs' },
    h('div', { class: 'day-bar', style: { height: Math.round((u.total.usd / top) * 120) + 'px' } }),
    h('span', { class: 'day-label' }, day(days[i]).slice(5)))));
  main.replaceChildren(h('h1', {}, 'Cost'), h('p', { class: 'muted' }, 'Root runs, their child runs included, at the prices in myriad.yaml.'),
    h('h2', {}, 'Last 14 days'), overTime, ...budgetTable(budgets),
    ...tables.flatMap((u, i) => {
      // A run's tokens are not split by model or tool: those tables show cost only.
      const tokens = groups[i] === 'agent';
      const row = (cls, key, g) => h('tr', { class: cls }, h('td', {}, key), h('td', { class: 'num' }, g.runs), h('td', { class: 'num' }, money(g.usd) || '$0'),
        tokens ? [h('td', { class: 'num' }, g.input_tokens || 0), h('td', { class: 'num' }, g.output_tokens || 0)] : []);
      return [h('h2', {}, 'By ' + groups[i]), h('table', { class: 'usage', 'data-group': groups[i] },
        h('thead', {}, h('tr', {}, ['', 'runs', 'cost', ...(tokens ? ['input tokens', 'output tokens'] : [])].map((t, j) => h('th', { class: j ? 'num' : '' }, t)))),
        h('tbody', {}, ...u.groups.map((g) => row('', g.key || '(none)', g)), row('total', 'total', u.total)))];
    }));
}

// budgetTable shows the budgets runs share (GET /v1/budgets): a row per
// budget and metadata value, with what was spent in the window until now.
function budgetTable(budgets) {
  if (!budgets.length) return [];
  const window = (s) => (s % 86400 === 0 && s > 86400 ? s / 86400 + 'd' : s % 3600 === 0 ? s / 3600 + 'h' : s % 60 === 0 ? s / 60 + 'm' : s + 's');
  const rows = budgets.flatMap((b) => {
    const scope = (b.agent ? 'agent ' + b.agent : 'all agents') + (b.metadata_key ? ', per ' + b.metadata_key : '');
    const spent = b.spent.length ? b.spent : [{ usd: 0 }];
    return spent.map((v) => h('tr', { 'data-budget': b.name }, h('td', {}, b.name), h('td', {}, scope), h('td', {}, v.value || ''),
      h('td', { class: 'num' }, money(v.usd) || '$0'), h('td', {}, h('meter', { min: 0, max: b.usd, value: v.usd, high: b.usd * 0.8 })),
      h('td', { class: 'num' }, '$' + b.usd), h('td', { class: 'num' }, window(b.window_seconds))));
  });
  return [h('h2', {}, 'Budgets'), h('p', { class: 'muted' }, 'Limits runs share; spend in each window until now, calls in flight at what they reserved.'),
    h('table', { class: 'usage budgets' }, h('thead', {}, h('tr', {}, ['budget', 'keeps', 'value', 'spent', '', 'limit', 'window'].map((t) => h('th', {}, t)))),
      h('tbody', {}, ...rows))];
}

const tokenInput = document.getElementById('token');
tokenInput.value = token();
document.getElementById('token-form').addEventListener('submit', (ev) => { ev.preventDefault(); setToken(tokenInput.value.trim()); route(); });
tokenInput.addEventListener('change', () => { setToken(tokenInput.value.trim()); route(); });
window.addEventListener('hashchange', route);
route();
