// The viewer page: reads the session, keeps the view (filters, account, time zone) in the
// URL, and wires the form, the list, the detail dialog, the export and signing out.

import { getJson, post, queryString, setCsrfToken } from './api.js';
import { Catalog } from './catalog.js';
import { DetailDialog } from './detail.js';
import { byId } from './dom.js';
import { EventList } from './event_list.js';
import { submitExport } from './export.js';
import {
  convertCustomInputs,
  fillCatalogOptions,
  onRangeChange,
  readState,
  showState,
  showZoneHint,
} from './filters.js';
import { eventCount } from './format.js';
import {
  SIGNED_OUT,
  fillAccounts,
  showAccount,
  showBootError,
  showForbidden,
  showSignedOut,
  showUser,
  showView,
} from './shell.js';
import { errorMessage, setStatus } from './status.js';
import {
  defaultState,
  emptyFilters,
  filterPairs,
  resolveRange,
  stateFromSearch,
  urlPairs,
} from './url_state.js';

const session = { accountId: '', accounts: [] };
let state = defaultState();
let list = null;
let detail = null;

start();

async function start() {
  const catalogAnswer = loadCatalog(); // asked beside the session: it needs none
  let me;
  try {
    me = await getJson('/api/session');
  } catch (error) {
    if (error.status === 401) showSignedOut(SIGNED_OUT.none);
    else showBootError(errorMessage(error));
    return;
  }
  setCsrfToken(me.csrf_token);
  session.accountId = me.account_id || '';
  session.accounts = Array.isArray(me.accounts) ? me.accounts : [];
  showUser(me.user);
  byId('sign-out').addEventListener('click', signOut);
  if (session.accounts.length === 0) {
    showForbidden(me.denied_reason);
    return;
  }
  const catalog = await catalogAnswer;
  fillCatalogOptions(catalog);
  fillAccounts(session.accounts);
  list = new EventList({
    catalog,
    isUtc,
    onSignedOut: () => endSession(SIGNED_OUT.ended),
    note: catalog.activities.length
      ? ''
      : ' Activity names could not be loaded: actions are shown.',
  });
  detail = new DetailDialog({
    loadEvent,
    describeError: (error) => errorMessage(error),
    catalog,
    historyHref: (id) => urlOf(historyState(id)),
    onHistory: showHistory,
  });
  bindControls();
  showView('viewer');
  applyUrl();
}

/** The activity catalog (public: no session needed); without it actions are shown as they are. */
async function loadCatalog() {
  try {
    return new Catalog(await getJson('/api/activities'));
  } catch {
    return new Catalog();
  }
}

function bindControls() {
  byId('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    navigate(readState(state));
  });
  byId('clear').addEventListener('click', () => {
    showState(navigate({ ...defaultState(), accountId: state.accountId, tz: state.tz }));
    showZoneHint();
  });
  byId('f-range').addEventListener('change', onRangeChange);
  byId('tz-utc').addEventListener('change', onZoneChange);
  byId('account-picker').addEventListener('change', (event) => {
    navigate({ ...state, accountId: event.target.value });
    showAccount(currentAccount());
  });
  byId('prev-page').addEventListener('click', () => list.turn(-1));
  byId('next-page').addEventListener('click', () => list.turn(1));
  byId('export-csv').addEventListener('click', () => exportEvents('csv'));
  byId('export-ndjson').addEventListener('click', () => exportEvents('ndjson'));
  const rows = byId('events').tBodies[0];
  rows.addEventListener('click', onRowClick);
  rows.addEventListener('keydown', onRowKey);
  window.addEventListener('popstate', () => {
    detail.close();
    applyUrl();
  });
}

// --- the view and its URL ---------------------------------------------------------------

/** The URL's view: into the form, then its first page. */
function applyUrl() {
  state = stateFromSearch(location.search);
  showState(state);
  showAccount(currentAccount());
  showZoneHint();
  reload();
}

/** A new view: a new history entry, and its first page. */
function navigate(next) {
  state = next;
  const url = urlOf(state);
  if (url !== (location.search || location.pathname)) history.pushState(null, '', url);
  reload();
  return state;
}

function reload() {
  const now = Date.now();
  byId('export-note').hidden = true;
  list.reload({ range: resolveRange(state, now), pairs: queryPairs(), now });
}

function urlOf(someState) {
  const search = queryString(urlPairs(someState));
  return search ? `?${search}` : location.pathname;
}

function queryPairs() {
  return [...filterPairs(state), ...accountPairs()];
}

function isUtc() {
  return state.tz === 'utc';
}

// The account read: the URL's, else the user's own when they may read it, else the first.
function currentAccount() {
  if (state.accountId) return state.accountId;
  const own = session.accounts.includes(session.accountId);
  return own ? session.accountId : session.accounts[0];
}

/** account_id is sent only for an account other than the session's own. */
function accountPairs() {
  const account = currentAccount();
  return account && account !== session.accountId ? [['account_id', account]] : [];
}

/** Times in UTC or the browser's zone: the rows are drawn again, the API is not asked. */
function onZoneChange(event) {
  const utc = event.target.checked;
  convertCustomInputs(!utc, utc);
  state = { ...state, tz: utc ? 'utc' : '' };
  history.replaceState(null, '', urlOf(state));
  showZoneHint();
  list.renderRows();
}

// --- rows and the detail ----------------------------------------------------------------

function onRowClick(event) {
  const row = event.target.closest('tr[data-event-id]');
  if (!row) return;
  const onButton = event.target.closest('button.open');
  // Selecting text in a row (to copy an id, say) is not a request to open it.
  if (!onButton && (event.target.closest('a, button') || String(getSelection() || ''))) return;
  openRow(row);
}

function onRowKey(event) {
  if (event.key !== 'Enter' || !event.target.matches('tr[data-event-id]')) return;
  event.preventDefault();
  openRow(event.target);
}

function openRow(row) {
  detail.open(row.dataset.eventId, row.querySelector('button.open'), isUtc());
}

async function loadEvent(eventId) {
  try {
    const path = `/api/activity_logs/${encodeURIComponent(eventId)}`;
    return (await getJson(path, accountPairs())).data;
  } catch (error) {
    if (error.status === 401) endSession(SIGNED_OUT.ended);
    throw error;
  }
}

/** The current range, account and zone, with one resource's id as the only filter. */
function historyState(resourceId) {
  return { ...state, filters: { ...emptyFilters(), 'resource_ids[]': [resourceId] } };
}

function showHistory(resourceId) {
  showState(navigate(historyState(resourceId)));
  byId('events').focus();
}

// --- export and signing out -------------------------------------------------------------

function exportEvents(format) {
  if (!list.ready) return;
  submitExport(format, list.exportPairs());
  const note = byId('export-note');
  note.textContent =
    `Export of ${eventCount(list.total)} started (${format.toUpperCase()}). ` +
    'Your browser saves the file when it is ready.';
  note.hidden = false;
}

async function signOut() {
  try {
    await post('/sign-out');
  } catch (error) {
    if (error.status !== 401) {
      const text = `Signing out failed: ${errorMessage(error)}`;
      if (byId('viewer').hidden) showBootError(text);
      else setStatus('error', text);
      return;
    }
  }
  endSession(SIGNED_OUT.left);
}

/** Leaves no audit data in the page once the session is over. */
function endSession(message) {
  list?.stop();
  detail?.close();
  setCsrfToken('');
  showSignedOut(message);
}
