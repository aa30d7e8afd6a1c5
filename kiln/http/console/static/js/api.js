// The REST API as the console calls it: OME's Basic auth with the whole token as user:password, the token
// kept in sessionStorage (gone with the tab), OME's envelope unwrapped, its error text kept for the user.

const KEY = 'kiln.accessToken';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function basic(token) {
  const utf8 = new TextEncoder().encode(token);
  let binary = '';
  for (const byte of utf8) binary += String.fromCharCode(byte);
  return 'Basic ' + btoa(binary);
}

// "[HTTP] Could not find the application: [default/x] (404)" -> "Could not find the application: [default/x]"
function readable(message) {
  return String(message || '').replace(/^\[[A-Za-z]+\]\s*/, '').replace(/\s*\(\d{3}\)$/, '');
}

export async function call(method, path, body, token = session.token) {
  // X-Kiln-Console: Kiln answers a 401 without its Basic challenge, so the browser's own password dialog
  // never opens over the console's login form
  const init = { method, headers: { Authorization: basic(token || ''), 'X-Kiln-Console': '1' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch('/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, `Kiln does not answer (${e.message})`);
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: reported below by status */ }
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent('kiln:unauthorized', { detail: readable(data && data.message) }));
    throw new ApiError(401, readable(data && data.message) || 'The access token was refused');
  }
  if (!response.ok) throw new ApiError(response.status, readable(data && data.message) || response.statusText);
  if (Array.isArray(data)) {  // a multi-status answer: one envelope per element
    const failed = data.find((item) => item.statusCode >= 300);
    if (failed) throw new ApiError(failed.statusCode, readable(failed.message));
    return data;
  }
  return data ? data.response : null;
}

export const seg = (name) => encodeURIComponent(name);
export const appPath = (vhost, app) => `/vhosts/${seg(vhost)}/apps/${seg(app)}`;
export const streamPath = (vhost, app, stream) => `${appPath(vhost, app)}/streams/${seg(stream)}`;

// A Server-Sent Events stream read with fetch, which (unlike EventSource) can send the Authorization header.
// Calls onOpen once the server accepted it, onEvent({id, event, data}) per event; resolves when the server
// ends the stream, rejects when it is refused or breaks (aborting through `signal` rejects too). Kiln sends
// a comment every 15 s on a quiet stream: nothing for `idleMs` means a connection that died silently.
export async function openStream(path, signal, onOpen, onEvent, { idleMs = 40000, token = session.token } = {}) {
  let response;
  try {
    response = await fetch('/v1' + path, {
      headers: { Authorization: basic(token || ''), 'X-Kiln-Console': '1', Accept: 'text/event-stream' },
      cache: 'no-store', signal,
    });
  } catch (e) {
    throw new ApiError(0, `Kiln does not answer (${e.message})`);
  }
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent('kiln:unauthorized', { detail: readable(data && data.message) }));
    }
    throw new ApiError(response.status, readable(data && data.message) || response.statusText);
  }
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { id: '', event: 'message', data: '' };
  for (;;) {
    let timer;
    const idle = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ApiError(0, `no data from the event stream for ${idleMs / 1000} s`)), idleMs);
    });
    let chunk;
    try {
      chunk = await Promise.race([reader.read(), idle]);
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
    const { value, done } = chunk;
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();  // an unfinished line waits for the next chunk
    for (const line of lines) {
      if (line === '') {  // a blank line ends an event
        if (event.data) onEvent({ ...event, data: event.data.replace(/\n$/, '') });
        event = { id: '', event: 'message', data: '' };
        continue;
      }
      if (line.startsWith(':')) continue;  // a comment: keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') event.data += text + '\n';
      else if (field === 'id') event.id = text;
      else if (field === 'event') event.event = text;
    }
  }
}
