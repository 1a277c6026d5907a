// Notifications for every role: the header bell with its unread count, one poller (every 5 s
// while signed in) that toasts what is new, and the Notifications view the bell opens.
import { api } from '../ipc';
import { busy, clear, fmtDateTime, h, keepFocus, s, showError, toast } from '../dom';
import { arrivals, notificationCategory, notificationText } from '../notify-text';
import type { Ctx, View } from '../shell';
import type { AppNotification } from '../types';

const PAGE = 20;
const POLL_MS = 5000;
/** At most this many toasts per poll; the rest are summed up in one more. */
const MAX_TOASTS = 3;

export interface NotificationCenter {
  /** The header button (`#nav-notifications`) with the unread badge; it opens the view. */
  bell: HTMLButtonElement;
  view: View;
}

interface Shown { n: AppNotification; el: HTMLButtonElement; marker: HTMLElement }

function bellIcon(): SVGSVGElement {
  return s('svg', { class: 'bell-icon', viewBox: '0 0 24 24', width: 18, height: 18, 'aria-hidden': 'true', focusable: 'false' },
    s('path', {
      fill: 'currentColor',
      d: 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6v-5a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z',
    }));
}

export function notificationCenter(ctx: Ctx): NotificationCenter {
  const seen = new Set<string>();
  let first = true;
  // Bumped around every mark-read, so that a poll answered meanwhile does not put back a stale count.
  let markVersion = 0;
  const shown = new Map<string, Shown>();
  let cursor: string | null = null;
  let generation = 0;
  let loaded = false;

  // ---- Header bell
  const count = h('span', { id: 'notifications-count', class: 'badge', 'data-count': '0', hidden: true }, '0');
  const bell = h('button', { id: 'nav-notifications', type: 'button', class: 'bell', title: 'Notifications', 'aria-label': 'Notifications' },
    bellIcon(), count);
  bell.addEventListener('click', () => ctx.navigate('notifications'));

  function setUnread(n: number) {
    const c = Math.max(0, Math.trunc(n) || 0);
    count.textContent = String(c);
    count.dataset.count = String(c);
    count.hidden = c === 0;
    bell.setAttribute('aria-label', c ? `Notifications, ${c} unread` : 'Notifications');
  }

  // ---- View
  const onlyUnread = h('input', { id: 'notifications-unread-only', type: 'checkbox' });
  const markAll = h('button', { id: 'notifications-mark-all', type: 'button' }, 'Mark all read');
  const error = h('p', { id: 'notifications-error', class: 'error', role: 'alert', hidden: true });
  const list = h('ul', { id: 'notifications-list', class: 'notification-list', 'aria-label': 'Notifications, newest first' });
  const empty = h('p', { id: 'notifications-empty', class: 'muted', hidden: true }, 'No notifications yet.');
  const more = h('button', { id: 'notifications-more', type: 'button', hidden: true }, 'Load more');
  const el = h('section', { 'aria-labelledby': 'notifications-title' },
    h('h1', { id: 'notifications-title' }, 'Notifications'),
    h('p', { class: 'muted' }, 'Newest first. Select an unread notification (click, or Enter) to mark it read.'),
    h('div', { class: 'toolbar' },
      h('label', { class: 'check', for: 'notifications-unread-only' }, onlyUnread, 'Unread only'),
      markAll),
    error, list, empty,
    h('div', { class: 'actions' }, more));

  function setRead(e: Shown, readAt: string) {
    e.n = { ...e.n, read_at: readAt };
    e.el.dataset.read = 'true';
    e.el.removeAttribute('title');
    e.marker.hidden = true;
  }

  function render(n: AppNotification): Shown {
    const unread = !n.read_at;
    const category = notificationCategory(n.kind);
    const marker = h('span', { class: 'unread-marker', 'data-test': 'unread-marker', hidden: !unread }, 'New');
    const btn = h('button', {
      type: 'button', class: 'notification', 'data-test': 'notification', 'data-id': n.id, 'data-kind': n.kind,
      'data-read': String(!unread), 'data-critical': String(!!n.critical), title: unread ? 'Mark as read' : null,
    },
      h('span', { class: 'notification-body' },
        h('span', { class: 'notification-text', 'data-test': 'notification-text' }, notificationText(n)),
        h('span', { class: 'notification-meta' },
          h('span', { class: `tag tag-${category.toLowerCase()}` }, category),
          h('time', { datetime: n.created_at, 'data-test': 'notification-time' }, fmtDateTime(n.created_at)))),
      marker);
    const entry: Shown = { n, el: btn, marker };
    btn.addEventListener('click', () => void markOne(entry));
    return entry;
  }

  function add(items: AppNotification[], where: 'start' | 'end') {
    const els: HTMLElement[] = [];
    for (const n of items) {
      if (shown.has(n.id)) continue;
      const e = render(n);
      shown.set(n.id, e);
      els.push(h('li', null, e.el));
    }
    if (where === 'start') list.prepend(...els); else list.append(...els);
    empty.hidden = shown.size > 0;
    return els;
  }

  async function markOne(e: Shown) {
    if (e.n.read_at || e.el.getAttribute('aria-busy') === 'true') return;
    e.el.setAttribute('aria-busy', 'true');
    markVersion++;
    try {
      const answer = await api.markNotificationsRead([e.n.id]);
      setRead(e, new Date().toISOString());
      setUnread(answer.unread_count);
      showError(error, null);
    } catch (err) {
      showError(error, err);
    } finally {
      markVersion++;
      e.el.removeAttribute('aria-busy');
    }
  }

  markAll.addEventListener('click', () => void busy(markAll, async () => {
    markVersion++;
    try {
      const answer = await api.markAllNotificationsRead();
      const now = new Date().toISOString();
      for (const e of shown.values()) if (!e.n.read_at) setRead(e, now);
      setUnread(answer.unread_count);
      showError(error, null);
    } catch (err) {
      showError(error, err);
    } finally {
      markVersion++;
    }
  }));

  async function load(reset: boolean) {
    if (reset) { generation++; cursor = null; }
    const gen = generation;
    const version = markVersion;
    more.disabled = true;
    try {
      const page = await api.notifications({ cursor: reset ? null : cursor, unread_only: onlyUnread.checked, limit: PAGE });
      if (gen !== generation) return;
      const moreHadFocus = document.activeElement === more;
      let added: HTMLElement[] = [];
      if (reset) {
        keepFocus(list, () => { shown.clear(); clear(list); added = add(page.items, 'end'); });
      } else {
        added = add(page.items, 'end');
      }
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      empty.textContent = onlyUnread.checked ? 'No unread notifications.' : 'No notifications yet.';
      empty.hidden = shown.size > 0;
      if (version === markVersion) setUnread(page.unread_count);
      loaded = true;
      showError(error, null);
      // "Load more" vanished under the keyboard: carry on at the first new item.
      if (moreHadFocus && more.hidden) added[0]?.querySelector<HTMLElement>('button')?.focus();
    } catch (err) {
      if (gen === generation) showError(error, err);
    } finally {
      if (gen === generation) more.disabled = false;
    }
  }

  more.addEventListener('click', () => void load(false));
  onlyUnread.addEventListener('change', () => void load(true));

  /** While the view is open, a poll adds what is newer than the list and marks what was read elsewhere. */
  function merge(items: AppNotification[]) {
    let newest = -Infinity;
    for (const e of shown.values()) newest = Math.max(newest, Date.parse(e.n.created_at) || -Infinity);
    const fresh: AppNotification[] = [];
    for (const n of items) {
      const e = shown.get(n.id);
      if (e) {
        if (n.read_at && !e.n.read_at) setRead(e, n.read_at);
        continue;
      }
      if (onlyUnread.checked && n.read_at) continue;
      if (shown.size === 0 || (Date.parse(n.created_at) || 0) > newest) fresh.push(n);
    }
    if (fresh.length) add(fresh, 'start');
  }

  function announce(fresh: AppNotification[]) {
    const toasted = fresh.slice(-MAX_TOASTS);
    const rest = fresh.length - toasted.length;
    if (rest > 0) toast(`${rest} more new notification${rest === 1 ? '' : 's'} — open the bell to see them`, 'info');
    for (const n of toasted) toast(notificationText(n), 'info');
  }

  async function poll() {
    const version = markVersion;
    let page;
    try {
      page = await api.notifications({ limit: PAGE });
    } catch {
      return; // quietly: the next poll tries again (a lost session is handled by ipc.call)
    }
    if (version === markVersion) setUnread(page.unread_count);
    announce(arrivals(seen, page.items, first));
    first = false;
    if (loaded && !el.hidden) merge(page.items);
  }

  ctx.poll(poll, POLL_MS);

  return {
    bell,
    view: { id: 'notifications', label: 'Notifications', el, inNav: false, show() { void load(true); } },
  };
}
