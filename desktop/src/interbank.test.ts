import { describe, expect, it } from 'vitest';
import { errorMessage } from './errors';
import { followPayment, isRetryable, newIdempotencyKey, payeeSentence, refusalText } from './views/paykey';
import { counterpartyText } from './views/history';
import { keyStatusText } from './views/keys';
import { availableToSend } from './views/admin-interbank';
import type { InterbankPayment } from './types';

const payee = { bank_id: '00000002', bank_name: 'Beta Bank', holder_name_masked: 'A••• F•••••••', account_number_masked: '••••0001' };
const problem = (status: number, code: string, detail = '') => ({ kind: 'problem', status, code, detail, retry_after_s: null });

function payment(status: InterbankPayment['status']): InterbankPayment {
  return {
    id: 'p1', e2e_id: 'E00000001202611300000abcdefghijk', status, from_account_id: 'a1', amount: '10.00', currency: 'INR',
    payee, memo: '', created_at: '2026-11-30T00:00:00Z', balance_after: status === 'committed' ? '90.00' : null, reason: null,
  };
}

describe('pay by key', () => {
  it('names the payee before paying', () => {
    expect(payeeSentence(payee)).toBe('You are paying A••• F•••••••, Beta Bank, account ••••0001');
  });
  it('says why a payment was refused, with the detail when it adds something', () => {
    expect(refusalText(problem(409, 'insufficient_funds'))).toBe('Insufficient funds');
    expect(refusalText(problem(409, 'payee_refused', 'the account is closed'))).toBe("The payee's bank refused the payment (the account is closed)");
    expect(refusalText(problem(404, 'not_found'))).toBe('No account is registered under that key');
    expect(errorMessage(problem(503, 'bank_unavailable', 'switch down'))).toMatch(/Nothing was sent/);
  });
  it('retries with the same key only when no answer is final', () => {
    expect(isRetryable({ kind: 'unreachable', status: 0, code: 'unreachable', detail: '', retry_after_s: null })).toBe(true);
    expect(isRetryable(problem(503, 'no_primary'))).toBe(true);
    expect(isRetryable(problem(409, 'idempotency_in_progress'))).toBe(true);
    expect(isRetryable(problem(409, 'insufficient_funds'))).toBe(false);
    expect(isRetryable(problem(409, 'payee_refused'))).toBe(false);
    expect(isRetryable(problem(503, 'bank_unavailable'))).toBe(false);
  });
  it('makes UUIDs for the Idempotency-Key, a new one each time', () => {
    const a = newIdempotencyKey();
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newIdempotencyKey()).not.toBe(a);
  });
  it('follows a pending payment until it is final', async () => {
    let clock = 0;
    const answers = [payment('pending'), payment('pending'), payment('committed')];
    const seen: string[] = [];
    const last = await followPayment(payment('pending'), async () => answers.shift()!, {
      sleep: async (ms) => { clock += ms; }, now: () => clock, onUpdate: (p) => seen.push(p.status),
    });
    expect(last.status).toBe('committed');
    expect(seen).toEqual(['pending', 'pending', 'committed']);
    expect(clock).toBe(3000);
  });
  it('gives up after about 30 s, still pending, and survives failed polls', async () => {
    let clock = 0;
    let calls = 0;
    const last = await followPayment(payment('pending'), async () => { calls++; if (calls % 2) throw new Error('blip'); return payment('pending'); }, {
      sleep: async (ms) => { clock += ms; }, now: () => clock,
    });
    expect(last.status).toBe('pending');
    expect(calls).toBe(30);
  });
  it('does not poll a payment that is already final', async () => {
    let calls = 0;
    const last = await followPayment(payment('aborted'), async () => { calls++; return payment('committed'); });
    expect(last.status).toBe('aborted');
    expect(calls).toBe(0);
  });
});

describe('history and keys', () => {
  it('names the other bank of an inter-bank entry', () => {
    expect(counterpartyText({ kind: 'interbank_out', counterparty_account_number: null, counterparty_bank_id: '00000002' })).toBe('to bank 00000002');
    expect(counterpartyText({ kind: 'interbank_in', counterparty_account_number: null, counterparty_bank_id: '00000001' })).toBe('from bank 00000001');
    expect(counterpartyText({ kind: 'transfer_out', counterparty_account_number: '1000000002' })).toBe('1000000002');
    expect(counterpartyText({ kind: 'deposit', counterparty_account_number: null })).toBe('Cash');
  });
  it('shows a key waiting for its code', () => {
    expect(keyStatusText({ status: 'active', type: 'random' })).toBe('Active');
    expect(keyStatusText({ status: 'pending_verification', type: 'email' })).toMatch(/address/);
    expect(keyStatusText({ status: 'pending_verification', type: 'phone' })).toMatch(/phone/);
  });
  it("works out what the bank may still send", () => {
    expect(availableToSend({ bank_id: '00000001', prefunded: '100000.00', position: '-10.00', net_debit_cap: '0.00', pending_out: '5.50' })).toBe('99984.50');
  });
});
