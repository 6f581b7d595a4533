// The filter form: its options from the catalog, and the state it shows or reads.

import { activityLabel } from './catalog.js';
import { byId, el, ensureOption } from './dom.js';
import { inputToIso, isoOf, isoToInput, localZoneName } from './format.js';
import { DEFAULT_RANGE, RANGES, emptyFilters } from './url_state.js';

// Single-valued form fields and the API parameter each one fills.
const SELECT_LISTS = {
  'f-category': 'categories[]',
  'f-activity': 'include_event_types[]',
  'f-resource-type': 'include_resource_types[]',
};
const TEXT_SCALARS = {
  'f-workspace': 'workspace_id',
  'f-environment': 'environment',
  'f-ip': 'ip',
  'f-q': 'q',
};

// The form field an API parameter named in a 400 comes from.
const FIELD_OF_PARAMETER = {
  from: 'f-from',
  to: 'f-to',
  'users_ids[]': 'f-user',
  'actor_emails[]': 'f-user',
  'resource_ids[]': 'f-resource',
  outcome: 'f-outcome',
  ...invert(SELECT_LISTS),
  ...invert(TEXT_SCALARS),
};

function invert(map) {
  return Object.fromEntries(Object.entries(map).map(([field, name]) => [name, field]));
}

export function fillCatalogOptions(catalog) {
  const categories = byId('f-category');
  for (const category of catalog.categories) {
    categories.append(el('option', { value: category.id, text: category.title }));
  }
  const types = byId('f-resource-type');
  for (const type of catalog.resourceTypes) {
    types.append(el('option', { value: type.id, text: type.title }));
  }
  byId('f-activity').append(...activityGroups(catalog));
}

function activityGroups(catalog) {
  const groups = new Map(catalog.categories.map((c) => [c.id, el('optgroup', { label: c.title })]));
  for (const activity of catalog.activities) {
    if (!groups.has(activity.category)) {
      groups.set(activity.category, el('optgroup', { label: activity.category || 'Other' }));
    }
    groups
      .get(activity.category)
      .append(el('option', { value: activity.action, text: activityLabel(activity) }));
  }
  return [...groups.values()].filter((group) => group.children.length > 0);
}

// The preset the range select showed last: a custom range starts as that preset.
let lastPreset = DEFAULT_RANGE;

/** Shows a state in the form (a select shows the first of several values). */
export function showState(state) {
  const utc = state.tz === 'utc';
  byId('f-range').value = state.range;
  if (state.range in RANGES) lastPreset = state.range;
  byId('f-from').value = isoToInput(state.from, utc);
  byId('f-to').value = isoToInput(state.to, utc);
  showCustomRange(state.range === 'custom');
  byId('f-user').value = [...state.filters['users_ids[]'], ...state.filters['actor_emails[]']].join(
    ', ',
  );
  byId('f-resource').value = state.filters['resource_ids[]'].join(', ');
  for (const [id, name] of Object.entries(SELECT_LISTS))
    setSelect(byId(id), state.filters[name][0] || '');
  setSelect(byId('f-outcome'), state.filters.outcome);
  for (const [id, name] of Object.entries(TEXT_SCALARS)) byId(id).value = state.filters[name];
  byId('tz-utc').checked = utc;
  markInvalid(null);
}

function setSelect(select, value) {
  ensureOption(select, value); // a bookmarked value the catalog lacks is still shown
  select.value = value;
}

/** The state the form describes; account and time zone are kept from `current`. */
export function readState(current) {
  const utc = current.tz === 'utc';
  const range = byId('f-range').value || DEFAULT_RANGE;
  const custom = range === 'custom';
  const filters = emptyFilters();
  for (const value of splitList(byId('f-user').value)) {
    filters[value.includes('@') ? 'actor_emails[]' : 'users_ids[]'].push(value);
  }
  filters['resource_ids[]'] = splitList(byId('f-resource').value);
  for (const [id, name] of Object.entries(SELECT_LISTS)) {
    filters[name] = byId(id).value ? [byId(id).value] : [];
  }
  filters.outcome = byId('f-outcome').value;
  for (const [id, name] of Object.entries(TEXT_SCALARS)) filters[name] = byId(id).value.trim();
  return {
    ...current,
    range,
    from: custom ? inputToIso(byId('f-from').value, utc) : '',
    to: custom ? inputToIso(byId('f-to').value, utc) : '',
    filters,
  };
}

/** "a, b" -> ["a", "b"]: several users or resources may be given, comma-separated. */
function splitList(text) {
  return [
    ...new Set(
      text
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean),
    ),
  ];
}

function showCustomRange(visible) {
  byId('custom-from').hidden = !visible;
  byId('custom-to').hidden = !visible;
}

export function onRangeChange(event) {
  const range = event.target.value;
  showCustomRange(range === 'custom');
  showZoneHint();
  if (range in RANGES) lastPreset = range;
  else if (!byId('f-from').value && !byId('f-to').value) prefillCustomRange();
}

/** A custom range starts as the preset it replaces, to the minute: its start until now. */
function prefillCustomRange() {
  const utc = byId('tz-utc').checked;
  const minute = 60e3;
  const now = Math.ceil(Date.now() / minute) * minute;
  byId('f-from').value = isoToInput(isoOf(new Date(now - RANGES[lastPreset])), utc);
  byId('f-to').value = isoToInput(isoOf(new Date(now)), utc);
}

/** Says in which zone From and To are read, while they are shown. */
export function showZoneHint() {
  const hint = byId('zone-hint');
  hint.hidden = byId('f-range').value !== 'custom';
  hint.textContent = byId('tz-utc').checked
    ? 'From and To are in UTC.'
    : `From and To are in your time zone (${localZoneName()}).`;
}

/** Re-expresses the custom range's inputs in the other zone: the same instants. */
export function convertCustomInputs(fromUtc, toUtc) {
  for (const id of ['f-from', 'f-to']) {
    const input = byId(id);
    input.value = isoToInput(inputToIso(input.value, fromUtc), toUtc);
  }
}

/** Marks the field a 400 names (or none); returns its label text, or null. */
export function markInvalid(parameter) {
  for (const field of byId('filters').querySelectorAll('[aria-invalid]')) {
    field.removeAttribute('aria-invalid');
  }
  const id = parameter ? FIELD_OF_PARAMETER[parameter] : null;
  if (!id) return null;
  const field = byId(id);
  field.setAttribute('aria-invalid', 'true');
  return document.querySelector(`label[for="${id}"]`)?.textContent.trim() || null;
}
