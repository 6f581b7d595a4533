// Export: a form posted to the API, so that the browser streams the file to disk itself
// (a fetch would hold the whole export in memory first).

import { getCsrfToken } from './api.js';
import { el } from './dom.js';

/** Posts the export form with these parameters (API names); the file downloads. */
export function submitExport(format, pairs) {
  const form = el('form', { method: 'post', action: '/api/activity_logs/export', hidden: true });
  // `back`: where the page the viewer answers with, if it refuses the export, links to.
  const back = location.pathname + location.search;
  const fields = [['csrf_token', getCsrfToken()], ['format', format], ['back', back], ...pairs];
  for (const [name, value] of fields) {
    form.append(el('input', { type: 'hidden', name, value }));
  }
  document.body.append(form);
  form.submit();
  form.remove();
}
