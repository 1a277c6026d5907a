import { IpcError, toIpcError } from './ipc';
import { formatMoney, sumAmounts } from './money';

const MESSAGES: Record<string, string> = {
  invalid_credentials: 'Wrong username or password',
  invalid_totp: 'Wrong code. Check your authenticator app and try again',
  totp_replayed: 'That code was already used. Wait for the next code',
  forbidden: 'You are not allowed to do this',
  not_found: 'No such account',
  insufficient_funds: 'Insufficient funds',
  account_inactive: 'The account is frozen or closed',
  currency_mismatch: 'The accounts use different currencies',
  same_account: 'You cannot transfer to the same account',
  payee_refused: "The payee's bank refused the payment",
  liquidity_exhausted: 'Your bank cannot send more inter-bank payments right now. Try again later',
  same_bank: 'That key belongs to an account at your own bank: use Move money instead',
  bank_unavailable: 'The inter-bank network cannot be reached. Nothing was sent; try again later',
  key_taken: 'That key is already registered to an account',
  limit_reached: 'This account has as many keys as it may have',
  balance_not_zero: 'The account still holds money; only an account with a zero balance can be closed',
  order_ended: 'This standing order was cancelled or has ended: it cannot change any more',
  quote_expired: 'The quote expired before it was used. Nothing was exchanged: get a new quote',
  quote_used: 'This quote was used already. Nothing more was exchanged: get a new quote for another exchange',
  review_decided: 'This review was decided already: nothing more changed',
  username_taken: 'That username is already taken',
  idempotency_in_progress: 'This request is still being processed. Please wait',
  idempotency_key_reused: 'This request conflicts with an earlier one. Please try again',
  payload_too_large: 'Too much data in one request',
  no_primary: 'The bank is switching database servers. Nothing was changed; try again in a moment',
  unreachable: 'Cannot reach the server',
  unauthenticated: 'Your session has ended. Please sign in again',
  internal: 'Something went wrong in the app',
};

export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.ceil(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${sec} s`;
  return `${sec} s`;
}

/** The server's detail of `limit_exceeded` (sql/functions/count_daily_limit.sql). */
const LIMIT_DETAIL = /^(?:item (\d+): )?account (\S+): (\d+(?:\.\d+)?) ([A-Z]{3}) would pass its daily limit of (\d+(?:\.\d+)?) [A-Z]{3} \((\d+(?:\.\d+)?) used today\)/;

/**
 * `limit_exceeded` in plain words, with the figures of the server's detail: what was asked, the
 * limit, what was sent today and what is left. Nothing moves when a limit refuses.
 */
export function limitExceededText(detail: string): string {
  const m = LIMIT_DETAIL.exec(detail.trim());
  if (!m) {
    return detail.trim()
      ? `Over the daily limit: ${detail.trim()}. Nothing was moved.`
      : "This would pass the account's daily limit. Nothing was moved.";
  }
  const [, , number, amount, currency, limit, used] = m;
  const left = sumAmounts([limit, `-${used}`]);
  const room = left.startsWith('-') || /^0+\.00$/.test(left)
    ? 'so nothing more can go today'
    : `so at most ${formatMoney(left, currency)} can still go today`;
  return `Over the daily limit: ${formatMoney(amount, currency)} would pass the daily limit of ${formatMoney(limit, currency)} `
    + `of account ${number} (${formatMoney(used, currency)} already sent today, ${room}). Nothing was moved.`;
}

/** Plain words for an error; `notFound` overrides the message for `not_found`. */
export function errorMessage(raw: unknown, overrides: Record<string, string> = {}): string {
  const err: IpcError = toIpcError(raw);
  if (overrides[err.code]) return overrides[err.code];
  if (err.kind === 'unreachable' || err.code === 'unreachable') return MESSAGES.unreachable;
  switch (err.code) {
    case 'validation_failed':
      return err.detail ? `Please check your input: ${err.detail}` : 'Please check your input';
    case 'locked_out':
      return err.retryAfterS != null
        ? `Too many failed attempts. Locked for ${formatDuration(err.retryAfterS)}`
        : 'Too many failed attempts. Try again later';
    case 'rate_limited':
      return err.retryAfterS != null
        ? `Too many requests. Try again in ${formatDuration(err.retryAfterS)}`
        : 'Too many requests. Try again shortly';
    case 'internal':
      return err.detail ? `${MESSAGES.internal}: ${err.detail}` : MESSAGES.internal;
    case 'limit_exceeded':
      return limitExceededText(err.detail);
  }
  if (MESSAGES[err.code]) return MESSAGES[err.code];
  if (err.status >= 500) return `The server had a problem (${err.code})${err.detail ? `: ${err.detail}` : ''}`;
  return err.detail || err.code;
}

/** Codes whose plain words already carry the figures of the server's detail. */
export function detailIncluded(raw: unknown): boolean {
  return toIpcError(raw).code === 'limit_exceeded';
}

export function isSessionLost(raw: unknown): boolean {
  return toIpcError(raw).code === 'unauthenticated';
}

export function isUnreachable(raw: unknown): boolean {
  const e = toIpcError(raw);
  return e.kind === 'unreachable' || e.code === 'unreachable';
}
