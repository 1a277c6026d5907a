// Branch admin: the review queue. Transfers, payments by key to other banks and standing orders'
// runs the bank held for a check wait here (amount, the account paying, the account or key paid,
// why, how long they have waited, when they expire); an admin approves (the movement happens now,
// once) or rejects (the held amount is released) after a confirm step. Maker-checker: an admin
// who created the customer, opened the account, changed its limit in the last 24 h or added the
// payee may not approve; the server says so and the refusal is shown in plain words. A status
// filter shows how the others ended.
import { api, toIpcError } from '../ipc';
import { isSessionLost } from '../errors';
import { busy, clear, confirmDialog, field, fillSelect, fmtDateTime, h, keepFocus, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { Ctx, View } from '../shell';
import type { Account, Review, ReviewFilter } from '../types';
import {
  ADMIN_STATUS_WORDS, FILTERS, ageText, decidedText, decideErrorText, decisionQuestion, expiryText, isPending, reviewKindNoun, reviewKindWords,
  reasonWords, reviewTarget,
} from '../reviews';

/** How often the queue is read again while shown; hidden, only the badge's count, every `BADGE_EVERY` of these. */
export const REFRESH_MS = 5000;
export const BADGE_EVERY = 6;
/**
 * "100000000009 (Alice Fernandes)": the review names the account paying by number, and its owners
 * are added once known here; a server before `from_account_number` leaves the id's start.
 */
export function fromAccountLabel(r: Pick<Review, 'from_account_id' | 'from_account_number'>, a: Pick<Account, 'owners'> | undefined): string {
  const number = r.from_account_number ?? `account ${r.from_account_id.slice(0, 8)}…`;
  const owners = (a?.owners ?? []).map((o) => o.full_name).join(' & ');
  return owners ? `${number} (${owners})` : number;
}

export function adminReviewsView(ctx: Ctx): View {
  let items: Review[] = [];
  let shownFilter: ReviewFilter = 'pending';
  let listKey = '';
  let ticks = 0;
  let token = 0;
  /** The accounts paying, by number, once looked up (for their owners' names). */
  const accounts = new Map<string, Account>();
  const notFound = new Set<string>();
  let learning = false;

  const status = h('select', { id: 'admin-review-status' });
  fillSelect(status, FILTERS);
  status.value = 'pending';
  const refresh = h('button', { id: 'admin-reviews-refresh', type: 'button' }, 'Refresh');
  /** Why the list could not be read (cleared by the next read). */
  const listError = h('p', { id: 'admin-reviews-list-error', class: 'error', role: 'alert', hidden: true });
  /** Why a decision was refused (kept until the next decision or filter). */
  const error = h('p', { id: 'admin-review-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'admin-review-result', class: 'result', role: 'status', hidden: true });
  const title = h('h2', { id: 'admin-reviews-list-title', tabindex: -1 }, 'Waiting for a decision');
  const tbody = h('tbody', { id: 'admin-reviews-rows' });
  const table = h('table', { id: 'admin-reviews-table', class: 'table', hidden: true },
    h('caption', { class: 'sr-only' }, 'Movements held for review, newest first'),
    h('thead', null, h('tr', null, ['Held', 'Amount', 'From account', 'To', 'Why it was held', 'Expires', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const empty = h('p', { id: 'admin-reviews-empty', class: 'muted', hidden: true });
  const el = h('section', { 'aria-labelledby': 'admin-reviews-title' },
    h('h1', { id: 'admin-reviews-title' }, 'Review queue'),
    h('p', { class: 'muted' },
      'Unusual transfers, payments by key to other banks and standing orders\' payments of your branch\'s customers wait here before anything '
      + 'moves: their amount is held. Approve sends it, once; reject releases the held amount. Either way the customer is told. Undecided, it expires after 24 hours. '
      + 'You cannot approve a transfer of a customer you created, from an account you opened or whose limit you changed in the last 24 hours, '
      + 'or to a payee you added: another branch admin decides it.'),
    h('div', { class: 'panel' },
      h('div', { class: 'filters' }, field('Show', status), h('div', { class: 'actions' }, refresh))),
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'admin-reviews-list-title' },
      title, listError, error, result, h('div', { class: 'table-scroll' }, table), empty));

  function fromLabel(r: Review): string {
    return fromAccountLabel(r, r.from_account_number ? accounts.get(r.from_account_number) : undefined);
  }

  /**
   * Looks up the owners of the accounts paying, one search by number each, once: the review
   * names the account, the owners only help the admin. Meanwhile (or when a search fails) the
   * number alone is shown.
   */
  async function learnOwners(list: Review[]) {
    if (learning) return;
    learning = true;
    let learnt = false;
    try {
      const numbers = new Set(list.map((r) => r.from_account_number).filter((n): n is string => !!n && !accounts.has(n) && !notFound.has(n)));
      for (const number of numbers) {
        try {
          const found = (await api.adminAccounts({ query: number, limit: 5 })).items.find((a) => a.number === number);
          if (found) { accounts.set(number, found); learnt = true; } else notFound.add(number);
        } catch { /* named by number meanwhile; the next refresh tries again */ }
      }
    } finally {
      learning = false;
    }
    if (learnt) render();
  }

  function row(r: Review, now: number): HTMLElement {
    const pending = isPending(r);
    const money = formatMoney(r.amount, r.currency);
    const actions: HTMLElement[] = [];
    if (pending) {
      const approve = h('button', {
        type: 'button', class: 'primary small', 'data-test': 'review-approve', 'data-id': r.id,
        'aria-label': `Approve ${money} to ${reviewTarget(r, true)}`,
      }, 'Approve');
      approve.addEventListener('click', () => void decide(r, 'approve', approve));
      const reject = h('button', {
        type: 'button', class: 'danger-outline small', 'data-test': 'review-reject', 'data-id': r.id,
        'aria-label': `Reject ${money} to ${reviewTarget(r, true)}`,
      }, 'Reject');
      reject.addEventListener('click', () => void decide(r, 'reject', reject));
      actions.push(approve, reject);
    }
    const kind = r.kind ?? 'transfer';
    return h('tr', {
      'data-test': 'admin-review', 'data-review-id': r.id, 'data-status': r.status, 'data-amount': r.amount, 'data-kind': kind,
      'data-order-id': r.standing_order_id ?? undefined,
      class: pending ? null : 'muted',
    },
      h('td', { class: 'nowrap', title: fmtDateTime(r.created_at) }, ageText(r.created_at, now)),
      h('td', { class: 'num' }, money),
      h('td', { 'data-test': 'review-from' }, fromLabel(r)),
      h('td', { 'data-test': 'review-to' }, h('span', { class: r.to_account_number ? 'mono' : null }, reviewTarget(r, true)),
        // A plain transfer needs no label; the others say what the approval sends.
        kind === 'transfer' ? null : h('span', { class: 'tag', 'data-test': 'review-kind', style: 'display:table;margin-top:2px' }, reviewKindWords(r)),
        r.memo ? h('span', { class: 'hint', style: 'display:block' }, `Memo: ${r.memo}`) : null),
      h('td', { 'data-test': 'review-reason', title: r.reason }, reasonWords(r.reason)),
      h('td', { class: 'nowrap' }, pending
        ? [expiryText(r.expires_at, now), h('span', { class: 'hint', style: 'display:block' }, fmtDateTime(r.expires_at))]
        : ['—', r.decided_at ? h('span', { class: 'hint', style: 'display:block' }, `Decided ${fmtDateTime(r.decided_at)}`) : null]),
      h('td', null, h('span', { class: `status status-${r.status}`, 'data-test': 'review-status' }, ADMIN_STATUS_WORDS[r.status] ?? r.status)),
      h('td', null, h('div', { class: 'row-actions' }, actions)));
  }

  function render(force = false) {
    const now = Date.now();
    // Ages and expiries are said in minutes: once a minute is enough to keep them true.
    const key = JSON.stringify(items) + shownFilter + String(Math.floor(now / 60_000)) + String(accounts.size);
    if (!force && key === listKey) return;
    listKey = key;
    keepFocus(tbody, () => clear(tbody, items.map((r) => row(r, now))));
    table.hidden = items.length === 0;
    empty.hidden = items.length > 0;
    empty.textContent = shownFilter === 'pending' ? 'Nothing waits for a decision.' : 'No reviews with this status.';
    title.textContent = shownFilter === 'pending' ? 'Waiting for a decision' : `Reviews: ${FILTERS.find((f) => f.value === shownFilter)?.label ?? shownFilter}`;
    el.dataset.filter = shownFilter;
    el.dataset.count = String(items.length);
  }

  async function load(quiet = false) {
    const filter = status.value as ReviewFilter;
    const mine = ++token;
    try {
      const list = (await api.adminReviews(filter)).items;
      if (mine !== token) return;
      if (filter === 'pending') ctx.setBadge('admin-reviews', list.length);
      items = list;
      shownFilter = filter;
      render();
      showError(listError, null);
      void learnOwners(list);
    } catch (err) {
      if (mine === token) showError(listError, err, undefined, quiet);
    }
  }

  async function decide(r: Review, decision: 'approve' | 'reject', button: HTMLButtonElement) {
    const from = fromLabel(r);
    const noun = reviewKindNoun(r);
    const ok = await confirmDialog(
      decision === 'approve' ? `Approve this ${noun}?` : `Reject this ${noun}?`,
      decisionQuestion(r, from, decision),
      decision === 'approve' ? 'Approve and send' : 'Reject', decision === 'reject', 'Not now');
    if (!ok) return;
    setResult(result, null);
    showError(error, null);
    delete error.dataset.code;
    delete error.dataset.reviewId;
    await busy(button, async () => {
      try {
        const after = await api.adminReviewDecide(r.id, decision);
        setResult(result, decidedText(after, from), after.status, { 'data-review-id': after.id });
        const What = noun.replace(/^./, (c) => c.toUpperCase());
        toast(after.status === 'approved' ? `${What} approved and sent` : `${What} rejected`, 'success');
      } catch (err) {
        if (isSessionLost(err)) return;
        showError(error, decideErrorText(err));
        error.dataset.code = toIpcError(err).code;
        error.dataset.reviewId = r.id;
      }
      await load(true);
    });
    // Back to the same row's buttons when it is still listed, else to the list.
    (tbody.querySelector<HTMLElement>(`[data-test=review-${decision}][data-id="${CSS.escape(r.id)}"]`) ?? title).focus();
  }

  status.addEventListener('change', () => { setResult(result, null); showError(error, null); void load(); });
  refresh.addEventListener('click', () => void busy(refresh, () => load()));

  // Shown: the queue as it stands, every few seconds. Hidden: now and then, the badge's count.
  ctx.poll(async () => {
    if (!el.isConnected) return;
    ticks++;
    if (!el.hidden) { await load(true); return; }
    if (ticks % BADGE_EVERY !== 1) return;
    try { ctx.setBadge('admin-reviews', (await api.adminReviews('pending')).items.length); } catch { /* the next tick tries again */ }
  }, REFRESH_MS);

  return {
    id: 'admin-reviews',
    label: 'Review queue',
    badge: true,
    el,
    show() { void load(); },
  };
}
