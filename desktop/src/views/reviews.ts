// Reviews (customer): the transfers, payments by key to other banks and standing orders' runs the
// bank held for a check before sending them, why, and what became of each. A held one can be
// cancelled (after a confirm step): nothing is sent and the held amount is free again at once.
import { api, toIpcError } from '../ipc';
import { isSessionLost } from '../errors';
import { busy, clear, confirmDialog, fmtDateTime, h, keepFocus, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { Ctx, View } from '../shell';
import type { Review } from '../types';
import type { AccountStore } from './store';
import {
  STATUS_WORDS, cancelErrorText, cancelQuestion, cancelledText, isPending, reviewKindNoun, reviewKindWords, outcomeText, reasonWords, reviewTarget,
} from '../reviews';

/** How often the list is read again while the view is shown (a decision shows by itself). */
export const REFRESH_MS = 5000;

export function reviewsView(ctx: Ctx, store: AccountStore): View {
  let items: Review[] = [];
  let listKey = '';

  /** Why the list could not be read (cleared by the next read). */
  const listError = h('p', { id: 'reviews-list-error', class: 'error', role: 'alert', hidden: true });
  /** Why a cancel was refused (kept until the next cancel). */
  const error = h('p', { id: 'reviews-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'reviews-result', class: 'result', role: 'status', hidden: true });
  const title = h('h2', { id: 'reviews-list-title', tabindex: -1 }, 'Held and decided payments');
  const tbody = h('tbody', { id: 'reviews-rows' });
  const table = h('table', { id: 'reviews-table', class: 'table', hidden: true },
    h('caption', { class: 'sr-only' }, 'Your payments held for a check by the bank, newest first'),
    h('thead', null, h('tr', null, ['Made', 'Amount', 'From', 'To', 'Why it was held', 'What happened', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const empty = h('p', { id: 'reviews-empty', class: 'muted', hidden: true }, 'None of your payments was held for a check.');
  const refresh = h('button', { id: 'reviews-refresh', type: 'button' }, 'Refresh');
  const el = h('section', { 'aria-labelledby': 'reviews-title' },
    h('h1', { id: 'reviews-title' }, 'Reviews'),
    h('p', { class: 'muted' },
      'The bank checks some unusual transfers before sending them: a large one to a payee saved less than a day ago, or a large one '
      + 'after many transfers in a short time. Until the check, nothing is sent and the amount is held (your available balance is lower). '
      + 'Payments by key to other banks and the payments of your standing orders may be held the same way. '
      + 'You can cancel a held one here; undecided, it is not sent after 24 hours.'),
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'reviews-list-title' },
      title, listError, error, result, h('div', { class: 'table-scroll' }, table), empty, h('div', { class: 'actions' }, refresh)));

  function fromNumber(r: Review): string {
    return r.from_account_number ?? store.byId(r.from_account_id)?.number ?? '—';
  }

  function row(r: Review, now: number): HTMLElement {
    const to = reviewTarget(r);
    const money = formatMoney(r.amount, r.currency);
    let action: HTMLElement | null = null;
    if (isPending(r)) {
      const cancel = h('button', {
        type: 'button', class: 'danger-outline small', 'data-test': 'review-cancel', 'data-id': r.id,
        'aria-label': `Cancel the held ${reviewKindNoun(r)} of ${money} to ${to}`,
      }, 'Cancel');
      cancel.addEventListener('click', () => void cancelReview(r, cancel));
      action = cancel;
    }
    const kind = r.kind ?? 'transfer';
    return h('tr', {
      'data-test': 'review', 'data-review-id': r.id, 'data-status': r.status, 'data-amount': r.amount, 'data-kind': kind,
      'data-order-id': r.standing_order_id ?? undefined,
      class: isPending(r) ? null : 'muted',
    },
      h('td', { class: 'nowrap' }, fmtDateTime(r.created_at)),
      h('td', { class: 'num' }, money),
      h('td', { class: 'mono' }, fromNumber(r)),
      h('td', { 'data-test': 'review-to' }, h('span', { class: r.to_account_number ? 'mono' : null }, to),
        // A plain transfer needs no label: it is what the view is mostly about.
        kind === 'transfer' ? null : h('span', { class: 'tag', 'data-test': 'review-kind', style: 'display:table;margin-top:2px' }, reviewKindWords(r)),
        r.memo ? h('span', { class: 'hint', style: 'display:block' }, `Memo: ${r.memo}`) : null),
      h('td', { 'data-test': 'review-reason', title: r.reason }, reasonWords(r.reason)),
      h('td', { 'data-test': 'review-outcome' },
        h('span', { class: `status status-${r.status}`, 'data-test': 'review-status' }, STATUS_WORDS[r.status] ?? r.status),
        h('span', { class: 'hint', style: 'display:block' }, outcomeText(r, fmtDateTime, now))),
      h('td', null, h('div', { class: 'row-actions' }, action)));
  }

  function render(force = false) {
    const now = Date.now();
    // The expiry is said in minutes: once a minute is enough to keep it true.
    const key = JSON.stringify(items) + String(Math.floor(now / 60_000));
    if (!force && key === listKey) return;
    listKey = key;
    keepFocus(tbody, () => clear(tbody, items.map((r) => row(r, now))));
    table.hidden = items.length === 0;
    empty.hidden = items.length > 0;
    el.dataset.held = String(items.filter(isPending).length);
  }

  async function load(quiet = false) {
    try {
      items = (await api.reviewsList()).items;
      render();
      showError(listError, null);
    } catch (err) { showError(listError, err, undefined, quiet); }
  }

  async function cancelReview(r: Review, button: HTMLButtonElement) {
    const noun = reviewKindNoun(r);
    const ok = await confirmDialog(`Cancel this held ${noun}?`, cancelQuestion(r), `Cancel the ${noun}`, true, 'Keep it');
    if (!ok) return;
    setResult(result, null);
    showError(error, null);
    delete error.dataset.code;
    await busy(button, async () => {
      try {
        const after = await api.reviewCancel(r.id);
        items = items.map((x) => (x.id === after.id ? after : x));
        render(true);
        setResult(result, cancelledText(after), after.status, { 'data-review-id': after.id });
        toast(`Held ${reviewKindNoun(after)} cancelled`, 'success');
        store.refresh().catch(() => undefined);
      } catch (err) {
        if (isSessionLost(err)) return;
        showError(error, cancelErrorText(err));
        error.dataset.code = toIpcError(err).code;
      }
      await load(true);
    });
    title.focus();
  }

  refresh.addEventListener('click', () => void busy(refresh, () => load()));

  ctx.poll(async () => {
    if (el.hidden || !el.isConnected) return;
    await load(true);
  }, REFRESH_MS);

  return {
    id: 'reviews',
    label: 'Reviews',
    el,
    show() {
      store.refresh().catch(() => undefined);
      void load();
    },
  };
}
