import { describe, expect, it } from 'vitest';
import { arrivals, notificationCategory, notificationText } from './notify-text';
import type { AppNotification } from './types';

const money = (extra: Record<string, unknown> = {}) => ({
  transfer_id: 't1', entry_kind: 'withdrawal', account_id: 'a1', account: '••••0009', counterparty: null,
  amount: '12.50', currency: 'INR', balance_after: '41737.00', ...extra,
});

describe('notificationText', () => {
  it('money.debit, cash and to another account', () => {
    expect(notificationText({ kind: 'money.debit', payload: money() })).toBe('12.50 INR debited from ••••0009 — balance 41,737.00 INR');
    expect(notificationText({ kind: 'money.debit', payload: money({ entry_kind: 'transfer_out', counterparty: '••••0018' }) }))
      .toBe('12.50 INR debited from ••••0009 to ••••0018 — balance 41,737.00 INR');
  });
  it('money.credit, cash and from another account', () => {
    expect(notificationText({ kind: 'money.credit', payload: money({ entry_kind: 'deposit', amount: '1000', balance_after: '1250.5' }) }))
      .toBe('1,000.00 INR credited to ••••0009 — balance 1,250.50 INR');
    expect(notificationText({ kind: 'money.credit', payload: money({ entry_kind: 'transfer_in', counterparty: '••••0018', currency: 'USD' }) }))
      .toBe('12.50 USD credited to ••••0009 from ••••0018 — balance 41,737.00 USD');
  });
  it('balance.low', () => {
    expect(notificationText({ kind: 'balance.low', payload: money({ threshold: '1000.00', balance_after: '950.00' }) }))
      .toBe('Balance of ••••0009 fell below 1,000.00 INR — now 950.00 INR');
  });
  it('security.new_device', () => {
    expect(notificationText({ kind: 'security.new_device', payload: { client_addr: '127.0.0.1', at: '2025-11-25T10:00:00Z' } }))
      .toBe('New sign-in from 127.0.0.1');
    expect(notificationText({ kind: 'security.new_device', payload: { client_addr: '10.0.0.7/32' } })).toBe('New sign-in from 10.0.0.7');
    expect(notificationText({ kind: 'security.new_device', payload: { client_addr: null } })).toBe('New sign-in to your account');
  });
  it('security.mfa_enrolled and security.mfa_reset', () => {
    expect(notificationText({ kind: 'security.mfa_enrolled', payload: {} })).toBe('A new authenticator app was set up for your sign-in');
    expect(notificationText({ kind: 'security.mfa_reset', payload: {} })).toBe('Your two-step sign-in was reset by the bank');
  });
  it('account.status', () => {
    const p = (from: string, to: string) => ({ account_id: 'a1', account: '••••0009', from, to });
    expect(notificationText({ kind: 'account.status', payload: p('active', 'frozen') })).toBe('Account ••••0009 is now frozen');
    expect(notificationText({ kind: 'account.status', payload: p('frozen', 'active') })).toBe('Account ••••0009 is now active again');
    expect(notificationText({ kind: 'account.status', payload: p('active', 'closed') })).toBe('Account ••••0009 is now closed');
  });
  it('survives unknown kinds and missing payloads', () => {
    expect(notificationText({ kind: 'promo.offer', payload: {} })).toBe('Notification: promo.offer');
    expect(notificationText({ kind: 'money.debit', payload: null })).toBe('— debited from your account — balance —');
    expect(notificationText({ kind: 'account.status', payload: null })).toBe('The status of your account changed');
    expect(notificationText({ kind: 'account.status', payload: { to: 'frozen' } })).toBe('Your account is now frozen');
  });
  it('tells a payer of a payment to another bank that was not made', () => {
    const text = notificationText({ kind: 'interbank.aborted', payload: { amount: '5.00', currency: 'INR', to: 'random key', reason: 'liquidity_exhausted' } });
    expect(text).toMatch(/^Your payment of 5\.00 INR to a random key at another bank was not made \(.+\): nothing left your account\.$/);
    expect(notificationCategory('interbank.aborted')).toBe('Money');
  });
  it('categorises kinds', () => {
    expect(notificationCategory('money.debit')).toBe('Money');
    expect(notificationCategory('balance.low')).toBe('Money');
    expect(notificationCategory('security.mfa_reset')).toBe('Security');
    expect(notificationCategory('account.status')).toBe('Account');
  });
});

describe('arrivals', () => {
  const n = (id: string, read = false): AppNotification => ({ id, kind: 'security.mfa_reset', critical: true, payload: {}, created_at: '2025-01-01T00:00:00Z', read_at: read ? '2025-01-01T00:00:01Z' : null });
  it('records the first poll without announcing it, then announces new unread ones oldest first', () => {
    const seen = new Set<string>();
    expect(arrivals(seen, [n('b'), n('a')], true)).toEqual([]);
    expect(arrivals(seen, [n('b'), n('a')], false)).toEqual([]);
    expect(arrivals(seen, [n('d'), n('c'), n('b'), n('a')], false).map((x) => x.id)).toEqual(['c', 'd']);
    expect(arrivals(seen, [n('e', true), n('d')], false)).toEqual([]);
    expect(seen.has('e')).toBe(true);
  });
});
