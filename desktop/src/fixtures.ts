// Payees the unit tests share (a saved account and a saved key at another bank); only tests import this.
import type { Payee } from './types';

export function payee(over: Partial<Payee> & Pick<Payee, 'id' | 'nickname'>): Payee {
  return {
    bank_id: null, bank_name: null, holder_name_masked: 'B•• M••••', account_number_masked: '••••0027',
    account_number: '100000000027', key: null, created_at: '2026-12-01T10:00:00Z', ...over,
  };
}

export const rent = payee({ id: 'p1', nickname: 'Rent' });
export const mum = payee({
  id: 'p2', nickname: 'Mum', account_number: null, key: { type: 'phone', value: '+919876543210' },
  bank_id: '00000002', bank_name: 'Beta Bank', holder_name_masked: 'A••• F•••••••', account_number_masked: '••••0001',
});
