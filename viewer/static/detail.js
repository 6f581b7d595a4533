// The event's detail dialog: every field of one record, its request and its changes.

import { byId, el } from './dom.js';
import { formatTime, localZoneName, valueText } from './format.js';
import { outcomeBadge } from './table.js';

const NOT_RECORDED = 'Not recorded';

export class DetailDialog {
  /**
   * loadEvent(id) -> record (throws ApiError); describeError(error) -> text;
   * historyHref(resourceId) -> URL; onHistory(resourceId) shows that resource's events.
   */
  constructor({ loadEvent, describeError, catalog, historyHref, onHistory }) {
    Object.assign(this, { loadEvent, describeError, catalog, historyHref });
    this.dialog = byId('detail');
    this.history = byId('detail-history');
    this.opener = null;
    this.resourceId = null;
    this.request = 0;
    byId('detail-close').addEventListener('click', () => this.close());
    this.dialog.addEventListener('close', () => this.restoreFocus());
    // A click on the dialog element itself (not its content) is a click on the backdrop.
    this.dialog.addEventListener('click', (event) => {
      if (event.target === this.dialog) this.close();
    });
    this.history.addEventListener('click', (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      const id = this.resourceId;
      this.opener = null; // the rows are about to be replaced: the list takes the focus
      this.close();
      onHistory(id);
    });
  }

  /** Opens the dialog for one event; focus goes back to `opener` when it closes. */
  async open(eventId, opener, utc) {
    const request = ++this.request;
    this.opener = opener;
    this.showLoading();
    if (!this.dialog.open) this.dialog.showModal();
    try {
      const record = await this.loadEvent(eventId);
      if (request === this.request && this.dialog.open) this.render(record, utc);
    } catch (error) {
      if (request === this.request && this.dialog.open) this.showError(error);
    }
  }

  close() {
    this.request += 1; // an answer still on its way is dropped
    if (this.dialog.open) this.dialog.close();
  }

  restoreFocus() {
    const opener = this.opener;
    this.opener = null;
    if (opener?.isConnected) opener.focus();
  }

  showLoading() {
    byId('detail-title').textContent = 'Loading the event…';
    byId('detail-error').hidden = true;
    byId('detail-body').setAttribute('aria-busy', 'true');
    byId('detail-body').hidden = true;
    for (const id of ['detail-fields', 'detail-request']) byId(id).replaceChildren();
    byId('detail-changes').tBodies[0].replaceChildren();
    byId('detail-footer').hidden = true;
  }

  showError(error) {
    byId('detail-title').textContent = 'The event could not be opened';
    byId('detail-body').removeAttribute('aria-busy');
    const message = byId('detail-error');
    message.textContent = this.describeError(error);
    message.hidden = false;
  }

  render(record, utc) {
    const words = this.catalog.phrase(record.event_type);
    byId('detail-title').textContent = `${words} — ${formatTime(record.timestamp, utc)}`;
    byId('detail-fields').replaceChildren(...this.fields(record));
    byId('detail-request').replaceChildren(...requestEntries(record.details?.request || {}));
    byId('detail-changes').tBodies[0].replaceChildren(...changeRows(record.changes || []));
    this.resourceId = record.resource?.id || null;
    byId('detail-footer').hidden = !this.resourceId;
    if (this.resourceId) this.history.href = this.historyHref(this.resourceId);
    byId('detail-body').hidden = false;
    byId('detail-body').removeAttribute('aria-busy');
  }

  fields(record) {
    const user = record.user || {};
    const resource = record.resource || {};
    const workspace = record.workspace || {};
    const category = record.category
      ? withCode(this.catalog.categoryTitle(record.category), record.category)
      : null;
    const activity = this.catalog.phrase(record.event_type);
    return [
      entry('Event ID', record.id, 'mono'),
      entry('Time (UTC)', instant(record.timestamp, true)),
      entry(`Time (local, ${localZoneName()})`, formatTime(record.timestamp, false)),
      entry('Activity', `${activity} (${record.event_type})`),
      entry('Category', category),
      entry('User ID', user.id, 'mono'),
      entry('User type', user.type),
      entry('User name', user.name),
      entry('User e-mail', user.email),
      entry('Resource ID', resource.id, 'mono'),
      entry('Resource type', resource.type),
      entry('Resource name', resource.name),
      entry('Workspace ID', workspace.id, 'mono'),
      entry('Workspace name', workspace.name),
      entry('Environment', workspace.environment),
      entry('Outcome', record.outcome?.status ? outcomeBadge(record.outcome) : null),
      entry('Source', record.source),
      entry('Ingested at', instant(record.ingested_at, true)),
      ...activityEntries(record.details || {}),
    ];
  }
}

/** One dt/dd pair; an empty value reads "Not recorded". */
function entry(term, value, valueClass = null) {
  const missing = value === null || value === undefined || value === '';
  return el(
    'div',
    { class: 'entry' },
    el('dt', {}, term),
    missing ? el('dd', { class: 'missing' }, NOT_RECORDED) : el('dd', { class: valueClass }, value),
  );
}

/** Words followed by the exact value they stand for, in small type. */
function withCode(words, code) {
  return el('span', {}, words, ' ', el('small', { class: 'iso' }, code));
}

function instant(iso, utc) {
  return iso ? withCode(formatTime(iso, utc), iso) : null;
}

/** The activity's own fields, all but the request context (shown on its own). */
function activityEntries(details) {
  return Object.entries(details)
    .filter(([key]) => key !== 'request')
    .map(([key, value]) => {
      const pair = entry(key, valueText(value), 'mono');
      pair.classList.add('activity-detail');
      return pair;
    });
}

function requestEntries(request) {
  return [
    entry('IP address', request.ip, 'mono'),
    entry('User agent', request.user_agent),
    entry('Request ID', request.request_id, 'mono'),
    entry('Session ID', request.session_id, 'mono'),
  ];
}

function changeRows(changes) {
  if (changes.length === 0) {
    return [
      el('tr', {}, el('td', { colspan: '3', class: 'no-changes' }, 'No field-level changes')),
    ];
  }
  return changes.map((change) => {
    const before = change.before ?? null;
    const after = change.after ?? null;
    const differs = valueText(before) !== valueText(after);
    return el(
      'tr',
      {},
      el('td', { class: 'c-field' }, String(change.field ?? '')),
      el('td', { class: 'c-before' }, changeValue(before, differs ? 'del' : null)),
      el('td', { class: 'c-after' }, changeValue(after, differs ? 'ins' : null)),
    );
  });
}

/** A value before or after; a missing one reads "not set" (nothing to strike or insert). */
function changeValue(value, mark) {
  if (value === null) return el('span', { class: 'unset' }, 'not set');
  const text = valueText(value);
  return mark ? el(mark, {}, text) : text;
}
