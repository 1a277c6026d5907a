// Small DOM helpers: an element builder, toasts, modals and a few form utilities.
import { errorMessage, isSessionLost, isUnreachable } from './errors';

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'required', 'readOnly', 'multiple', 'indeterminate']);

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function applyAttrs(el: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) {
      if (PROPS.has(k)) (el as unknown as Record<string, unknown>)[k] = false;
      continue;
    }
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (PROPS.has(k)) {
      (el as unknown as Record<string, unknown>)[k] = v;
    } else {
      el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    }
  }
}

/** Builds an HTML element: h('button', { id: 'x', onclick: fn }, 'Label'). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Builds an SVG element. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function $(selector: string, root: ParentNode = document): HTMLElement | null {
  return root.querySelector<HTMLElement>(selector);
}

/** A labelled field: <div class="field"><label for=id>…</label>control hint</div>. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { class: 'hint' }, hint) : null);
}

/** Fills a select with options, keeping the current choice when it still exists. */
export function fillSelect(select: HTMLSelectElement, options: { value: string; label: string }[], placeholder?: string): void {
  const previous = select.value;
  select.replaceChildren();
  if (placeholder !== undefined) select.appendChild(h('option', { value: '' }, placeholder));
  for (const o of options) select.appendChild(h('option', { value: o.value }, o.label));
  if (options.some((o) => o.value === previous)) select.value = previous;
  else if (placeholder === undefined && options.length > 0) select.value = options[0].value;
}

/** Shows a message in an error element (hidden when empty). Lost sessions show nothing: login takes over. */
export function showError(el: HTMLElement, err: unknown, overrides?: Record<string, string>, quiet = false): void {
  if (err === null || err === undefined || isSessionLost(err)) {
    el.textContent = '';
    el.hidden = true;
    return;
  }
  const msg = typeof err === 'string' ? err : errorMessage(err, overrides);
  el.textContent = msg;
  el.hidden = false;
  if (!quiet && typeof err !== 'string' && isUnreachable(err)) toast(msg, 'error');
}

export function setResult(el: HTMLElement, text: string | null, state?: string, attrs: Record<string, string> = {}): void {
  for (const a of Array.from(el.attributes)) if (a.name.startsWith('data-') && a.name !== 'data-test') el.removeAttribute(a.name);
  el.textContent = text ?? '';
  el.hidden = !text;
  if (state) el.dataset.state = state;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
}

/** Runs an async action with the button disabled (no double submit). */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T | undefined> {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Re-renders a region while keeping keyboard focus on the "same" element (by selector key). */
export function keepFocus(root: HTMLElement, render: () => void): void {
  const active = document.activeElement as HTMLElement | null;
  let key: string | null = null;
  if (active && root.contains(active)) {
    const attrs = ['id', 'data-test', 'data-id', 'data-node', 'data-action'];
    key = attrs.filter((a) => active.hasAttribute(a)).map((a) => `[${a}="${CSS.escape(active.getAttribute(a)!)}"]`).join('');
  }
  render();
  if (key) root.querySelector<HTMLElement>(key)?.focus();
}

// ---- Toasts -------------------------------------------------------------------------------

export function toast(message: string, kind: 'info' | 'success' | 'error' = 'info'): void {
  const area = document.getElementById('toast');
  if (!area) return;
  const existing = Array.from(area.children).find((c) => (c as HTMLElement).dataset.message === message) as HTMLElement | undefined;
  existing?.remove();
  const close = h('button', { class: 'toast-close', 'aria-label': 'Dismiss', type: 'button' }, '×');
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-kind': kind, 'data-message': message }, h('span', null, message), close);
  const remove = () => item.remove();
  close.addEventListener('click', remove);
  area.appendChild(item);
  setTimeout(remove, kind === 'error' ? 12000 : 7000);
}

// ---- Modals -------------------------------------------------------------------------------

interface ModalHandle { close: () => void; root: HTMLElement }

/** Opens a modal dialog with a focus trap; Escape (or `onCancel`) closes it. */
export function openModal(id: string, title: string, body: Child[], actions: HTMLButtonElement[], onCancel: () => void): ModalHandle {
  const previous = document.activeElement as HTMLElement | null;
  const titleId = `${id}-title`;
  const box = h('div', { id, class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title), ...body, h('div', { class: 'modal-actions' }, actions));
  const backdrop = h('div', { class: 'modal-backdrop' }, box);
  const focusables = () => Array.from(box.querySelectorAll<HTMLElement>('button, input, select, textarea, [tabindex]:not([tabindex="-1"])')).filter((e) => !(e as HTMLButtonElement).disabled);
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); onCancel(); return; }
    if (ev.key === 'Tab') {
      const f = focusables();
      if (f.length === 0) return;
      const first = f[0], last = f[f.length - 1];
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
    }
  };
  backdrop.addEventListener('keydown', onKey);
  backdrop.addEventListener('mousedown', (ev) => { if (ev.target === backdrop) onCancel(); });
  document.body.appendChild(backdrop);
  (focusables()[0] ?? box).focus();
  return {
    root: box,
    close: () => { backdrop.remove(); previous?.focus(); },
  };
}

/** Asks for confirmation in #confirm-dialog (#confirm-ok / #confirm-cancel, Escape cancels). */
export function confirmDialog(title: string, message: string, okLabel = 'Confirm', danger = false, cancelLabel = 'Cancel'): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h('button', { id: 'confirm-ok', type: 'button', class: danger ? 'danger' : 'primary' }, okLabel);
    const cancel = h('button', { id: 'confirm-cancel', type: 'button' }, cancelLabel);
    let done = false;
    const finish = (v: boolean) => { if (done) return; done = true; modal.close(); resolve(v); };
    const modal = openModal('confirm-dialog', title, [h('p', { id: 'confirm-message' }, message)], [cancel, ok], () => finish(false));
    ok.addEventListener('click', () => finish(true));
    cancel.addEventListener('click', () => finish(false));
    ok.focus();
  });
}

// ---- Dates --------------------------------------------------------------------------------

const pad = (n: number) => String(n).padStart(2, '0');

/** "2025-11-25 17:23:05" in local time. */
export function fmtDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A date input's value ("2025-11-25") as the start (or end) of that local day in RFC 3339. */
export function dayBound(value: string, end: boolean): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (end ? 1 : 0));
  if (end) d.setMilliseconds(-1);
  return d.toISOString();
}

export const KIND_LABELS: Record<string, string> = {
  deposit: 'Deposit', withdrawal: 'Withdrawal', transfer_in: 'Transfer in', transfer_out: 'Transfer out', transfer: 'Transfer',
  interbank_out: 'Paid to another bank', interbank_in: 'Received from another bank',
  fx_out: 'Exchanged (out)', fx_in: 'Exchanged (in)',
  phone: 'Phone', email: 'E-mail', national_id: 'National id', random: 'Random key',
  active: 'Active', pending_verification: 'Waiting for the code', pending: 'Pending', committed: 'Committed', aborted: 'Refused',
  savings: 'Savings', current: 'Current', business: 'Business',
};
export const label = (k: string) => KIND_LABELS[k] ?? k;

/** A key as said everywhere: "Phone key +919876543210", "Random key 8f3a…" (not "Random key key"). */
export function keyText(k: { type: string; value: string }): string {
  return `${label(k.type).replace(/ key$/, '')} key ${k.value}`;
}
