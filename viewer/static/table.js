// The events table: one row per event record, newest first as the API returns them.

import { el } from './dom.js';
import { formatTime } from './format.js';

const NONE = '—';

/** Replaces the table body with these records' rows. */
export function renderRows(tbody, records, { catalog, utc }) {
  tbody.replaceChildren(...records.map((record) => row(record, catalog, utc)));
}

function row(record, catalog, utc) {
  return el(
    'tr',
    { dataset: { eventId: record.id }, tabindex: '-1' },
    el('td', { class: 'c-time' }, timeButton(record, utc)),
    userCell(record.user || {}),
    el(
      'td',
      { class: 'c-activity', title: record.event_type },
      catalog.describe(record.event_type),
    ),
    resourceCell(record.resource || {}),
    workspaceCell(record.workspace || {}),
    outcomeCell(record.outcome || {}),
    el('td', { class: 'c-ip' }, record.details?.request?.ip || NONE),
  );
}

function timeButton(record, utc) {
  return el(
    'button',
    { type: 'button', class: 'open', title: 'Open the details of this event' },
    el('time', { datetime: record.timestamp }, formatTime(record.timestamp, utc)),
  );
}

function userCell(user) {
  const shown = user.name || user.email || user.id || NONE;
  const others = [user.name, user.email, user.id].filter((part) => part && part !== shown);
  if (user.type && user.type !== 'user') others.push(user.type.replaceAll('_', ' '));
  return el('td', { class: 'c-user', title: others.join(' · ') || null }, shown);
}

function resourceCell(resource) {
  return el(
    'td',
    { class: 'c-resource', title: resource.id ? `id: ${resource.id}` : null },
    el('span', { class: 'primary' }, resource.name || resource.id || NONE),
    resource.type ? el('small', { class: 'secondary' }, resource.type) : null,
  );
}

function workspaceCell(workspace) {
  return el(
    'td',
    { class: 'c-workspace', title: workspace.id ? `id: ${workspace.id}` : null },
    el('span', { class: 'primary' }, workspace.name || workspace.id || NONE),
    workspace.environment ? el('small', { class: 'secondary' }, workspace.environment) : null,
  );
}

/** "Success" or "Failed: reason"; the CSS adds a mark whose shape, not only its colour,
 * tells them apart (kept out of the text, so the cell reads as the outcome alone). */
export function outcomeBadge(outcome) {
  const failed = outcome.status === 'failure';
  const text = failed ? `Failed: ${outcome.reason || 'no reason given'}` : 'Success';
  return el(
    'span',
    { class: failed ? 'outcome outcome-failure' : 'outcome outcome-success' },
    text,
  );
}

function outcomeCell(outcome) {
  return el('td', { class: 'c-outcome' }, outcome.status ? outcomeBadge(outcome) : NONE);
}
