/**
 * Element builders that never parse HTML: text goes in through `textContent`, everything else through
 * attributes. Node ids, keys, values and message types come from the cluster and are shown only this way.
 */
export const SVG_NS = 'http://www.w3.org/2000/svg';

type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | undefined | false;

function apply(el: Element, attrs: Attrs, children: Child[]): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? el.ownerDocument.createTextNode(child) : child);
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

/** Sets an attribute only when it changes (keeps the DOM quiet for observers and screen readers). */
export function attr(el: Element, name: string, value: string | undefined): void {
  if (value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

export function text(el: Element, value: string): void {
  if (el.textContent !== value) el.textContent = value;
}

/**
 * Puts `children` into `parent` in this order, moving elements only when the order is wrong (moving a
 * focused element would drop the keyboard focus on every frame).
 */
export function keepOrder(parent: Element, children: readonly Element[]): void {
  const current = parent.children;
  const inOrder = current.length === children.length && children.every((child, i) => current[i] === child);
  if (!inOrder) parent.replaceChildren(...children);
}
