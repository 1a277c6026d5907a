import { describe, expect, it } from 'vitest';
import { changeText, compareAmounts, leftToday, limitErrorText, newLimitProblem, pendingText, usedPercent } from './views/limits';
import { ownerCandidates } from './views/admin-accounts';
import { errorMessage, limitExceededText } from './errors';
import { refusalText } from './views/paykey';
import { fmtDateTime } from './dom';
import { localMinute, notificationCategory, notificationText } from './notify-text';
import type { Limits } from './types';

function limits(over: Partial<Limits> = {}): Limits {
  return {
    account_id: 'a1', currency: 'INR', daily_transfer_limit: '1000.00', bank_default: '500000.00', used_today: '250.00',
    time_zone: 'UTC', pending_raise: null, ...over,
  };
}
const problem = (status: number, code: string, detail = '') => ({ kind: 'problem', status, code, detail, retry_after_s: null });
const DETAIL = 'account 100000000009: 100.01 INR would pass its daily limit of 1350.00 INR (1250.00 used today)';

describe('daily limit figures', () => {
  it('says what is left today, never below zero', () => {
    expect(leftToday(limits())).toBe('750.00');
    expect(leftToday(limits({ used_today: '1000.00' }))).toBe('0.00');
    // Lowered below what was already sent today.
    expect(leftToday(limits({ daily_transfer_limit: '100.00' }))).toBe('0.00');
  });
  it('fills the bar by the share used, up to 100 %', () => {
    expect(usedPercent(limits())).toBe(25);
    expect(usedPercent(limits({ used_today: '0.00' }))).toBe(0);
    expect(usedPercent(limits({ used_today: '999.99' }))).toBe(99);
    expect(usedPercent(limits({ daily_transfer_limit: '100.00' }))).toBe(100);
    expect(usedPercent(limits({ daily_transfer_limit: '0.00', used_today: '0.00' }))).toBe(0);
  });
  it('compares amounts exactly', () => {
    expect(compareAmounts('500000.00', '500000')).toBe(0);
    expect(compareAmounts('0.1', '0.09')).toBe(1);
    expect(compareAmounts('99999999999.99', '100000000000.00')).toBe(-1);
  });
  it('shows a waiting raise with its date', () => {
    expect(pendingText(limits())).toBeNull();
    const at = '2026-12-02T10:00:00Z';
    expect(pendingText(limits({ pending_raise: { daily_transfer_limit: '5000.00', effective_at: at } })))
      .toBe(`Raise to 5,000.00 INR asked for: it counts from ${fmtDateTime(at)} (24 hours after it was asked for). Until then the limit above applies.`);
  });
  it('checks a new limit before sending it', () => {
    expect(newLimitProblem('5000')).toBeNull();
    expect(newLimitProblem(' 350.50 ')).toBeNull();
    expect(newLimitProblem('')).toBe('Enter the new daily limit');
    expect(newLimitProblem('0')).toBe('The limit must be greater than 0');
    expect(newLimitProblem('1.001')).toBe('At most 2 decimal places');
    expect(newLimitProblem('-5')).toBe('The limit must be greater than 0');
  });
});

describe('changing a limit', () => {
  it('a lower limit counts at once', () => {
    expect(changeText(limits({ daily_transfer_limit: '350.00' }), '350.00', false))
      .toEqual({ state: 'now', text: 'Your daily limit is now 350.00 INR. It counts at once.' });
  });
  it("a customer's raise waits 24 h", () => {
    const at = '2026-12-02T10:00:00Z';
    const after = limits({ daily_transfer_limit: '350.00', pending_raise: { daily_transfer_limit: '500000.00', effective_at: at } });
    const { state, text } = changeText(after, '500000', false);
    expect(state).toBe('pending');
    expect(text).toBe(`Asked for: your daily limit rises to 500,000.00 INR from ${fmtDateTime(at)}, 24 hours from now. `
      + 'Until then it stays 350.00 INR. Every owner of the account is told.');
  });
  it('the branch sets it at once', () => {
    expect(changeText(limits({ daily_transfer_limit: '750000.00' }), '750000.00', true, '100000000009'))
      .toEqual({ state: 'now', text: 'The daily limit of account 100000000009 is now 750,000.00 INR. It counts at once.' });
  });
  it('above the bank default: only the branch', () => {
    expect(limitErrorText(problem(403, 'forbidden', "a customer may raise the limit up to the bank's default of 500000.00 INR; ask the branch for more"), '500000.00', 'INR'))
      .toBe("Only your branch can set a limit above the bank's default of 500,000.00 INR. Ask your branch, or choose at most 500,000.00 INR.");
    expect(limitErrorText(problem(403, 'forbidden', "a customer may raise the limit up to the bank's default of 500000.00 INR; ask the branch for more"), null, null))
      .toBe("Only your branch can set a limit above the bank's default of 500000.00 INR. Ask your branch, or choose at most 500000.00 INR.");
    expect(limitErrorText(problem(404, 'not_found', 'not found'), '1.00', 'INR')).toBe('No such account');
    expect(limitErrorText(problem(400, 'validation_failed', 'daily_transfer_limit: bad'), '1.00', 'INR')).toBe('Please check your input: daily_transfer_limit: bad');
  });
});

describe('limit_exceeded', () => {
  const expected = 'Over the daily limit: 100.01 INR would pass the daily limit of 1,350.00 INR of account 100000000009 '
    + '(1,250.00 INR already sent today, so at most 100.00 INR can still go today). Nothing was moved.';
  it('says the figures of the detail in plain words', () => {
    expect(limitExceededText(DETAIL)).toBe(expected);
    expect(errorMessage(problem(409, 'limit_exceeded', DETAIL))).toBe(expected);
    expect(limitExceededText('account 1: 5.00 EUR would pass its daily limit of 300.00 EUR (300.00 used today)'))
      .toBe('Over the daily limit: 5.00 EUR would pass the daily limit of 300.00 EUR of account 1 (300.00 EUR already sent today, so nothing more can go today). Nothing was moved.');
  });
  it('keeps a detail it cannot read', () => {
    expect(limitExceededText('daily limit reached')).toBe('Over the daily limit: daily limit reached. Nothing was moved.');
    expect(limitExceededText('')).toBe("This would pass the account's daily limit. Nothing was moved.");
  });
  it('Pay by key does not repeat the detail', () => {
    expect(refusalText(problem(409, 'limit_exceeded', DETAIL))).toBe(expected);
  });
});

describe('new notification kinds', () => {
  it('account.opened and account.owner_added', () => {
    expect(notificationText({ kind: 'account.opened', payload: { account: '••••0027', kind: 'savings', currency: 'INR', joint: true } }))
      .toBe('Your new joint savings account ••••0027 (INR) is open. Not expected? Call us now.');
    expect(notificationText({ kind: 'account.opened', payload: { account: '••••0027', kind: 'current', currency: 'EUR', joint: false } }))
      .toBe('Your new current account ••••0027 (EUR) is open. Not expected? Call us now.');
    expect(notificationText({ kind: 'account.owner_added', payload: { account: '••••0027', owner: 'Bob Mehta' } }))
      .toBe('Bob Mehta is now an owner of account ••••0027 and can spend from it. Not expected? Call us now.');
    expect(notificationText({ kind: 'account.owner_added', payload: null })).toBe('Someone is now an owner of your account and can spend from it. Not expected? Call us now.');
  });
  it('limit.raised and key.registered', () => {
    const at = '2026-12-02T10:00:00Z';
    expect(notificationText({ kind: 'limit.raised', payload: { account: '••••0009', limit: '5000.00', currency: 'INR', effective_at: at } }))
      .toBe(`The daily limit of account ••••0009 rises to 5,000.00 INR from ${localMinute(at)}. Not you? Call us now.`);
    expect(notificationText({ kind: 'limit.raised', payload: {} })).toBe('The daily limit of your account is being raised. Not you? Call us now.');
    expect(notificationText({ kind: 'key.registered', payload: { key_type: 'phone', key: '+919876543210', account: '••••0009' } }))
      .toBe('The phone key +919876543210 now receives payments to account ••••0009. Not you? Call us now.');
  });
  it('formats the minute in local time', () => {
    expect(localMinute('2026-12-02T10:00:00Z')).toMatch(/^2026-12-0[12] \d\d:\d\d$/);
    expect(localMinute('soon')).toBe('soon');
  });
  it('files them under security or account', () => {
    expect(notificationCategory('limit.raised')).toBe('Security');
    expect(notificationCategory('account.owner_added')).toBe('Security');
    expect(notificationCategory('key.registered')).toBe('Security');
    expect(notificationCategory('account.opened')).toBe('Account');
  });
});

describe('adding an owner', () => {
  it('offers only customers who are not owners yet', () => {
    const a = { owners: [{ id: 'u1', full_name: 'Alice Fernandes' }] };
    expect(ownerCandidates(a, [
      { id: 'u1', full_name: 'Alice Fernandes', username: 'alice' },
      { id: 'u2', full_name: 'Bob Mehta', username: 'bob' },
    ])).toEqual([{ value: 'u2', label: 'Bob Mehta (bob)' }]);
  });
});
