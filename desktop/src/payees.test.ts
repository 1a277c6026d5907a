import { describe, expect, it } from 'vitest';
import {
  ANOTHER_ACCOUNT, PayeeStore, bankName, confirmSentence, lookupErrorText, nicknameProblem, payeeRoute, rateLimitText, savedText,
  transferPayeeOptions,
} from './views/payees';
import { keyPayeeOptions } from './views/paykey';
import { payeeName } from './views/move';
import { notificationCategory, notificationText } from './notify-text';
import { mum, payee, rent } from './fixtures';
const alice = payee({ id: 'p3', nickname: 'Alice', holder_name_masked: 'A•••• F••••••••', account_number_masked: '••••0001', account_number: '100000000001' });
const problem = (status: number, code: string, detail = '', retry: number | null = null) => ({ kind: 'problem', status, code, detail, retry_after_s: retry });
const offline = { kind: 'unreachable', status: 0, code: 'unreachable', detail: 'cannot connect to the server', retry_after_s: null };

describe('confirmation of payee', () => {
  it('names whom the money goes to, masked, before anything is sent', () => {
    expect(confirmSentence({ holder_name_masked: 'B•• M••••', account_number_masked: '••••0027' })).toBe('You are paying B•• M••••, account ••••0027');
    expect(confirmSentence(rent)).toBe('You are paying B•• M••••, account ••••0027');
  });
  it('says whom a transfer went to: the nickname of a saved payee, else the masked name', () => {
    expect(payeeName({ payee: rent, saved: rent })).toBe('Rent (B•• M••••, ••••0027)');
    expect(payeeName({ payee: { holder_name_masked: 'C•••• D••••••', account_number_masked: '••••0042' }, saved: null })).toBe('C•••• D•••••• (••••0042)');
  });
  it('offline, a new account number cannot be confirmed but saved payees can still be paid', () => {
    const text = lookupErrorText(offline);
    expect(text).toMatch(/cannot be confirmed/);
    expect(text).toMatch(/offline/);
    expect(text).toMatch(/Saved payees can still be paid offline/);
  });
  it('explains a refused look-up', () => {
    expect(lookupErrorText(problem(404, 'not_found', 'no such account'))).toBe('No such account');
    expect(lookupErrorText(problem(429, 'rate_limited', 'too many account look-ups', 570)))
      .toBe('Too many account look-ups: for your security they are limited. Try again in 9 min 30 s; saved payees need no look-up.');
    expect(rateLimitText(problem(429, 'rate_limited'))).toBe('Too many account look-ups: for your security they are limited. Try again later');
    expect(lookupErrorText({ kind: 'invalid', status: 0, code: 'validation_failed', detail: 'an account number is 1 to 34 letters or digits', retry_after_s: null }))
      .toBe('Please check your input: an account number is 1 to 34 letters or digits');
  });
});

describe('payee lists', () => {
  it('offers another account number first, then the account payees by nickname', () => {
    expect(transferPayeeOptions([rent, mum, alice])).toEqual([
      { value: ANOTHER_ACCOUNT, label: 'Another account number' },
      { value: 'p3', label: 'Alice — A•••• F••••••••, ••••0001' },
      { value: 'p1', label: 'Rent — B•• M••••, ••••0027' },
    ]);
    expect(transferPayeeOptions([])).toEqual([{ value: ANOTHER_ACCOUNT, label: 'Another account number' }]);
  });
  it('offers the key payees in Pay by key', () => {
    expect(keyPayeeOptions([rent, mum, alice])).toEqual([{ value: 'p2', label: 'Mum — A••• F•••••••, Beta Bank' }]);
  });
  it('says what was saved', () => {
    expect(savedText(rent)).toBe('Saved B•• M••••, account ••••0027 as Rent');
    expect(savedText(rent, true)).toBe('B•• M••••, account ••••0027 was already saved as Rent');
    expect(savedText(mum)).toBe('Saved A••• F•••••••, account ••••0001 at Beta Bank as Mum');
  });
  it('shows how and where a payee is paid', () => {
    expect(payeeRoute(rent)).toBe('Account number');
    expect(payeeRoute(mum)).toBe('Phone key +919876543210');
    expect(payeeRoute({ key: { type: 'random', value: '8f3a' } })).toBe('Random key 8f3a');
    expect(payeeRoute({ key: { type: 'national_id', value: 'X1' } })).toBe('National id key X1');
    expect(bankName(rent)).toBe('This bank');
    expect(bankName({ ...rent, bank_name: 'FlexiBank North' })).toBe('FlexiBank North');
    expect(bankName(mum)).toBe('Beta Bank');
  });
  it('checks nicknames as the server does', () => {
    expect(nicknameProblem('Rent')).toBeNull();
    expect(nicknameProblem('  Rent  ')).toBeNull(); // sent trimmed
    expect(nicknameProblem('é'.repeat(64))).toBeNull();
    expect(nicknameProblem('')).toMatch(/Enter a nickname/);
    expect(nicknameProblem('   ')).toMatch(/Enter a nickname/);
    expect(nicknameProblem('x'.repeat(65))).toMatch(/at most 64/);
    expect(nicknameProblem('a\tb')).toMatch(/control/);
  });
  it('keeps the list and finds a payee by id or saved number', () => {
    const store = new PayeeStore();
    const seen: number[] = [];
    store.subscribe((list) => seen.push(list.length));
    expect(seen).toEqual([]); // nothing loaded yet
    store.set([rent, mum]);
    expect(seen).toEqual([2]);
    expect(store.byId('p2')).toBe(mum);
    expect(store.byAccountNumber('100000000027')).toBe(rent);
    expect(store.byAccountNumber('100000000099')).toBeUndefined();
    expect(store.byKey({ type: 'phone', value: '+919876543210' })).toBe(mum);
    expect(store.byKey({ type: 'email', value: '+919876543210' })).toBeUndefined();
    const late: number[] = [];
    store.subscribe((list) => late.push(list.length));
    expect(late).toEqual([2]); // a late subscriber gets the loaded list at once
  });
});

describe('payee notifications', () => {
  it('names the new payee in the security notice', () => {
    const n = { kind: 'payee.added', payload: { nickname: 'Rent', holder: 'B•• M••••', account: '••••0027' } };
    expect(notificationText(n)).toBe('New payee Rent (B•• M••••, account ••••0027) was added to your account. Not you? Call us now.');
    expect(notificationCategory('payee.added')).toBe('Security');
  });
});
