// The console's only way to the server: the public HTTP API (docs/api.md),
// with the token a person typed, if any.

export function token() {
  return sessionStorage.getItem('myriad.token') || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem('myriad.token', t);
  else sessionStorage.removeItem('myriad.token');
}

function headers(extra) {
  const h = { ...extra };
  if (token()) h.Authorization = 'Bearer ' + token();
  return h;
}

// APIError is an error answer: {error: {code, message}}.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const e = data && data.error ? data.error : { code: 'http', message: text || resp.statusText };
    throw new APIError(resp.status, e.code, e.message);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);

// follow reads a run's event stream (SSE over fetch, so the token can go in
// a header) and calls onEvent with each journal entry and live message
// until the signal aborts or the stream ends.
export async function follow(runID, onEvent, signal) {
  const resp = await fetch(`/v1/runs/${encodeURIComponent(runID)}/events`, { headers: headers({ Accept: 'text/event-stream' }), signal });
  if (!resp.ok) {
    let e = { code: 'http', message: resp.statusText };
    try { e = (await resp.json()).error; } catch { /* not JSON */ }
    throw new APIError(resp.status, e.code, e.message);
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}
