// Standing orders in words: schedules, dates and times in the order's time zone, and what became
// of each run. Pure: no DOM, no IPC.
import { errorMessage } from './errors';
import { fmtDateTime } from './dom';
import { keyText } from './dom';
import { formatMoney, sumAmounts, validateAmount } from './money';
import type { Every, InterbankPayment, OrderChange, OrderRun, OrderStatus, OrderTarget, Schedule, StandingOrder } from './types';

export const EVERY_CHOICES: { value: Every; label: string }[] = [
  { value: 'month', label: 'Month' },
  { value: 'week', label: 'Week' },
  { value: 'day', label: 'Day' },
];
export const MAX_INTERVAL = 366;
export const MAX_START_DAYS_AHEAD = 366;

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** 1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st, 22nd, 23rd … 31st. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${suffix}`;
}

/** Midnight UTC of a calendar day (month 0-11; overflowing days and months roll over), years 0 to 99 included. */
function utcDate(year: number, month0: number, day: number): Date {
  const t = new Date(0);
  t.setUTCFullYear(year, month0, day); // not Date.UTC: it reads years 0 to 99 as 1900 to 1999
  return t;
}

/** A calendar date "YYYY-MM-DD" as [year, month 1-12, day], or null when it is no real date. */
export function parseDate(text: string): [number, number, number] | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = utcDate(y, mo - 1, d);
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return null;
  return [y, mo, d];
}

const pad = (n: number) => String(n).padStart(2, '0');
const dateText = (t: Date) => `${String(t.getUTCFullYear()).padStart(4, '0')}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;

/** The weekday of a calendar date ("Sunday" …), with no time zone involved. */
export function weekday(date: string): string {
  const d = parseDate(date);
  return d ? WEEKDAYS[utcDate(d[0], d[1] - 1, d[2]).getUTCDay()] : '';
}

/** `date` plus `days` (calendar days). */
export function addDays(date: string, days: number): string {
  const d = parseDate(date);
  if (!d) return date;
  return dateText(utcDate(d[0], d[1] - 1, d[2] + days));
}

/** `date` plus `months`, on the same day or the month's last day when it is shorter (as the server counts). */
export function addMonths(date: string, months: number): string {
  const d = parseDate(date);
  if (!d) return date;
  const first = utcDate(d[0], d[1] - 1 + months, 1);
  const days = utcDate(first.getUTCFullYear(), first.getUTCMonth() + 1, 0).getUTCDate();
  return dateText(utcDate(first.getUTCFullYear(), first.getUTCMonth(), Math.min(d[2], days)));
}

/**
 * "Every month on the 31st at 09:00 (Asia/Kolkata)", "Every 2 weeks on Tuesday at 07:30 (UTC)",
 * "Every day at 09:00 (…)": a weekly order runs on its start date's weekday, a monthly one on its
 * start date's day. Test orders in seconds: "Every 2 seconds".
 */
export function scheduleWords(s: Schedule, startAt: string, timeZone?: string | null): string {
  const n = s.interval;
  const zone = timeZone ? ` (${timeZone})` : '';
  const every = (unit: string) => (n === 1 ? `Every ${unit}` : `Every ${n} ${unit}s`);
  switch (s.every) {
    case 'day': return `${every('day')} at ${s.time}${zone}`;
    case 'week': return `${every('week')} on ${weekday(startAt) || 'the start date\'s weekday'} at ${s.time}${zone}`;
    case 'month': {
      const d = parseDate(startAt);
      return `${every('month')} on the ${d ? ordinal(d[2]) : 'start date\'s day'} at ${s.time}${zone}`;
    }
    case 'second': return every('second');
    default: return `${every(String(s.every))} at ${s.time}${zone}`;
  }
}

/** For a monthly order from the 29th on: what happens in shorter months (else null). */
export function shortMonthNote(s: Pick<Schedule, 'every'>, startAt: string): string | null {
  const d = parseDate(startAt);
  if (s.every !== 'month' || !d || d[2] <= 28) return null;
  return `In months without a ${ordinal(d[2])} it runs on the month's last day.`;
}

/** The parts of an instant in an IANA time zone, or null when the zone is unknown here. */
function zoneParts(at: Date, timeZone: string): Record<string, string> | null {
  try {
    const parts = new Intl.DateTimeFormat('en-GB', {
      timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    }).formatToParts(at);
    return Object.fromEntries(parts.map((p) => [p.type, p.value]));
  } catch {
    return null;
  }
}

/** "2026-05-31 09:00" (or with seconds) as the clock reads in `timeZone`; this computer's time when the zone is unknown here. */
export function formatInZone(iso: string | null | undefined, timeZone: string, seconds = false): string {
  if (!iso) return '—';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const p = zoneParts(at, timeZone);
  if (!p) return fmtDateTime(iso).slice(0, seconds ? 19 : 16);
  const hour = p.hour === '24' ? '00' : p.hour;
  return `${p.year}-${p.month}-${p.day} ${hour}:${p.minute}${seconds ? `:${p.second}` : ''}`;
}

/** Today's date "YYYY-MM-DD" in `timeZone` (this computer's when the zone is unknown here). */
export function todayInZone(timeZone: string, now: Date = new Date()): string {
  return formatInZone(now.toISOString(), timeZone).slice(0, 10);
}

/** "HH:MM" now in `timeZone`. */
export function timeInZone(timeZone: string, now: Date = new Date()): string {
  return formatInZone(now.toISOString(), timeZone).slice(11, 16);
}

/**
 * The date of the first payment of a new order: its start date, or (when that date's time has
 * passed already today) the next date of its schedule. `today` and `nowTime` are in the order's zone.
 */
export function firstRunDate(s: Pick<Schedule, 'every' | 'interval' | 'time'>, startAt: string, today: string, nowTime: string): string {
  const passed = (date: string) => date < today || (date === today && s.time <= nowTime);
  let date = startAt;
  for (let k = 1; passed(date) && k < 1000; k++) {
    date = s.every === 'month' ? addMonths(startAt, k * s.interval)
      : addDays(startAt, k * s.interval * (s.every === 'week' ? 7 : 1));
  }
  return date;
}

/** The order's next payment in words: "2026-05-31 09:00 (Asia/Kolkata)", or why there is none. */
export function nextRunText(o: Pick<StandingOrder, 'status' | 'next_run_at' | 'time_zone' | 'schedule'>): string {
  if (o.status === 'paused') return 'None while paused';
  if (o.status === 'cancelled' || o.status === 'ended' || !o.next_run_at) return '—';
  return `${formatInZone(o.next_run_at, o.time_zone, o.schedule.every === 'second')} (${o.time_zone})`;
}

export const STATUS_WORDS: Record<OrderStatus, string> = { active: 'Active', paused: 'Paused', cancelled: 'Cancelled', ended: 'Ended' };

/** Live orders first (as set up), then the ones that ended or were cancelled. */
export function sortOrders<T extends Pick<StandingOrder, 'status'>>(list: T[]): T[] {
  const live = (o: T) => (o.status === 'active' || o.status === 'paused' ? 0 : 1);
  return list.map((o, i) => ({ o, i })).sort((a, b) => live(a.o) - live(b.o) || a.i - b.i).map((x) => x.o);
}

const REFUSALS: Record<string, string> = {
  insufficient_funds: 'not enough money in the account',
  limit_exceeded: "it would have passed the account's daily limit",
  account_inactive: 'one of the accounts was frozen or closed',
  not_found: "the payee's account is no longer open",
  currency_mismatch: 'the accounts use different currencies',
  same_account: 'it would have paid its own account',
  // An order to a key at another bank: its inter-bank payment could not be placed.
  bank_unavailable: 'the inter-bank network could not be reached',
  liquidity_exhausted: 'the bank could not send more payments to other banks at the time',
  order_paused: 'you paused the order before it was tried again',
  order_cancelled: 'you cancelled the order before it was tried again',
  order_ended: 'the order had ended before it was tried again',
  // A run the bank held for a check, and how its review ended without paying.
  review_rejected: 'rejected in review',
  review_cancelled: 'you cancelled it while it was held for review',
  review_expired: 'not decided in review in time',
};

/** Why a run was refused, in plain words. */
export function refusalWords(code: string | null | undefined): string {
  if (!code) return 'refused';
  return REFUSALS[code] ?? errorMessage({ kind: 'problem', status: 409, code, detail: '' }).replace(/^./, (c) => c.toLowerCase());
}

/**
 * What became of one run: "Paid", "Sent to the other bank" (an order to a key: the inter-bank
 * payment it placed is settled by the switch, see `interbankRunText`), "Held for review",
 * "Refused: not enough money …; tried again at 13:00", "Not paid: …".
 */
export function runWords(r: Pick<OrderRun, 'status' | 'refusal_code' | 'retry_at' | 'interbank_payment_id'>, timeZone: string, now: Date = new Date()): string {
  switch (r.status) {
    case 'done': return r.interbank_payment_id ? 'Sent to the other bank' : 'Paid';
    // Neither paid nor refused yet: a reviewer decides (the customer sees it in Reviews).
    case 'held': return 'Held for review';
    case 'retry': {
      const when = r.retry_at ? formatInZone(r.retry_at, timeZone) : '';
      const later = r.retry_at && new Date(r.retry_at).getTime() > now.getTime() ? 'it is tried once more at' : 'it was due to be tried once more at';
      return `Refused: ${refusalWords(r.refusal_code)}; ${when ? `${later} ${when} (${timeZone})` : 'it is tried once more later today'}`;
    }
    case 'skipped': return `Not paid: ${refusalWords(r.refusal_code)}`;
    default: return String(r.status);
  }
}

/** What became of the inter-bank payment a run of an order to a key placed, as the switch decided it. */
export function interbankRunText(p: Pick<InterbankPayment, 'status' | 'reason'>): string {
  switch (p.status) {
    case 'committed': return 'Paid: the other bank took the payment';
    case 'pending': return 'Still being settled between the banks: check again later';
    case 'aborted': return `Not paid: the payment was refused between the banks${p.reason ? ` (${p.reason})` : ''}. No money left your account`;
    default: return String(p.status);
  }
}

/** A run's due date as shown: the date, or the instant (in the order's zone) for orders in seconds. */
export function dueText(r: Pick<OrderRun, 'due' | 'due_at'>, s: Pick<Schedule, 'every'>, timeZone: string): string {
  return s.every === 'second' ? formatInZone(r.due_at, timeZone, true) : r.due;
}

/** How a run's row looks: paid, waiting for a reviewer, or not paid (refused, skipped). */
export function runTone(status: OrderRun['status']): 'ok' | 'held' | 'error' {
  return status === 'done' ? 'ok' : status === 'held' ? 'held' : 'error';
}

/** Whom an order pays, when no saved payee names it: "account 100000000027", "phone key +919876543210". */
export function orderTargetText(to: OrderTarget): string {
  if (to.account_number) return `account ${to.account_number}`;
  if (to.key) return keyText(to.key).replace(/^[A-Z](?=[a-z-])/, (c) => c.toLowerCase());
  return 'the payee';
}

/** "HH:MM" from a time field's value ("09:00" or "09:00:00"), or null. */
export function hhmmOf(value: string): string | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d(?:\.\d+)?)?$/.exec(value.trim());
  return m ? `${m[1]}:${m[2]}` : null;
}

export interface OrderInput {
  amount: string;
  every: string;
  interval: string;
  time: string;
  start: string;
  end: string;
}

/** Checks the form of a new order; null when fine, else what is wrong (and which field). */
export function orderProblem(i: OrderInput, today: string): { field: keyof OrderInput; text: string } | null {
  const amount = validateAmount(i.amount);
  if (amount) return { field: 'amount', text: amount };
  if (!EVERY_CHOICES.some((c) => c.value === i.every)) return { field: 'every', text: 'Choose how often it pays' };
  const n = Number(i.interval.trim());
  if (!/^\d+$/.test(i.interval.trim()) || n < 1 || n > MAX_INTERVAL) return { field: 'interval', text: `"Every" takes a whole number from 1 to ${MAX_INTERVAL}` };
  if (!hhmmOf(i.time)) return { field: 'time', text: 'Enter the time of day, e.g. 09:00' };
  if (!parseDate(i.start)) return { field: 'start', text: 'Enter the first date, e.g. 2026-05-31' };
  if (i.start < today) return { field: 'start', text: `The first date cannot be in the past (today is ${today} in your time zone)` };
  if (i.start > addDays(today, MAX_START_DAYS_AHEAD)) return { field: 'start', text: `The first date can be at most ${MAX_START_DAYS_AHEAD} days ahead` };
  if (i.end.trim()) {
    if (!parseDate(i.end)) return { field: 'end', text: 'Enter the last date, e.g. 2026-12-31, or leave it empty' };
    if (i.end < i.start) return { field: 'end', text: 'The last date cannot be before the first date' };
  }
  return null;
}

/** The edit form's fields, as typed. */
export interface OrderEdit {
  amount: string;
  memo: string;
  every: string;
  interval: string;
  time: string;
}

/**
 * What an edit changes, checked: only the fields that differ from the order are sent (the
 * schedule as a whole when any of its parts changed; "2500" is the same amount as "2500.00").
 * An empty change means there is nothing to save.
 */
export function orderChange(o: Pick<StandingOrder, 'amount' | 'memo' | 'schedule'>, e: OrderEdit):
  { change: OrderChange } | { field: keyof OrderEdit; text: string } {
  const amount = validateAmount(e.amount);
  if (amount) return { field: 'amount', text: amount };
  // The order's own period stays choosable (a test order in seconds); the app offers no other.
  if (e.every !== o.schedule.every && !EVERY_CHOICES.some((c) => c.value === e.every)) return { field: 'every', text: 'Choose how often it pays' };
  const n = Number(e.interval.trim());
  if (!/^\d+$/.test(e.interval.trim()) || n < 1 || n > MAX_INTERVAL) return { field: 'interval', text: `"Every" takes a whole number from 1 to ${MAX_INTERVAL}` };
  const time = hhmmOf(e.time);
  if (!time) return { field: 'time', text: 'Enter the time of day, e.g. 09:00' };
  const change: OrderChange = {};
  if (sumAmounts([e.amount]) !== sumAmounts([o.amount])) change.amount = e.amount.trim();
  if (e.memo !== o.memo) change.memo = e.memo;
  const schedule: Schedule = { every: e.every as Every, interval: n, time };
  if (schedule.every !== o.schedule.every || schedule.interval !== o.schedule.interval || schedule.time !== o.schedule.time) change.schedule = schedule;
  return { change };
}

/** What an edit changed, for the result line: "amount 3,000.00 INR, schedule every 2 weeks on Monday at 10:00". */
export function changeWords(c: OrderChange, o: Pick<StandingOrder, 'currency' | 'start_at' | 'time_zone'>): string {
  const parts: string[] = [];
  if (c.amount !== undefined) parts.push(`amount ${formatMoney(c.amount, o.currency)}`);
  if (c.schedule) parts.push(`schedule ${scheduleWords(c.schedule, o.start_at, o.time_zone).replace(/^Every/, 'every')}`);
  if (c.memo !== undefined) parts.push(c.memo ? `memo "${c.memo}"` : 'no memo');
  return parts.join(', ');
}
