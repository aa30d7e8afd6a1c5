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
