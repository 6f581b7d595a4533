// Numbers, counts and times as the page shows them.

const numbers = new Intl.NumberFormat('en-US');

const timeOptions = {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
};
const localTimes = new Intl.DateTimeFormat(undefined, timeOptions);
const utcTimes = new Intl.DateTimeFormat(undefined, { ...timeOptions, timeZone: 'UTC' });

export function formatNumber(n) {
  return numbers.format(n);
}

/** "1 event", "1,234 events". */
export function eventCount(n) {
  return `${formatNumber(n)} ${n === 1 ? 'event' : 'events'}`;
}

/** An ISO instant in the browser's zone, or in UTC; the text itself when unparseable. */
export function formatTime(iso, utc) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return iso || '';
  return (utc ? utcTimes : localTimes).format(date);
}

/** The browser's IANA zone, e.g. "Europe/Berlin". */
export function localZoneName() {
  return localTimes.resolvedOptions().timeZone || 'local time';
}

/** A Date as ISO 8601 UTC, without ".000" when it falls on a whole second. */
export function isoOf(date) {
  return date.toISOString().replace('.000Z', 'Z');
}

/** The value of a datetime-local input, read in UTC or the browser's zone, as ISO; '' if none. */
export function inputToIso(value, utc) {
  if (!value) return '';
  // Without an offset, Date reads "YYYY-MM-DDTHH:MM" as local time; "Z" makes it UTC.
  const date = new Date(utc ? `${value}Z` : value);
  return Number.isNaN(date.getTime()) ? '' : isoOf(date);
}

/** An ISO instant as a datetime-local value in UTC or the browser's zone; '' if unparseable. */
export function isoToInput(iso, utc) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return '';
  const part = (local, inUtc) => String(utc ? date[inUtc]() : date[local]()).padStart(2, '0');
  const year = String(utc ? date.getUTCFullYear() : date.getFullYear()).padStart(4, '0');
  const month = String((utc ? date.getUTCMonth() : date.getMonth()) + 1).padStart(2, '0');
  const text =
    `${year}-${month}-${part('getDate', 'getUTCDate')}` +
    `T${part('getHours', 'getUTCHours')}:${part('getMinutes', 'getUTCMinutes')}`;
  const seconds = part('getSeconds', 'getUTCSeconds');
  return seconds === '00' ? text : `${text}:${seconds}`;
}

/** A detail or change value as text: strings as they are, anything else as JSON. */
export function valueText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
