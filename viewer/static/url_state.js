// The view's state (range, filters, account, time zone) and its page URL, which uses the
// API's parameter names so that a view can be bookmarked and shared.

import { isoOf } from './format.js';

export const RANGES = {
  '1h': 3600e3,
  '24h': 24 * 3600e3,
  '7d': 7 * 24 * 3600e3,
  '30d': 30 * 24 * 3600e3,
};
export const DEFAULT_RANGE = '7d';

const LIST_FILTERS = [
  'users_ids[]',
  'actor_emails[]',
  'categories[]',
  'include_event_types[]',
  'include_resource_types[]',
  'resource_ids[]',
];
const SCALAR_FILTERS = ['workspace_id', 'environment', 'outcome', 'ip', 'q'];

export function emptyFilters() {
  const filters = {};
  for (const name of LIST_FILTERS) filters[name] = [];
  for (const name of SCALAR_FILTERS) filters[name] = '';
  return filters;
}

export function defaultState() {
  return { range: DEFAULT_RANGE, from: '', to: '', filters: emptyFilters(), accountId: '', tz: '' };
}

/** The state of a page URL's query string. */
export function stateFromSearch(search) {
  const params = new URLSearchParams(search);
  const state = defaultState();
  const range = params.get('range');
  const from = params.get('from') || '';
  const to = params.get('to') || '';
  if (range in RANGES) state.range = range;
  else if (range === 'custom' || from || to) state.range = 'custom';
  if (state.range === 'custom') Object.assign(state, { from, to });
  for (const name of LIST_FILTERS) state.filters[name] = params.getAll(name).filter(Boolean);
  // Links from other pages name one resource as resource_id.
  for (const id of params.getAll('resource_id')) {
    if (id && !state.filters['resource_ids[]'].includes(id))
      state.filters['resource_ids[]'].push(id);
  }
  for (const name of SCALAR_FILTERS) state.filters[name] = params.get(name) || '';
  state.accountId = params.get('account_id') || '';
  state.tz = (params.get('tz') || '').toLowerCase() === 'utc' ? 'utc' : '';
  return state;
}

/** The page URL's parameters of a state (none when all is default); empty values left out. */
export function urlPairs(state) {
  const pairs = [];
  if (state.range !== DEFAULT_RANGE) pairs.push(['range', state.range]);
  if (state.range === 'custom') {
    if (state.from) pairs.push(['from', state.from]);
    if (state.to) pairs.push(['to', state.to]);
  }
  pairs.push(...filterPairs(state));
  if (state.accountId) pairs.push(['account_id', state.accountId]);
  if (state.tz) pairs.push(['tz', state.tz]);
  return pairs;
}

/** The filters as API parameters (no range, account or paging). */
export function filterPairs(state) {
  const pairs = [];
  for (const name of LIST_FILTERS) {
    for (const value of state.filters[name]) pairs.push([name, value]);
  }
  for (const name of SCALAR_FILTERS) {
    if (state.filters[name]) pairs.push([name, state.filters[name]]);
  }
  return pairs;
}

/** The range as the API's from/to: a preset becomes "from now - range", with no "to". */
export function resolveRange(state, nowMs) {
  if (state.range === 'custom') return { from: state.from || null, to: state.to || null };
  return { from: isoOf(new Date(nowMs - RANGES[state.range])), to: null };
}

export function rangePairs({ from, to }) {
  const pairs = [];
  if (from) pairs.push(['from', from]);
  if (to) pairs.push(['to', to]);
  return pairs;
}
