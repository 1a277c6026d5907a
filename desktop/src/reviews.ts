// Review of unusual movements in plain words: why the bank held a transfer, a payment by key to
// another bank or a standing order's run, whom it pays, what became of it, how long it has waited
// and when it expires, and why a decision was refused (maker-checker).
// Pure: no DOM, no IPC calls.
import { toIpcError } from './ipc';
import { errorMessage } from './errors';
import { keyText } from './dom';
import { formatMoney } from './money';
import type { Review, ReviewFilter, ReviewKind, ReviewStatus } from './types';

/** "••••0027", as the server masks numbers in notices. */
export function maskNumber(number: string): string {
  const n = number.trim();
  return `••••${n.slice(-4)}`;
}

/** What was held, as the lists label it. */
export const KIND_WORDS: Record<ReviewKind, string> = {
  transfer: 'Transfer',
  interbank: 'Inter-bank (by key)',
  standing_order: 'Standing order run',
};

/** The label of a review's kind; a server before kinds held transfers only. */
export function kindWords(kind: ReviewKind | (string & {}) | null | undefined): string {
  return KIND_WORDS[(kind ?? 'transfer') as ReviewKind] ?? String(kind);
}

/** What was held, inside a sentence: "transfer", "payment to another bank", "standing order payment". */
export function kindNoun(kind: ReviewKind | (string & {}) | null | undefined): string {
  if (kind === 'interbank') return 'payment to another bank';
  if (kind === 'standing_order') return 'standing order payment';
  return 'transfer';
}

/** Whether a review holds a run of a standing order to a key (kind `interbank`, with its order). */
export function isOrderKeyRun(r: Pick<Review, 'kind' | 'standing_order_id'>): boolean {
  return r.kind === 'interbank' && !!r.standing_order_id;
}

/** A review's label: its kind's, and "Standing order run (inter-bank)" for a run of an order to a key. */
export function reviewKindWords(r: Pick<Review, 'kind' | 'standing_order_id'>): string {
  return isOrderKeyRun(r) ? 'Standing order run (inter-bank)' : kindWords(r.kind);
}

/** A review's noun inside a sentence: its kind's, and "standing order payment to another bank" for a run of an order to a key. */
export function reviewKindNoun(r: Pick<Review, 'kind' | 'standing_order_id'>): string {
  return isOrderKeyRun(r) ? 'standing order payment to another bank' : kindNoun(r.kind);
}

type Target = Pick<Review, 'to_account_number' | 'to_key'>;

/**
 * Whom it pays, for a list's cell: the account number (masked "••••0027" as the customer's
 * notices say it, or in `full` for the branch), or the key paid at another bank ("Phone key
 * +919800000001", in full for both: the customer typed it).
 */
export function reviewTarget(r: Target, full = false): string {
  if (r.to_account_number) return full ? r.to_account_number : maskNumber(r.to_account_number);
  if (r.to_key) return keyText(r.to_key);
  return 'the payee';
}

/** Whom it pays, inside a sentence: "••••0027" (or "account 100000000027" in full), "phone key +9198…". */
function targetWords(r: Target, full = false): string {
  if (r.to_account_number) return full ? `account ${r.to_account_number}` : maskNumber(r.to_account_number);
  return reviewTarget(r).replace(/^[A-Z](?=[a-z-])/, (c) => c.toLowerCase());
}

/** The server's reasons (server/src/review.rs `screen`), picked apart for plain words. */
const NEW_PAYEE = /^(\d+(?:\.\d+)?) ([A-Z]{3}) to a payee added less than (\d+) h ago \(more than (\d+(?:\.\d+)?) [A-Z]{3}\)$/;
const BURST = /^(\d+(?:\.\d+)?) ([A-Z]{3}) after (\d+) transfers in (\d+) minutes \(at most (\d+) before a review\)$/;

/** Why it was held, in plain words; the server's own words when they are not known here. */
export function reasonWords(reason: string): string {
  const r = reason.trim();
  let m = NEW_PAYEE.exec(r);
  if (m) {
    const [, , currency, hours, threshold] = m;
    return `more than ${formatMoney(threshold, currency)} to a payee saved less than ${hours} hours ago`;
  }
  m = BURST.exec(r);
  if (m) {
    const [, , , count, minutes] = m;
    return `a large transfer after ${count} transfers in ${minutes} minutes`;
  }
  return r || 'an unusual movement';
}

/** Move money's, Pay by key's (and the queue's) words for a movement the bank held (202). */
export function heldText(r: Pick<Review, 'amount' | 'currency' | 'to_account_number' | 'to_key' | 'reason'>): string {
  return `Held for a check by the bank: ${formatMoney(r.amount, r.currency)} to ${targetWords(r)} `
    + `will be sent once approved (reason: ${reasonWords(r.reason)}). You can cancel it in Reviews.`;
}

/** Whether an accepted answer is a Review (202 `held_for_review`) rather than the transfer or payment asked for. */
export function isHeldReview(answer: { status: string }): answer is Review {
  return answer.status === 'held_for_review';
}

/** The review's id: the 202 answer carries `review_id` (and `id`), the lists `id`. */
export function reviewId(r: Pick<Review, 'id' | 'review_id'>): string {
  return r.review_id ?? r.id;
}

/** "less than a minute", "5 min", "2 h 5 min", "1 day 3 h". */
export function roughDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return 'less than a minute';
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return `${days} day${days === 1 ? '' : 's'}${hours % 24 ? ` ${hours % 24} h` : ''}`;
}

const seconds = (from: string, to: number) => (to - new Date(from).getTime()) / 1000;

/** How long it has waited: "held 5 min ago" ("held just now" in the first minute). */
export function ageText(createdAt: string, now: number): string {
  const s = seconds(createdAt, now);
  if (Number.isNaN(s)) return '—';
  return s < 60 ? 'held just now' : `held ${roughDuration(s)} ago`;
}

/** When it expires undecided: "in 23 h 55 min", or "now" once past. */
export function expiryText(expiresAt: string, now: number): string {
  const s = -seconds(expiresAt, now);
  if (Number.isNaN(s)) return '—';
  return s <= 0 ? 'now' : `in ${roughDuration(s)}`;
}

/** The customer's word for each status (the outcome's sentence says more). */
export const STATUS_WORDS: Record<ReviewStatus, string> = {
  held_for_review: 'Waiting',
  approved: 'Sent',
  rejected: 'Refused',
  cancelled: 'Cancelled',
  expired: 'Expired',
};

/** The branch's words for each status. */
export const ADMIN_STATUS_WORDS: Record<ReviewStatus, string> = {
  held_for_review: 'Pending',
  approved: 'Approved',
  rejected: 'Rejected',
  cancelled: 'Cancelled',
  expired: 'Expired',
};

/** The review queue's status filter. */
export const FILTERS: { value: ReviewFilter; label: string }[] = [
  { value: 'pending', label: 'Pending' },
  { value: 'approved', label: 'Approved' },
  { value: 'rejected', label: 'Rejected' },
  { value: 'cancelled', label: 'Cancelled by the customer' },
  { value: 'expired', label: 'Expired' },
  { value: 'all', label: 'All' },
];

/** Whether a review is still waiting (it can be approved, rejected or cancelled). */
export function isPending(r: Pick<Review, 'status'>): boolean {
  return r.status === 'held_for_review';
}

/** What became of the customer's transfer, one sentence; `when` formats an instant. */
export function outcomeText(r: Review, when: (iso: string) => string, now: number): string {
  const money = formatMoney(r.amount, r.currency);
  const at = r.decided_at ? ` on ${when(r.decided_at)}` : '';
  switch (r.status) {
    case 'held_for_review':
      return `Not sent yet: waiting for the bank's check. If it is not decided ${expiryText(r.expires_at, now)} (${when(r.expires_at)}), it is not sent.`;
    case 'approved':
      return `Approved${at}: ${money} was sent.`;
    case 'rejected':
      return `Refused by the bank${at}: nothing was sent, and the held amount is free again.`;
    case 'cancelled':
      return `You cancelled it${at}: nothing was sent, and the held amount is free again.`;
    case 'expired':
      return `Not decided in time${at}: nothing was sent, and the held amount is free again.`;
    default:
      return String(r.status);
  }
}

/** The confirm step of a customer's cancel. */
export function cancelQuestion(r: Pick<Review, 'amount' | 'currency' | 'to_account_number' | 'to_key'>): string {
  return `${formatMoney(r.amount, r.currency)} to ${targetWords(r)} will not be sent, and the held amount is free again at once. `
    + 'To pay it after all, make a new transfer.';
}

/** The confirm step of an admin's decision. `from` names the account paying. */
export function decisionQuestion(r: Pick<Review, 'amount' | 'currency' | 'to_account_number' | 'to_key' | 'reason'>, from: string, decision: 'approve' | 'reject'): string {
  const what = `${formatMoney(r.amount, r.currency)} from ${from} to ${targetWords(r, true)}`;
  return decision === 'approve'
    ? `${what} is sent now, once. It was held for: ${reasonWords(r.reason)}.`
    : `${what} is not sent: the held amount is released to the customer, who is told. It was held for: ${reasonWords(r.reason)}.`;
}

/** What a decision did, for the result line. */
export function decidedText(r: Pick<Review, 'amount' | 'currency' | 'to_account_number' | 'to_key' | 'status'>, from: string): string {
  const what = `${formatMoney(r.amount, r.currency)} from ${from} to ${targetWords(r, true)}`;
  return r.status === 'approved'
    ? `Approved: ${what} was sent.`
    : `Rejected: ${what} was not sent; the held amount is free again and the customer is told.`;
}

const MAKER_CHECKER = /another branch admin must decide this review:\s*(.+?)\.?\s*$/i;

/** Why an admin's approve or reject was refused, in plain words. */
export function decideErrorText(raw: unknown): string {
  const e = toIpcError(raw);
  switch (e.code) {
    case 'forbidden': {
      const m = MAKER_CHECKER.exec(e.detail);
      return m
        ? `Another branch admin must decide this: ${m[1]}.`
        : 'You may not decide this review: it needs a branch admin of its branch who had no hand in the customer, the account or the payee.';
    }
    case 'review_decided':
      return 'This review was decided already (by another admin, by the customer cancelling it, or by its expiry). Nothing more changed.';
    case 'not_found':
      return 'No such review in your branch.';
    case 'account_inactive':
      return 'The account is frozen or closed now, so the transfer cannot be sent. Nothing was moved; you can reject it.';
  }
  const text = errorMessage(e);
  return /nothing was moved/i.test(text) ? text : `${text}. Nothing was moved.`;
}

/** The result line of a customer's cancel. */
export function cancelledText(r: Pick<Review, 'amount' | 'currency' | 'to_account_number' | 'to_key'>): string {
  return `Cancelled: ${formatMoney(r.amount, r.currency)} to ${targetWords(r)} will not be sent, and the held amount is free again.`;
}

/** Why a customer's cancel was refused, in plain words. */
export function cancelErrorText(raw: unknown): string {
  const e = toIpcError(raw);
  if (e.code === 'review_decided') return 'This transfer was decided already: it can no longer be cancelled. The list shows what became of it.';
  if (e.code === 'not_found') return 'No such held transfer.';
  return errorMessage(e);
}
