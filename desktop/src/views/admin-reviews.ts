// Branch admin: the review queue. Transfers the bank held for a check wait here (amount, the
// account paying, the account paid, why, how long they have waited, when they expire); an admin
// approves (the transfer happens now, once) or rejects (the held amount is released) after a
// confirm step. Maker-checker: an admin who created the customer, opened the account, changed
// its limit in the last 24 h or added the payee may not approve; the server says so and the
// refusal is shown in plain words. A status filter shows how the others ended.
import { api, toIpcError } from '../ipc';
import { isSessionLost } from '../errors';
import { busy, clear, confirmDialog, field, fillSelect, fmtDateTime, h, keepFocus, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { Ctx, View } from '../shell';
import type { Account, Review, ReviewFilter } from '../types';
import {
  ADMIN_STATUS_WORDS, FILTERS, ageText, decidedText, decideErrorText, decisionQuestion, expiryText, isPending, reasonWords,
} from '../reviews';

/** How often the queue is read again while shown; hidden, only the badge's count, every `BADGE_EVERY` of these. */
export const REFRESH_MS = 5000;
export const BADGE_EVERY = 6;
/** Pages of the branch's accounts read at most to name the accounts paying (200 each). */
const MAX_ACCOUNT_PAGES = 20;

/** "100000000009 (Alice Fernandes)", or the id's start while the account is not known here. */
export function fromAccountLabel(id: string, a: Pick<Account, 'number' | 'owners'> | undefined): string {
  if (!a) return `account ${id.slice(0, 8)}…`;
  const owners = a.owners.map((o) => o.full_name).join(' & ');
  return owners ? `${a.number} (${owners})` : a.number;
}

export function adminReviewsView(ctx: Ctx): View {
  let items: Review[] = [];
  let shownFilter: ReviewFilter = 'pending';
  let listKey = '';
  let ticks = 0;
  let token = 0;
  const accounts = new Map<string, Account>();
  const notFound = new Set<string>();

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
    h('caption', { class: 'sr-only' }, 'Transfers held for review, newest first'),
    h('thead', null, h('tr', null, ['Held', 'Amount', 'From account', 'To account', 'Why it was held', 'Expires', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const empty = h('p', { id: 'admin-reviews-empty', class: 'muted', hidden: true });
  const el = h('section', { 'aria-labelledby': 'admin-reviews-title' },
    h('h1', { id: 'admin-reviews-title' }, 'Review queue'),
    h('p', { class: 'muted' },
      'Unusual transfers of your branch\'s customers wait here before anything moves: their amount is held. Approve sends the transfer, once; '
      + 'reject releases the held amount. Either way the customer is told. Undecided, a transfer expires after 24 hours. '
      + 'You cannot approve a transfer of a customer you created, from an account you opened or whose limit you changed in the last 24 hours, '
      + 'or to a payee you added: another branch admin decides it.'),
    h('div', { class: 'panel' },
      h('div', { class: 'filters' }, field('Show', status), h('div', { class: 'actions' }, refresh))),
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'admin-reviews-list-title' },
      title, listError, error, result, h('div', { class: 'table-scroll' }, table), empty));

  function fromLabel(id: string): string {
    return fromAccountLabel(id, accounts.get(id));
  }

  /** Learns the numbers (and owners) of the accounts paying, from the branch's account list. */
  async function learnAccounts(list: Review[]) {
    const missing = () => list.filter((r) => !accounts.has(r.from_account_id) && !notFound.has(r.from_account_id));
    if (missing().length === 0) return;
    let cursor: string | null = null;
    for (let page = 0; page < MAX_ACCOUNT_PAGES && missing().length > 0; page++) {
      const got = await api.adminAccounts({ cursor, limit: 200 });
      for (const a of got.items) accounts.set(a.id, a);
      cursor = got.next_cursor;
      if (!cursor) break;
    }
    // Not found after reading the list: named by id, and not looked for again on every refresh.
    for (const r of missing()) notFound.add(r.from_account_id);
  }

  function row(r: Review, now: number): HTMLElement {
    const pending = isPending(r);
    const money = formatMoney(r.amount, r.currency);
    const actions: HTMLElement[] = [];
    if (pending) {
      const approve = h('button', {
        type: 'button', class: 'primary small', 'data-test': 'review-approve', 'data-id': r.id,
        'aria-label': `Approve ${money} to account ${r.to_account_number}`,
      }, 'Approve');
      approve.addEventListener('click', () => void decide(r, 'approve', approve));
      const reject = h('button', {
        type: 'button', class: 'danger-outline small', 'data-test': 'review-reject', 'data-id': r.id,
        'aria-label': `Reject ${money} to account ${r.to_account_number}`,
      }, 'Reject');
      reject.addEventListener('click', () => void decide(r, 'reject', reject));
      actions.push(approve, reject);
    }
    return h('tr', { 'data-test': 'admin-review', 'data-review-id': r.id, 'data-status': r.status, 'data-amount': r.amount, class: pending ? null : 'muted' },
      h('td', { class: 'nowrap', title: fmtDateTime(r.created_at) }, ageText(r.created_at, now)),
      h('td', { class: 'num' }, money),
      h('td', { 'data-test': 'review-from' }, fromLabel(r.from_account_id)),
      h('td', { 'data-test': 'review-to' }, h('span', { class: 'mono' }, r.to_account_number),
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
    empty.textContent = shownFilter === 'pending' ? 'No transfer waits for a decision.' : 'No reviews with this status.';
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
      try { await learnAccounts(list); } catch { /* the accounts are named by id meanwhile */ }
      if (mine !== token) return;
      items = list;
      shownFilter = filter;
      render();
      showError(listError, null);
    } catch (err) {
      if (mine === token) showError(listError, err, undefined, quiet);
    }
  }

  async function decide(r: Review, decision: 'approve' | 'reject', button: HTMLButtonElement) {
    const from = fromLabel(r.from_account_id);
    const ok = await confirmDialog(
      decision === 'approve' ? 'Approve this transfer?' : 'Reject this transfer?',
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
        toast(after.status === 'approved' ? 'Transfer approved and sent' : 'Transfer rejected', 'success');
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
