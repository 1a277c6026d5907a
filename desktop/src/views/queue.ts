// Offline queue: transfers stored on disk while the server was unreachable.
import { api } from '../ipc';
import { busy, clear, fmtDateTime, h, keepFocus, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { Ctx, View } from '../shell';
import type { QueueItem } from '../types';
import type { AccountStore } from './store';
import { heldText, reviewId } from '../reviews';

export function queueView(ctx: Ctx, store: AccountStore): View {
  const seen = new Map<string, string>(); // id -> last status seen
  let lastJson = '';
  let first = true;

  const error = h('p', { id: 'queue-error', class: 'error', role: 'alert', hidden: true });
  const list = h('div', { id: 'queue-list', class: 'queue-list' });
  const clearBtn = h('button', { id: 'queue-clear', type: 'button' }, 'Clear finished');
  const el = h('section', { 'aria-labelledby': 'queue-title' },
    h('h1', { id: 'queue-title' }, 'Offline queue'),
    h('p', { class: 'muted' }, 'Transfers made while the server could not be reached are kept here and sent automatically, oldest first, as soon as it is back.'),
    error,
    h('div', { class: 'actions' }, clearBtn),
    list);

  function accountNumber(id: string): string {
    return store.byId(id)?.number ?? id.slice(0, 8);
  }

  function item(q: QueueItem): HTMLElement {
    const r = q.request;
    const cancel = q.status === 'pending'
      ? h('button', { type: 'button', class: 'danger-outline', 'data-test': 'queue-cancel', 'data-id': q.id }, 'Cancel')
      : null;
    cancel?.addEventListener('click', () => void busy(cancel, async () => {
      try { await api.queueCancel(q.id); await refresh(); } catch (err) { showError(error, err); }
    }));
    return h('article', { class: `card queue-item queue-${q.status}`, 'data-test': 'queue-item', 'data-id': q.id, 'data-status': q.status },
      h('div', { class: 'card-head' },
        h('strong', { class: 'amount' }, formatMoney(r.amount, r.currency)),
        h('span', { class: `status status-${q.status}`, 'data-test': 'queue-status' }, q.status)),
      h('p', null, `From ${accountNumber(r.from_account_id)} to ${r.to_account_number}`, r.memo ? ` — ${r.memo}` : ''),
      h('dl', { class: 'facts' },
        h('dt', null, 'Queued'), h('dd', null, fmtDateTime(q.created_at)),
        h('dt', null, 'Attempts'), h('dd', { 'data-test': 'queue-attempts' }, String(q.attempts)),
        q.status === 'pending' ? [h('dt', null, 'Next attempt'), h('dd', null, fmtDateTime(q.next_attempt_at))] : null,
        q.last_error ? [h('dt', null, 'Last error'), h('dd', { 'data-test': 'queue-last-error' }, q.last_error)] : null,
        q.transfer ? [h('dt', null, 'Balance after'), h('dd', null, formatMoney(q.transfer.balance_after, q.transfer.currency))] : null),
      q.review ? h('p', { class: 'notice', 'data-test': 'queue-held', 'data-review-id': reviewId(q.review) }, heldText(q.review)) : null,
      cancel);
  }

  function update(items: QueueItem[]) {
    ctx.setBadge('queue', items.filter((q) => q.status === 'pending').length);
    let applied = false;
    for (const q of items) {
      const before = seen.get(q.id);
      // A change we watched happen (or an item that finished before we ever saw it pending).
      if (!first && before !== q.status && (before !== undefined || q.status === 'applied' || q.status === 'held')) {
        const what = `${formatMoney(q.request.amount, q.request.currency)} to ${q.request.to_account_number}`;
        if (q.status === 'applied') { toast(`Queued transfer sent: ${what}`, 'success'); applied = true; }
        // Taken by the server but held for a check: done here (never sent again); the available balance dropped.
        if (q.status === 'held') { toast(`Queued transfer ${q.review ? heldText(q.review).replace(/^Held/, 'held') : 'held for a check by the bank: see Reviews'}`, 'info'); applied = true; }
        if (q.status === 'failed') toast(`Queued transfer failed: ${what}${q.last_error ? ` — ${q.last_error}` : ''}`, 'error');
      }
      seen.set(q.id, q.status);
    }
    first = false;
    if (applied) store.refresh().catch(() => undefined);
    const json = JSON.stringify(items);
    if (json === lastJson) return;
    lastJson = json;
    keepFocus(list, () => clear(list, items.length ? items.map(item) : h('p', { class: 'muted', id: 'queue-empty' }, 'Nothing is waiting to be sent.')));
  }

  async function refresh() {
    try {
      update(await api.queueList());
      showError(error, null);
    } catch (err) { showError(error, err, undefined, true); }
  }

  clearBtn.addEventListener('click', () => void busy(clearBtn, async () => {
    try { update(await api.queueClearFinished()); } catch (err) { showError(error, err); }
  }));

  ctx.poll(refresh, 1000);

  return { id: 'queue', label: 'Queue', el, show() { void refresh(); } };
}
