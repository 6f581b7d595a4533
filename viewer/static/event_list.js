// The list of events: its pages (by the API's cursors), the total, the paging buttons and
// the status line.

import { getJson } from './api.js';
import { byId } from './dom.js';
import { markInvalid } from './filters.js';
import { eventCount, formatNumber, isoOf } from './format.js';
import { EMPTY, LOADING, errorMessage, setStatus } from './status.js';
import { renderRows } from './table.js';
import { rangePairs } from './url_state.js';

const PAGE_SIZE = 50;

export class EventList {
  /** catalog: activities in words; isUtc(): the zone of the times; onSignedOut(): on a 401. */
  constructor({ catalog, isUtc, onSignedOut, note = '' }) {
    Object.assign(this, { catalog, isUtc, onSignedOut, note });
    this.body = byId('events').tBodies[0];
    this.controller = null;
    this.clear();
  }

  clear() {
    this.range = null;
    this.pairs = [];
    this.resolvedAt = null;
    this.cursors = [null]; // cursors[i]: the page[after] that fetches page i
    this.page = 0;
    this.records = [];
    this.total = 0;
    this.ready = false;
  }

  /**
   * Shows the first page of a query. A cursor is bound to its query's exact range, so the
   * range is resolved once, here, and kept for the later pages and the export.
   * range: {from, to} resolved at `now`; pairs: the filters and account as API parameters.
   */
  reload({ range, pairs, now }) {
    Object.assign(this, { range, pairs, resolvedAt: isoOf(new Date(now)), cursors: [null] });
    return this.load(0);
  }

  /** The next (+1) or previous (-1) page, if there is one. */
  turn(step) {
    const target = this.page + step;
    if (target < 0 || (step > 0 && !this.cursors[target])) return;
    this.load(target);
  }

  /** The parameters of an export of what the list shows: a preset ends when it was read. */
  exportPairs() {
    const range = { from: this.range.from, to: this.range.to || this.resolvedAt };
    return [...this.pairs, ...rangePairs(range)];
  }

  /** Drops what is shown and any answer still on its way (the session is over). */
  stop() {
    this.controller?.abort();
    this.clear();
    this.body.replaceChildren();
    byId('total').textContent = '';
  }

  async load(index) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const pairs = [...rangePairs(this.range), ...this.pairs, ['page[size]', String(PAGE_SIZE)]];
    if (this.cursors[index]) pairs.push(['page[after]', this.cursors[index]]);
    showLoading(true);
    try {
      const body = await getJson('/api/activity_logs', pairs, { signal: controller.signal });
      this.page = index;
      this.cursors.length = index + 1;
      this.cursors.push(body.page?.after || null);
      this.records = Array.isArray(body.data) ? body.data : [];
      this.total = Number(body.total) || 0;
      this.ready = true;
      markInvalid(null);
      this.render();
    } catch (error) {
      if (error.name === 'AbortError') return;
      this.showError(error);
    } finally {
      if (this.controller === controller) showLoading(false);
    }
  }

  /** Draws the rows again (the time zone changed); the API is not asked again. */
  renderRows() {
    if (this.ready)
      renderRows(this.body, this.records, { catalog: this.catalog, utc: this.isUtc() });
  }

  render() {
    this.renderRows();
    byId('total').textContent = eventCount(this.total);
    const shown = this.shownText();
    byId('page-info').textContent = shown;
    if (this.records.length === 0 && this.page === 0) {
      setStatus('empty', EMPTY);
    } else {
      setStatus('ready', `${shown ? `${shown}.` : 'No more events.'}${this.note}`);
    }
    setPaging(this.page > 0, Boolean(this.cursors[this.page + 1]));
    setExport(this.total > 0);
  }

  /** "Events 51–100 of 1,234", or '' when the page is empty. */
  shownText() {
    if (this.records.length === 0) return '';
    const first = this.page * PAGE_SIZE + 1;
    const last = this.page * PAGE_SIZE + this.records.length;
    return `Events ${formatNumber(first)}–${formatNumber(last)} of ${formatNumber(this.total)}`;
  }

  showError(error) {
    if (error.status === 401) {
      setStatus('error', errorMessage(error));
      this.onSignedOut();
      return;
    }
    const label = error.status === 400 ? markInvalid(error.parameter) : null;
    setStatus('error', errorMessage(error, label));
    this.ready = false;
    this.records = [];
    this.body.replaceChildren();
    byId('total').textContent = '';
    byId('page-info').textContent = '';
    setPaging(false, false);
    setExport(false);
  }
}

function showLoading(loading) {
  byId('events').setAttribute('aria-busy', String(loading));
  if (loading) setStatus('loading', LOADING);
}

function setPaging(hasPrevious, hasNext) {
  const previous = byId('prev-page');
  const next = byId('next-page');
  const focused = document.activeElement;
  previous.disabled = !hasPrevious;
  next.disabled = !hasNext;
  // A focused button that gets disabled drops the focus: keep it on the pager or the table.
  if ((focused === previous || focused === next) && focused.disabled) {
    (hasPrevious ? previous : hasNext ? next : byId('events')).focus();
  }
}

function setExport(enabled) {
  byId('export-csv').disabled = !enabled;
  byId('export-ndjson').disabled = !enabled;
}
