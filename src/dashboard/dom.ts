// Building the page: elements from tags, attributes and children, where every string becomes a
// text node. No HTML is ever parsed from a string (the CSP's Trusted Types forbid it anyway), so
// users' output (results, stdout, names) can only ever show as text.

export type Child = Node | string | number | null | undefined | false;
type Listener = (event: Event) => void;
export type Attrs = Record<string, string | number | boolean | null | undefined | Listener>;

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el: Element, attrs: Attrs, children: Child[]): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs, children);
  return el;
}

export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, children);
  return el;
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  apply(el, {}, children);
}

/** A string cut to `max` characters, saying how much was left out. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A task or group id without its endpoint part (`….<suffix>`); other ids cut to 8 characters. */
export function shortId(id: string): string {
  const dot = id.indexOf('.');
  return dot > 0 ? `…${id.slice(dot + 1)}` : id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

/** Replaces children with `nodes` (reused ones move), keeping the keyboard focus where it was. */
export function reconcile(el: Element, nodes: readonly Node[]): void {
  const current = el.childNodes;
  if (current.length === nodes.length && nodes.every((n, i) => current[i] === n)) return;
  const focused = document.activeElement;
  el.replaceChildren(...nodes);
  if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus();
}

export function formatTime(unixSeconds: number | null | undefined): string {
  if (unixSeconds === null || unixSeconds === undefined) return '—';
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { hour12: false });
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** `#/route?query` for links inside the page; values are encoded. */
export function route(path: string, query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')).toString();
  return `#/${path}${q ? `?${q}` : ''}`;
}

export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `badge status-${status.replace(/[^a-z-]/g, '')}` }, status);
}
