// A table that loads page after page ("Load more"), used by the admin and DBA lists.
import { clear, h, showError } from '../dom';
import type { Page } from '../types';

export interface PagedTable<T> {
  el: HTMLElement;
  error: HTMLElement;
  /** Starts again from the first page. */
  reload(): Promise<void>;
  items(): T[];
}

export function pagedTable<T>(opts: {
  prefix: string;
  columns: string[];
  row: (item: T) => HTMLElement;
  fetch: (cursor: string | null) => Promise<Page<T>>;
  emptyText: string;
  caption: string;
}): PagedTable<T> {
  let cursor: string | null = null;
  let generation = 0;
  let loaded: T[] = [];
  const tbody = h('tbody', { id: `${opts.prefix}-rows` });
  const error = h('p', { id: `${opts.prefix}-error`, class: 'error', role: 'alert', hidden: true });
  const empty = h('p', { id: `${opts.prefix}-empty`, class: 'muted', hidden: true }, opts.emptyText);
  const more = h('button', { id: `${opts.prefix}-more`, type: 'button', hidden: true }, 'Load more');
  const table = h('table', { class: 'table', id: `${opts.prefix}-table` },
    h('caption', { class: 'sr-only' }, opts.caption),
    h('thead', null, h('tr', null, opts.columns.map((c) => h('th', { scope: 'col' }, c)))),
    tbody);

  async function load(reset: boolean) {
    if (reset) { generation++; cursor = null; }
    const gen = generation;
    more.disabled = true;
    try {
      const page = await opts.fetch(reset ? null : cursor);
      if (gen !== generation) return;
      if (reset) { clear(tbody); loaded = []; }
      loaded.push(...page.items);
      tbody.append(...page.items.map(opts.row));
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      empty.hidden = loaded.length > 0;
      showError(error, null);
    } catch (err) {
      if (gen === generation) showError(error, err);
    } finally {
      if (gen === generation) more.disabled = false;
    }
  }

  more.addEventListener('click', () => void load(false));
  return {
    el: h('div', { class: 'paged' }, error, h('div', { class: 'table-scroll' }, table), empty, h('div', { class: 'actions' }, more)),
    error,
    reload: () => load(true),
    items: () => loaded,
  };
}
