// Building the page from data without ever parsing data as HTML: every value given here
// becomes a text node or an attribute value, so hostile event fields stay literal text.

/** A new element. props: class, dataset, text, or attribute names (null/false: left out). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends nodes and strings (as text); skips null, undefined and false. */
export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

/** Adds an option unless the select already has one with that value. */
export function ensureOption(select, value) {
  if (!value || [...select.options].some((option) => option.value === value)) return;
  select.append(el('option', { value, text: value }));
}
