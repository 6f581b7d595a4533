// The page's frame: which view shows (signed out, forbidden, viewer) and the header.

import { byId, el, ensureOption } from './dom.js';

const VIEWS = ['boot', 'signed-out', 'forbidden', 'viewer'];
const APP_TITLE = 'Activity audit log';

export const SIGNED_OUT = {
  none: 'You are not signed in. Open the activity audit log from the platform to sign in.',
  ended: 'Your session has ended. Open the activity audit log from the platform to sign in again.',
  left: 'You have signed out. Open the activity audit log from the platform to sign in again.',
};

/** Shows one view and hides the others; the header's user part only when signed in. */
export function showView(name) {
  for (const id of VIEWS) byId(id).hidden = id !== name;
  byId('account-bar').hidden = !(name === 'viewer' || name === 'forbidden');
  byId('account-current').hidden = name !== 'viewer';
  if (name !== 'viewer') document.title = APP_TITLE;
}

export function showSignedOut(message) {
  byId('signed-out-message').textContent = message;
  showView('signed-out');
}

export function showForbidden(reason) {
  byId('forbidden-reason').textContent = reason || 'You may not read the audit log of any account.';
  showView('forbidden');
}

export function showBootError(text) {
  byId('boot').textContent = text;
  showView('boot');
}

export function showUser(user) {
  const name = user?.name || '';
  const email = user?.email || '';
  const who = name && email ? `${name} (${email})` : name || email || user?.id || '';
  byId('user-label').textContent = who ? `Signed in as ${who}` : '';
}

/** The account picker's options (shown when there is a choice). */
export function fillAccounts(accounts) {
  const picker = byId('account-picker');
  picker.replaceChildren(...accounts.map((id) => el('option', { value: id, text: id })));
  const choice = accounts.length > 1;
  picker.hidden = !choice;
  byId('account-picker-label').hidden = !choice;
  byId('account-static').hidden = choice;
}

export function showAccount(accountId) {
  const picker = byId('account-picker');
  ensureOption(picker, accountId); // a bookmarked account: the API says whether it may be read
  picker.value = accountId;
  byId('account-id').textContent = accountId;
  document.title = `${APP_TITLE} · ${accountId}`;
}
