// Exchange between currencies in words: rates, a quote's amounts and its countdown. Pure.
import { errorMessage, isUnreachable } from './errors';
import { toIpcError } from './ipc';
import { formatMoney } from './money';
import type { FxQuote } from './types';

/** "0.02500000" -> "0.025", "83.50000000" -> "83.5", "1.00000000" -> "1": a rate without its trailing zeros. */
export function trimRate(rate: string): string {
  const t = rate.trim();
  if (!/^\d+(\.\d+)?$/.test(t)) return t;
  return t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t;
}

/** "1 INR = 0.025 USD". */
export function rateText(r: { from: string; to: string; rate: string }): string {
  return `1 ${r.from} = ${trimRate(r.rate)} ${r.to}`;
}

/** "1 INR = 0.025 USD" for a quote. */
export function quoteRateText(q: Pick<FxQuote, 'from_currency' | 'to_currency' | 'rate'>): string {
  return rateText({ from: q.from_currency, to: q.to_currency, rate: q.rate });
}

/** "You send 1,000.00 INR; 25.00 USD arrive" (in the other account). */
export function quoteAmountsText(q: Pick<FxQuote, 'from_amount' | 'from_currency' | 'to_amount' | 'to_currency'>): string {
  return `You send ${formatMoney(q.from_amount, q.from_currency)}; ${formatMoney(q.to_amount, q.to_currency)} arrive`;
}

/** Whole seconds until `expiresAt` (rounded down; 0 once past or when it is no date). */
export function secondsLeft(expiresAt: string, nowMs: number): number {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return 0;
  return Math.max(0, Math.floor((at - nowMs) / 1000));
}

/** "0:59", "1:00", "0:05": minutes and seconds left. */
export function clockText(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The countdown's words: "This rate holds for 0:42", or that it expired. */
export function countdownText(seconds: number): string {
  return seconds > 0
    ? `This rate holds for ${clockText(seconds)}`
    : 'This quote has expired: nothing was exchanged. Get a new quote to see the rate now.';
}

/** A rate as a branch admin types it: null when fine, else what is wrong (the server's rule). */
export function rateProblem(text: string): string | null {
  const t = text.trim();
  if (!t) return 'Enter the rate';
  if (!/^\d+(\.\d+)?$/.test(t)) return 'Use digits with an optional decimal point, e.g. 0.012';
  const [whole, fraction = ''] = t.split('.');
  if (fraction.length > 8) return 'At most 8 decimal places';
  if (whole.replace(/^0+/, '').length > 6) return 'The rate must be below 1,000,000';
  if (/^0*$/.test(whole) && /^0*$/.test(fraction)) return 'The rate must be greater than 0';
  return null;
}

/** Why no quote was given, in plain words (`fromCurrency`: the currency of the account it leaves). */
export function quoteErrorText(err: unknown, fromCurrency: string): string {
  const e = toIpcError(err);
  if (e.code === 'currency_mismatch') return `Both accounts are in ${fromCurrency}: use Move money for a transfer in one currency.`;
  const noRate = /no ([A-Z]{3}) to ([A-Z]{3}) rate/.exec(e.detail);
  if (e.code === 'not_found' && noRate) return `The bank has no ${noRate[1]} to ${noRate[2]} rate at the moment, so it cannot quote this exchange. Ask your branch.`;
  if (isUnreachable(e)) return 'Cannot reach the server: no quote was given and nothing was exchanged. Try again once you are back online.';
  return errorMessage(e, { not_found: 'No such account' });
}

/** Why a confirmed exchange did not happen, in plain words: nothing moved. */
export function exchangeErrorText(err: unknown): string {
  const e = toIpcError(err);
  const text = errorMessage(e, { not_found: 'No such account or quote' });
  return e.code === 'quote_expired' || e.code === 'quote_used' || /nothing/i.test(text) ? text : `${text}. Nothing was exchanged.`;
}
