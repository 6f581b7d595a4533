// Calls to the viewer's API, authenticated by the session cookie and its CSRF token.

let csrfToken = '';

export function setCsrfToken(token) {
  csrfToken = token || '';
}

export function getCsrfToken() {
  return csrfToken;
}

/** An answer other than 2xx, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor({
    status,
    code = '',
    message = '',
    parameter = null,
    requestId = null,
    retryAfter = null,
  }) {
    super(message);
    this.status = status;
    this.code = code;
    this.parameter = parameter;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

/** "a=1&users_ids[]=2": the brackets of the API's names are kept readable. */
export function queryString(pairs) {
  return pairs.map(([name, value]) => `${encodeName(name)}=${encodeURIComponent(value)}`).join('&');
}

function encodeName(name) {
  return encodeURIComponent(name).replace(/%5B/g, '[').replace(/%5D/g, ']');
}

function headers() {
  const list = { Accept: 'application/json' };
  if (csrfToken) list['X-CSRF-Token'] = csrfToken;
  return list;
}

/** GET path?pairs as JSON; throws ApiError (or the AbortError of `signal`). */
export async function getJson(path, pairs = [], { signal } = {}) {
  const url = pairs.length ? `${path}?${queryString(pairs)}` : path;
  const response = await send(url, { method: 'GET', signal });
  return response.json();
}

/** POST with no body (sign-out); a redirect counts as success. */
export async function post(path) {
  await send(path, { method: 'POST', redirect: 'manual' });
}

async function send(url, options) {
  let response;
  try {
    response = await fetch(url, { credentials: 'same-origin', headers: headers(), ...options });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError({ status: 0, code: 'network', message: 'the viewer did not answer' });
  }
  if (response.ok || response.type === 'opaqueredirect') return response;
  throw await errorOf(response);
}

async function errorOf(response) {
  let body = null;
  try {
    body = (await response.json()).error;
  } catch {
    // Not the API's JSON (a proxy's page, say): the status alone says what happened.
  }
  return new ApiError({
    status: response.status,
    code: body?.code || '',
    message: typeof body?.message === 'string' ? body.message : `HTTP ${response.status}`,
    parameter: typeof body?.parameter === 'string' ? body.parameter : null,
    requestId: response.headers.get('X-Request-ID'),
    retryAfter: response.headers.get('Retry-After'),
  });
}
