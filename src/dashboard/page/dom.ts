/// <reference lib="dom" />
// A few DOM helpers for the page (runs in the browser). Text is always set
// with textContent, never parsed as HTML, so nothing from the cluster can
// inject markup.

export type Child = Node | string | number | null | undefined | false;

/** An element with attributes (on* values are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined | ((e: Event) => void)> = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

/** "3m", "2h", "5d" like kubectl's AGE column. */
export function age(timestamp: string | undefined, now = Date.now()): string {
  if (timestamp === undefined) return '';
  const s = Math.max(0, Math.floor((now - new Date(timestamp).getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function badge(text: string | undefined): HTMLElement {
  return h('span', { class: `badge ${text ?? ''}` }, text ?? '—');
}

export function table(headers: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (rows.length === 0) return h('div', { class: 'empty' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', {}, x)))), h('tbody', {}, ...rows));
}

/** A refused or failed request, with the API server's own message. */
export function problem(what: string, message: string, status?: number): HTMLElement {
  return h(
    'div',
    { class: 'problem', role: 'alert' },
    h('b', {}, `${what}${status === undefined ? '' : ` (HTTP ${status})`}: `),
    message,
  );
}
