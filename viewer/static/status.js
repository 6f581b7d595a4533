// The #status live region, and what each error tells the user to do.

import { byId } from './dom.js';

export const LOADING = 'Loading events…';
export const EMPTY =
  'No events match these filters in this time range. Widen the range or clear some filters.';
const UNAVAILABLE = 'The audit log could not be read right now: try again in a moment.';
const TOO_MANY = 'Too many requests: wait a few seconds and try again.';

/** state: loading | empty | error | ready. */
export function setStatus(state, text) {
  const status = byId('status');
  status.dataset.state = state;
  status.textContent = text;
}

/** What went wrong, in words, and what to do. fieldLabel: the filter a 400 names.
 * The API's message is kept as it is (it may name an account, a limit or a parameter). */
export function errorMessage(error, fieldLabel = null) {
  const message = stop(error.message);
  switch (error.status) {
    case 400:
      return badParameter(error, fieldLabel);
    case 401:
      return `Signed out: ${message} Sign in again from the platform.`;
    case 403:
      return `Access refused: ${message}`;
    case 404:
      return `Not found: ${message}`;
    case 429:
      return TOO_MANY;
    default:
      return withRequestId(
        error.status ? `${UNAVAILABLE} Details: ${message}` : UNAVAILABLE,
        error,
      );
  }
}

function badParameter(error, fieldLabel) {
  if (!error.parameter) return `${stop(error.message)} Check the filters and apply them again.`;
  const fix = fieldLabel
    ? `Correct the “${fieldLabel}” filter and apply again.`
    : 'Apply the filters again, or clear them.';
  return `${error.parameter}: ${stop(error.message)} ${fix}`;
}

function withRequestId(text, error) {
  return error.requestId ? `${text} Request ID: ${error.requestId}.` : text;
}

/** The text with a full stop at its end. */
function stop(text) {
  const trimmed = String(text || '').trim();
  return /[.!?]$/.test(trimmed) || !trimmed ? trimmed : `${trimmed}.`;
}
