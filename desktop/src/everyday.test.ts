import { describe, expect, it } from 'vitest';
import {
  addMonths, changeWords, dueText, firstRunDate, formatInZone, hhmmOf, interbankRunText, nextRunText, ordinal, orderChange, orderProblem, orderTargetText,
  refusalWords, runTone, runWords, scheduleWords, shortMonthNote, sortOrders, timeInZone, todayInZone, weekday,
} from './schedule';
import {
  clockText, countdownText, exchangeErrorText, quoteAmountsText, quoteErrorText, quoteRateText, rateProblem, rateText, secondsLeft, trimRate,
} from './fx';
import { STATEMENT_ERRORS, monthName, savedStatementText, statementMonths, utcMonth } from './statements';
import { exchangeTargets, rateFor } from './views/exchange';
import {
  ANOTHER_KEY, KEY_ERRORS, orderConfirmSentence, orderKeyPayeeName, orderPayeeName, orderPayeeOptions, orderTargetProblem,
} from './views/standing-orders';
import { ANOTHER_ACCOUNT } from './views/payees';
import { keyValueProblem } from './views/paykey';
import { counterpartyText } from './views/history';
import { notificationCategory, notificationText } from './notify-text';
import { fmtDateTime } from './dom';
import type { Account, FxRate, OrderRun, StandingOrder } from './types';
import { mum, rent } from './fixtures';

const problem = (status: number, code: string, detail = '') => ({ kind: 'problem', status, code, detail, retry_after_s: null });
const monthly = { every: 'month' as const, interval: 1, time: '09:00' };

describe('schedules in words', () => {
  it('says ordinals as English does', () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 28, 31, 101, 111].map(ordinal))
      .toEqual(['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '28th', '31st', '101st', '111th']);
  });
  it('words each kind of schedule, with its time zone', () => {
    expect(scheduleWords(monthly, '2026-05-31', 'Asia/Kolkata')).toBe('Every month on the 31st at 09:00 (Asia/Kolkata)');
    expect(scheduleWords({ ...monthly, interval: 3 }, '2026-06-02', 'UTC')).toBe('Every 3 months on the 2nd at 09:00 (UTC)');
    expect(scheduleWords({ every: 'week', interval: 1, time: '07:30' }, '2026-05-26', 'UTC')).toBe('Every week on Tuesday at 07:30 (UTC)');
    expect(scheduleWords({ every: 'week', interval: 2, time: '07:30' }, '2026-05-31', null)).toBe('Every 2 weeks on Sunday at 07:30');
    expect(scheduleWords({ every: 'day', interval: 1, time: '23:59' }, '2026-05-31', 'Europe/Berlin')).toBe('Every day at 23:59 (Europe/Berlin)');
    expect(scheduleWords({ every: 'day', interval: 10, time: '00:00' }, '2026-05-31')).toBe('Every 10 days at 00:00');
    expect(scheduleWords({ every: 'second', interval: 2, time: '00:00' }, '2026-05-31', 'UTC')).toBe('Every 2 seconds');
  });
  it('knows weekdays without a time zone', () => {
    expect(weekday('2026-01-01')).toBe('Thursday');
    expect(weekday('2024-02-29')).toBe('Thursday');
    expect(weekday('2026-02-30')).toBe('');
    expect(weekday('0031-12-12')).toBe('Friday');
  });
  it('explains the short months of a monthly order from the 29th on', () => {
    expect(shortMonthNote(monthly, '2026-05-31')).toBe("In months without a 31st it runs on the month's last day.");
    expect(shortMonthNote(monthly, '2026-05-29')).toBe("In months without a 29th it runs on the month's last day.");
    expect(shortMonthNote(monthly, '2026-05-28')).toBeNull();
    expect(shortMonthNote({ every: 'week' }, '2026-05-31')).toBeNull();
  });
  it('adds months as the server counts them, from the start date every time', () => {
    expect(addMonths('2026-01-31', 1)).toBe('2026-02-28');
    expect(addMonths('2028-01-31', 1)).toBe('2028-02-29');
    expect(addMonths('2026-01-31', 2)).toBe('2026-03-31');
    expect(addMonths('2026-11-30', 3)).toBe('2027-02-28');
  });
  it('reads time fields', () => {
    expect(hhmmOf('09:00')).toBe('09:00');
    expect(hhmmOf('23:59:00')).toBe('23:59');
    for (const bad of ['', '9:00', '24:00', '12:60', 'ab:cd']) expect(hhmmOf(bad)).toBeNull();
  });
});

describe('times in the order\'s time zone', () => {
  it('formats an instant as the clock reads there', () => {
    expect(formatInZone('2026-05-31T03:30:00Z', 'Asia/Kolkata')).toBe('2026-05-31 09:00');
    expect(formatInZone('2026-05-31T03:30:05Z', 'UTC', true)).toBe('2026-05-31 03:30:05');
    expect(formatInZone('2026-03-29T07:00:00Z', 'Europe/Berlin')).toBe('2026-03-29 09:00');
    expect(formatInZone('2026-01-01T00:00:00Z', 'America/New_York')).toBe('2025-12-31 19:00');
    expect(formatInZone(null, 'UTC')).toBe('—');
  });
  it('falls back to this computer\'s clock for a zone it does not know', () => {
    const iso = '2026-05-31T03:30:00Z';
    expect(formatInZone(iso, 'Mars/Olympus')).toBe(fmtDateTime(iso).slice(0, 16));
  });
  it('knows today and the time there', () => {
    const now = new Date('2026-05-30T20:00:00Z');
    expect(todayInZone('Asia/Kolkata', now)).toBe('2026-05-31');
    expect(todayInZone('UTC', now)).toBe('2026-05-30');
    expect(timeInZone('Asia/Kolkata', now)).toBe('01:30');
  });
  it('finds the first payment: the start date unless its time has passed', () => {
    expect(firstRunDate(monthly, '2026-05-31', '2026-05-20', '10:00')).toBe('2026-05-31');
    expect(firstRunDate(monthly, '2026-05-31', '2026-05-31', '08:59')).toBe('2026-05-31');
    expect(firstRunDate(monthly, '2026-05-31', '2026-05-31', '09:00')).toBe('2026-06-30');
    expect(firstRunDate({ every: 'week', interval: 2, time: '09:00' }, '2026-05-31', '2026-05-31', '10:00')).toBe('2026-06-14');
    expect(firstRunDate({ every: 'day', interval: 1, time: '09:00' }, '2026-05-31', '2026-05-31', '10:00')).toBe('2026-06-01');
  });
  it('says the next payment, or why there is none', () => {
    const o = { status: 'active' as const, next_run_at: '2026-05-31T03:30:00Z', time_zone: 'Asia/Kolkata', schedule: monthly };
    expect(nextRunText(o)).toBe('2026-05-31 09:00 (Asia/Kolkata)');
    expect(nextRunText({ ...o, status: 'paused' })).toBe('None while paused');
    expect(nextRunText({ ...o, status: 'cancelled', next_run_at: null })).toBe('—');
    expect(nextRunText({ ...o, schedule: { every: 'second', interval: 2, time: '00:00' }, time_zone: 'UTC' })).toBe('2026-05-31 03:30:00 (UTC)');
  });
});

describe('runs in words', () => {
  const run = (over: Partial<OrderRun>): OrderRun => ({
    due: '2026-05-31', due_at: '2026-05-31T03:30:00Z', status: 'done', attempts: 1, transfer_id: 't1', refusal_code: null, retry_at: null,
    ran_at: '2026-05-31T03:30:01Z', ...over,
  });
  it('a payment made', () => {
    expect(runWords(run({}), 'Asia/Kolkata')).toBe('Paid');
  });
  it('a refusal tried again later that day', () => {
    const r = run({ status: 'retry', transfer_id: null, refusal_code: 'insufficient_funds', retry_at: '2026-05-31T07:30:00Z' });
    expect(runWords(r, 'Asia/Kolkata', new Date('2026-05-31T04:00:00Z')))
      .toBe('Refused: not enough money in the account; it is tried once more at 2026-05-31 13:00 (Asia/Kolkata)');
    expect(runWords(r, 'Asia/Kolkata', new Date('2026-05-31T08:00:00Z')))
      .toBe('Refused: not enough money in the account; it was due to be tried once more at 2026-05-31 13:00 (Asia/Kolkata)');
  });
  it('a date not paid, and why', () => {
    expect(runWords(run({ status: 'skipped', transfer_id: null, refusal_code: 'limit_exceeded' }), 'UTC'))
      .toBe("Not paid: it would have passed the account's daily limit");
    expect(runWords(run({ status: 'skipped', transfer_id: null, refusal_code: 'order_paused' }), 'UTC'))
      .toBe('Not paid: you paused the order before it was tried again');
    expect(refusalWords('account_inactive')).toBe('one of the accounts was frozen or closed');
    expect(refusalWords('no_primary')).toMatch(/^the bank is switching database servers/);
    expect(refusalWords(null)).toBe('refused');
  });
  it('a run held for review, and how a review ended one without paying', () => {
    const held = run({ status: 'held', transfer_id: null, review_id: 'r1' });
    expect(runWords(held, 'UTC')).toBe('Held for review');
    const ended = (code: string) => runWords(run({ status: 'skipped', transfer_id: null, refusal_code: code, review_id: 'r1' }), 'UTC');
    expect(ended('review_rejected')).toBe('Not paid: rejected in review');
    expect(ended('review_cancelled')).toBe('Not paid: you cancelled it while it was held for review');
    expect(ended('review_expired')).toBe('Not paid: not decided in review in time');
  });
  it('a run of an order to a key: sent to the other bank, whose outcome the switch decides', () => {
    const sent = run({ transfer_id: null, interbank_payment_id: 'p1' });
    expect(runWords(sent, 'UTC')).toBe('Sent to the other bank');
    expect(runTone(sent.status)).toBe('ok');
    expect(runWords(run({ interbank_payment_id: null }), 'UTC')).toBe('Paid');
    // Only a done run names a payment; a refused one says why as any other.
    expect(runWords(run({ status: 'skipped', transfer_id: null, interbank_payment_id: null, refusal_code: 'bank_unavailable' }), 'UTC'))
      .toBe('Not paid: the inter-bank network could not be reached');
    expect(refusalWords('liquidity_exhausted')).toBe('the bank could not send more payments to other banks at the time');
    expect(interbankRunText({ status: 'committed', reason: null })).toBe('Paid: the other bank took the payment');
    expect(interbankRunText({ status: 'pending', reason: null })).toBe('Still being settled between the banks: check again later');
    expect(interbankRunText({ status: 'aborted', reason: 'account closed' }))
      .toBe('Not paid: the payment was refused between the banks (account closed). No money left your account');
    expect(interbankRunText({ status: 'aborted', reason: null }))
      .toBe('Not paid: the payment was refused between the banks. No money left your account');
  });
  it('shows a held run apart from paid and refused ones', () => {
    expect((['done', 'held', 'retry', 'skipped'] as const).map(runTone)).toEqual(['ok', 'held', 'error', 'error']);
  });
  it('due dates: the date, or the instant for orders in seconds', () => {
    expect(dueText(run({}), monthly, 'Asia/Kolkata')).toBe('2026-05-31');
    expect(dueText(run({ due: '2026-05-31T03:30:00Z' }), { every: 'second' }, 'UTC')).toBe('2026-05-31 03:30:00');
  });
  it('lists live orders first', () => {
    const list = [{ id: 'a', status: 'cancelled' }, { id: 'b', status: 'active' }, { id: 'c', status: 'ended' }, { id: 'd', status: 'paused' }] as const;
    expect(sortOrders([...list]).map((o) => o.id)).toEqual(['b', 'd', 'a', 'c']);
  });
  it('names whom an order pays', () => {
    expect(orderPayeeName('100000000027', { nickname: 'Rent', holder_name_masked: 'B•• M••••', account_number_masked: '••••0027' }))
      .toBe('Rent (B•• M••••, ••••0027)');
    expect(orderPayeeName('100000000027', undefined)).toBe('account 100000000027');
    expect(orderTargetText({ account_number: '100000000027' })).toBe('account 100000000027');
    expect(orderTargetText({ key: { type: 'phone', value: '+919800000001' } })).toBe('phone key +919800000001');
    expect(orderKeyPayeeName({ type: 'phone', value: '+919800000001' }, { nickname: 'Mum' })).toBe('Mum (Phone key +919800000001)');
    expect(orderKeyPayeeName({ type: 'random', value: '8f3a' }, undefined)).toBe('random key 8f3a');
  });
});

describe('an order to a key at another bank', () => {
  const inr = { number: '100000000009', currency: 'INR' };

  it('offers a typed number, a typed key, then every saved payee by nickname, keys with their bank and key', () => {
    expect(orderPayeeOptions([rent, mum])).toEqual([
      { value: ANOTHER_ACCOUNT, label: 'Another account number' },
      { value: ANOTHER_KEY, label: 'Key at another bank' },
      { value: 'p2', label: 'Mum — A••• F•••••••, Beta Bank, Phone key +919876543210' },
      { value: 'p1', label: 'Rent — B•• M••••, ••••0027' },
    ]);
    expect(orderPayeeOptions([]).map((o) => o.value)).toEqual([ANOTHER_ACCOUNT, ANOTHER_KEY]);
  });
  it('checks whom it pays before anything is looked up', () => {
    const key = (value: string, type: 'phone' | 'email' = 'phone') => ({ key: { type, value } });
    expect(orderTargetProblem(key('+919876543210'), inr)).toBeNull();
    expect(orderTargetProblem(key(' a@b.example ', 'email'), inr)).toBeNull();
    expect(orderTargetProblem(key('  '), inr)).toEqual({ field: 'key', text: 'Enter the key to pay' });
    expect(orderTargetProblem(key('x'.repeat(255)), inr)).toEqual({ field: 'key', text: 'A key has at most 254 characters' });
    expect(orderTargetProblem(key('x'.repeat(254)), inr)).toBeNull();
    expect(orderTargetProblem({ key: { type: 'iban' as 'phone', value: 'x' } }, inr)?.field).toBe('key');
    // Key orders pay in INR only.
    expect(orderTargetProblem(key('+919876543210'), { ...inr, currency: 'USD' })).toEqual({ field: 'from', text: KEY_ERRORS.currency_mismatch });
    // Account numbers as before.
    expect(orderTargetProblem({ account_number: '100000000027' }, inr)).toBeNull();
    expect(orderTargetProblem({ account_number: '100000000027' }, { ...inr, currency: 'USD' })).toBeNull();
    expect(orderTargetProblem({ account_number: '' }, inr)?.text).toBe('Enter the account number to pay');
    expect(orderTargetProblem({ account_number: '12-34' }, inr)?.text).toMatch(/1 to 34 letters or digits/);
    expect(orderTargetProblem({ account_number: '100000000009' }, inr)?.text).toMatch(/cannot pay the account it pays from/);
  });
  it("shares Pay by key's check of a key's value", () => {
    expect(keyValueProblem('+919876543210')).toBeNull();
    expect(keyValueProblem('')).toBe('Enter the key');
    expect(keyValueProblem(' ', 'Enter the key of the person you are paying')).toBe('Enter the key of the person you are paying');
    expect(keyValueProblem('é'.repeat(254))).toBeNull(); // characters, not bytes
    expect(keyValueProblem('é'.repeat(255))).toMatch(/at most 254/);
  });
  it('confirms whom it pays with the bank and the key', () => {
    const to = { key: { type: 'phone' as const, value: '+919876543210' } };
    expect(orderConfirmSentence(to, mum)).toBe('You are paying A••• F•••••••, Beta Bank, account ••••0001, by phone key +919876543210');
    expect(orderConfirmSentence(to, { holder_name_masked: 'A••• F•••••••', account_number_masked: '••••0001' }))
      .toBe('You are paying A••• F•••••••, another bank, account ••••0001, by phone key +919876543210');
    expect(orderConfirmSentence({ account_number: '100000000027' }, rent)).toBe('You are paying B•• M••••, account ••••0027');
  });
  it("words the server's refusals of a key order", () => {
    expect(KEY_ERRORS.same_bank).toMatch(/account at this bank/);
    expect(KEY_ERRORS.currency_mismatch).toMatch(/INR/);
    expect(KEY_ERRORS.not_found).toMatch(/No account at another bank/);
  });
});

describe('an edit sends only what changed', () => {
  const order = { amount: '2500.00', memo: 'rent', schedule: monthly, currency: 'INR', start_at: '2026-05-31', time_zone: 'Asia/Kolkata' };
  const same = { amount: '2500.00', memo: 'rent', every: 'month', interval: '1', time: '09:00' };
  const changeOf = (over: Partial<typeof same>) => {
    const checked = orderChange(order, { ...same, ...over });
    if ('field' in checked) throw new Error(checked.text);
    return checked.change;
  };
  it('sends nothing when nothing changed (the same amount written otherwise too)', () => {
    expect(changeOf({})).toEqual({});
    expect(changeOf({ amount: '2500' })).toEqual({});
    expect(changeOf({ amount: ' 2500.0 ', time: '09:00:00' })).toEqual({});
  });
  it('sends the amount, the memo, or the whole schedule when one of its parts changed', () => {
    expect(changeOf({ amount: '3000.50' })).toEqual({ amount: '3000.50' });
    expect(changeOf({ memo: '' })).toEqual({ memo: '' });
    expect(changeOf({ interval: '2' })).toEqual({ schedule: { every: 'month', interval: 2, time: '09:00' } });
    expect(changeOf({ every: 'week', time: '10:30' })).toEqual({ schedule: { every: 'week', interval: 1, time: '10:30' } });
  });
  it("keeps a test order's own period when it is not changed", () => {
    const fast = { ...order, schedule: { every: 'second' as const, interval: 2, time: '00:00' } };
    expect(orderChange(fast, { ...same, every: 'second', interval: '2', time: '00:00', amount: '1.00' })).toEqual({ change: { amount: '1.00' } });
  });
  it('names the field that is wrong', () => {
    const cases: [Partial<typeof same>, string][] = [
      [{ amount: '0' }, 'amount'], [{ amount: 'abc' }, 'amount'], [{ every: 'year' }, 'every'], [{ interval: '0' }, 'interval'],
      [{ interval: '367' }, 'interval'], [{ time: '24:00' }, 'time'],
    ];
    for (const [over, fieldName] of cases) {
      const checked = orderChange(order, { ...same, ...over });
      expect('field' in checked ? checked.field : null, JSON.stringify(over)).toBe(fieldName);
    }
  });
  it('says what changed', () => {
    expect(changeWords({ amount: '3000.5' }, order)).toBe('amount 3,000.50 INR');
    expect(changeWords({ amount: '3000', schedule: { every: 'week', interval: 2, time: '10:00' }, memo: '' }, order))
      .toBe('amount 3,000.00 INR, schedule every 2 weeks on Sunday at 10:00 (Asia/Kolkata), no memo');
    expect(changeWords({ memo: 'flat' }, order)).toBe('memo "flat"');
  });
});

describe('a new order is checked before it is sent', () => {
  const ok = { amount: '10.00', every: 'month', interval: '1', time: '09:00', start: '2026-05-31', end: '' };
  const today = '2026-05-20';
  it('accepts a good one', () => {
    expect(orderProblem(ok, today)).toBeNull();
    expect(orderProblem({ ...ok, start: today, end: '2026-12-31', interval: '12' }, today)).toBeNull();
  });
  it('names the field that is wrong', () => {
    const cases: [Partial<typeof ok>, string][] = [
      [{ amount: '0' }, 'amount'], [{ amount: '1.001' }, 'amount'], [{ every: 'year' }, 'every'], [{ interval: '0' }, 'interval'],
      [{ interval: '1.5' }, 'interval'], [{ interval: '367' }, 'interval'], [{ time: '25:00' }, 'time'], [{ start: '2026-02-30' }, 'start'],
      [{ start: '2026-05-19' }, 'start'], [{ start: '2027-05-22' }, 'start'], [{ end: '2026-05-30' }, 'end'], [{ end: 'someday' }, 'end'],
    ];
    for (const [change, fieldName] of cases) expect(orderProblem({ ...ok, ...change }, today)?.field, JSON.stringify(change)).toBe(fieldName);
    expect(orderProblem({ ...ok, start: '2026-05-19' }, today)?.text).toBe('The first date cannot be in the past (today is 2026-05-20 in your time zone)');
  });
});

describe('exchange', () => {
  const quote = { rate: '0.02500000', from_amount: '1000.00', from_currency: 'INR', to_amount: '25.00', to_currency: 'USD' };
  it('writes rates without trailing zeros', () => {
    expect(trimRate('0.02500000')).toBe('0.025');
    expect(trimRate('83.50000000')).toBe('83.5');
    expect(trimRate('1.00000000')).toBe('1');
    expect(trimRate('12')).toBe('12');
    expect(rateText({ from: 'USD', to: 'INR', rate: '83.50000000' })).toBe('1 USD = 83.5 INR');
    expect(quoteRateText(quote)).toBe('1 INR = 0.025 USD');
    expect(quoteAmountsText(quote)).toBe('You send 1,000.00 INR; 25.00 USD arrive');
  });
  it('counts down to the quote\'s expiry', () => {
    const now = Date.parse('2026-05-31T10:00:00Z');
    expect(secondsLeft('2026-05-31T10:01:00Z', now)).toBe(60);
    expect(secondsLeft('2026-05-31T10:00:42.900Z', now)).toBe(42);
    expect(secondsLeft('2026-05-31T09:59:59Z', now)).toBe(0);
    expect(secondsLeft('not a date', now)).toBe(0);
    expect([60, 59, 5, 0].map(clockText)).toEqual(['1:00', '0:59', '0:05', '0:00']);
    expect(countdownText(42)).toBe('This rate holds for 0:42');
    expect(countdownText(0)).toMatch(/^This quote has expired: nothing was exchanged/);
  });
  it('checks a rate as the server does', () => {
    for (const good of ['0.012', '83.5', '1', '0.00000001', '999999.99999999']) expect(rateProblem(good), good).toBeNull();
    expect(rateProblem('')).toBe('Enter the rate');
    expect(rateProblem('0')).toBe('The rate must be greater than 0');
    expect(rateProblem('0.123456789')).toBe('At most 8 decimal places');
    expect(rateProblem('1000000')).toBe('The rate must be below 1,000,000');
    expect(rateProblem('1e3')).toMatch(/digits/);
  });
  it('offers the customer\'s accounts in another currency, then another number', () => {
    const acc = (id: string, currency: string, status = 'active') => ({ id, number: `10000000000${id}`, currency, status }) as Pick<Account, 'id' | 'number' | 'currency' | 'status'>;
    const list = [acc('1', 'INR'), acc('2', 'USD'), acc('3', 'INR'), acc('4', 'EUR', 'closed')];
    expect(exchangeTargets(list[0], list)).toEqual([
      { value: '2', label: 'Your account 100000000002 (USD)' },
      { value: 'new', label: 'Another account number' },
    ]);
    expect(exchangeTargets(undefined, list)).toEqual([{ value: 'new', label: 'Another account number' }]);
    const rates: FxRate[] = [{ from: 'INR', to: 'USD', rate: '0.012', set_at: '2026-05-31T00:00:00Z' }];
    expect(rateFor(rates, 'INR', 'USD')?.rate).toBe('0.012');
    expect(rateFor(rates, 'USD', 'INR')).toBeUndefined();
  });
  it('says why there is no quote or no exchange', () => {
    expect(quoteErrorText(problem(409, 'currency_mismatch', 'both accounts are in INR'), 'INR'))
      .toBe('Both accounts are in INR: use Move money for a transfer in one currency.');
    expect(quoteErrorText(problem(404, 'not_found', 'the bank has no USD to EUR rate'), 'USD'))
      .toBe('The bank has no USD to EUR rate at the moment, so it cannot quote this exchange. Ask your branch.');
    expect(quoteErrorText(problem(404, 'not_found', 'no account with number 9'), 'USD')).toBe('No such account');
    expect(quoteErrorText({ kind: 'unreachable', status: 0, code: 'unreachable', detail: '' }, 'INR')).toMatch(/^Cannot reach the server: no quote/);
    expect(exchangeErrorText(problem(409, 'quote_expired'))).toMatch(/^The quote expired before it was used. Nothing was exchanged/);
    expect(exchangeErrorText(problem(409, 'insufficient_funds'))).toBe('Insufficient funds. Nothing was exchanged.');
  });
  it('shows exchange entries in the history', () => {
    expect(counterpartyText({ kind: 'fx_in', counterparty_account_number: null })).toBe('Currency exchange');
  });
});

describe('statement months', () => {
  it('lists months from the opening month to now, newest first, in UTC', () => {
    const months = statementMonths('2025-11-30T23:30:00Z', new Date('2026-02-01T00:10:00Z'));
    expect(months).toEqual([
      { value: '2026-02', label: 'February 2026 (to date)' },
      { value: '2026-01', label: 'January 2026' },
      { value: '2025-12', label: 'December 2025' },
      { value: '2025-11', label: 'November 2025' },
    ]);
  });
  it('has only the current month for an account opened this month', () => {
    expect(statementMonths('2026-05-01T00:00:00Z', new Date('2026-05-31T23:59:59Z'))).toEqual([{ value: '2026-05', label: 'May 2026 (to date)' }]);
  });
  it('keeps the newest when there are very many, and none for no date', () => {
    const many = statementMonths('2000-01-15T00:00:00Z', new Date('2026-05-31T00:00:00Z'), 24);
    expect(many).toHaveLength(24);
    expect(many[23].value).toBe('2024-06');
    expect(statementMonths('', new Date())).toEqual([]);
  });
  it('says what a download saved, for the customer and the branch alike', () => {
    expect(savedStatementText('100000000009', 'April 2026', { bytes: 12_700, path: '/d/statement-100000000009-2026-04.pdf' }))
      .toBe('Saved the statement of 100000000009 for April 2026 (12 KB) to /d/statement-100000000009-2026-04.pdf');
    expect(savedStatementText('1', 'May 2026 (to date)', { bytes: 10, path: 'p' })).toBe('Saved the statement of 1 for May 2026 (to date) (1 KB) to p');
    expect(STATEMENT_ERRORS.not_found).toMatch(/^There is no statement for that month/);
  });
  it('names months', () => {
    expect(monthName('2026-04')).toBe('April 2026');
    expect(monthName('2026-13')).toBe('2026-13');
    expect(utcMonth(new Date('2026-12-31T23:59:59Z'))).toBe('2026-12');
  });
});

describe('standing order notices', () => {
  it('a refusal to be tried again', () => {
    const n = {
      kind: 'standing_order.refused',
      payload: { order_id: 'o1', due: '2026-05-31', code: 'insufficient_funds', amount: '10.00', currency: 'INR', retry_at: '2026-05-31T07:30:00Z' },
    };
    const at = new Date('2026-05-31T07:30:00Z');
    const local = `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, '0')}-${String(at.getDate()).padStart(2, '0')} ${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    expect(notificationText(n)).toBe(`Your standing order of 10.00 INR due 2026-05-31 was refused: not enough money in the account. It is tried once more at ${local}.`);
    expect(notificationCategory(n.kind)).toBe('Money');
  });
  it('a date not paid', () => {
    const n = { kind: 'standing_order.skipped', payload: { order_id: 'o1', due: '2026-05-31', code: 'limit_exceeded', detail: '…', amount: '10.00', currency: 'INR' } };
    expect(notificationText(n))
      .toBe("Your standing order of 10.00 INR due 2026-05-31 was not paid: it would have passed the account's daily limit. The next date runs as planned.");
  });
  it('types a StandingOrder the way the server sends it', () => {
    const o: StandingOrder = {
      id: 'o1', from_account_id: 'a1', to: { account_number: '100000000027' }, amount: '10.00', currency: 'INR', memo: '',
      schedule: monthly, start_at: '2026-05-31', end_at: null, time_zone: 'Asia/Kolkata', status: 'active', next_run_at: '2026-05-31T03:30:00Z',
      created_at: '2026-05-20T10:00:00Z',
    };
    expect(scheduleWords(o.schedule, o.start_at, o.time_zone)).toBe('Every month on the 31st at 09:00 (Asia/Kolkata)');
  });
});
