// Monthly statements: which months an account has one for, and what a download saved. Months
// are counted in UTC, from the month the account opened to the current one (a statement to
// date). Used by the customer's History and the branch admin's Accounts. Pure.
import type { SavedStatement } from './types';

export const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** "April 2026" for "2026-04" (the text as it came when it is no month). */
export function monthName(month: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  const index = m ? Number(m[2]) - 1 : -1;
  return m && index >= 0 && index < 12 ? `${MONTH_NAMES[index]} ${m[1]}` : month;
}

/** "yyyy-mm" of an instant, in UTC. */
export function utcMonth(at: Date): string {
  return `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * The months with a statement, newest first: from the account's opening month (UTC) to `now`'s;
 * the current one is "to date". None when `openedAt` is no date; at most `max` (the newest).
 */
export function statementMonths(openedAt: string, now: Date, max = 120): { value: string; label: string }[] {
  const opened = new Date(openedAt);
  if (Number.isNaN(opened.getTime())) return [];
  const first = opened.getUTCFullYear() * 12 + opened.getUTCMonth();
  const last = now.getUTCFullYear() * 12 + now.getUTCMonth();
  const out: { value: string; label: string }[] = [];
  for (let i = last; i >= first && out.length < max; i--) {
    const value = `${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
    out.push({ value, label: i === last ? `${monthName(value)} (to date)` : monthName(value) });
  }
  return out;
}

/** "Saved the statement of 100000000009 for April 2026 (12 KB) to /home/…/statement-….pdf". */
export function savedStatementText(number: string, month: string, saved: Pick<SavedStatement, 'bytes' | 'path'>): string {
  return `Saved the statement of ${number} for ${month} (${Math.max(1, Math.round(saved.bytes / 1024))} KB) to ${saved.path}`;
}

/** The refusals a statement download words itself. */
export const STATEMENT_ERRORS = { not_found: 'There is no statement for that month: it is before the account opened or has not begun' };
