import { describe, expect, it } from 'vitest';
import { formatAmount, formatMoney, formatSigned, sumAmounts, validateAmount } from './money';

describe('validateAmount', () => {
  it('accepts ordinary amounts', () => {
    for (const ok of ['1', '12.5', '12.50', '0.01', '1250.50', '007', ' 42 ']) {
      expect(validateAmount(ok), ok).toBeNull();
    }
  });
  it('rejects zero', () => {
    expect(validateAmount('0')).toBe('Amount must be greater than 0');
    expect(validateAmount('0.00')).toBe('Amount must be greater than 0');
    expect(validateAmount('000')).toBe('Amount must be greater than 0');
  });
  it('rejects negative amounts', () => {
    expect(validateAmount('-1')).toBe('Amount must be greater than 0');
    expect(validateAmount('-0.50')).toBe('Amount must be greater than 0');
  });
  it('rejects more than 2 decimals', () => {
    expect(validateAmount('0.001')).toBe('At most 2 decimal places');
    expect(validateAmount('12.345')).toBe('At most 2 decimal places');
  });
  it('rejects anything but digits and one dot', () => {
    for (const bad of ['1e5', '1,000', 'abc', '1.2.3', '.5', '5.', '+5', '12 000', 'Infinity', 'NaN', '0x10']) {
      expect(validateAmount(bad), bad).toBe('Use digits only, with an optional decimal point (e.g. 1250.50)');
    }
  });
  it('requires something', () => {
    expect(validateAmount('')).toBe('Enter an amount');
    expect(validateAmount('   ')).toBe('Enter an amount');
  });
  it('enforces the maximum exactly', () => {
    expect(validateAmount('1000000000000')).toBeNull();
    expect(validateAmount('1000000000000.00')).toBeNull();
    expect(validateAmount('999999999999.99')).toBeNull();
    expect(validateAmount('1000000000000.01')).toBe('Amount must be at most 1,000,000,000,000');
    expect(validateAmount('1000000000001')).toBe('Amount must be at most 1,000,000,000,000');
    expect(validateAmount('99999999999999999999999')).toBe('Amount must be at most 1,000,000,000,000');
  });
});

describe('formatMoney', () => {
  it('pads to two decimals and appends the currency', () => {
    expect(formatMoney('12.5', 'INR')).toBe('12.50 INR');
    expect(formatMoney('12', 'USD')).toBe('12.00 USD');
    expect(formatMoney('0', 'EUR')).toBe('0.00 EUR');
  });
  it('groups thousands', () => {
    expect(formatMoney('1250.50', 'INR')).toBe('1,250.50 INR');
    expect(formatMoney('1000000000000', 'INR')).toBe('1,000,000,000,000.00 INR');
    expect(formatMoney('999.99', 'INR')).toBe('999.99 INR');
    expect(formatMoney('100000', 'INR')).toBe('100,000.00 INR');
  });
  it('handles signs and odd precision without floating point', () => {
    expect(formatMoney('-1250.5', 'INR')).toBe('-1,250.50 INR');
    expect(formatMoney('-0.00', 'INR')).toBe('0.00 INR');
    expect(formatAmount('1.500')).toBe('1.50');
    expect(formatAmount('0.10000000000000001')).toBe('0.10000000000000001');
    expect(formatAmount('00012.3')).toBe('12.30');
    expect(formatAmount(null)).toBe('—');
    expect(formatAmount('n/a')).toBe('n/a');
  });
  it('formats signed amounts', () => {
    expect(formatSigned('100', 'INR', true)).toBe('+100.00 INR');
    expect(formatSigned('2500.5', 'USD', false)).toBe('-2,500.50 USD');
  });
});

describe('sumAmounts', () => {
  it('adds exactly', () => {
    expect(sumAmounts(['0.10', '0.20'])).toBe('0.30');
    expect(sumAmounts(['1000000000000', '0.01'])).toBe('1000000000000.01');
    expect(sumAmounts([])).toBe('0.00');
    expect(sumAmounts(['5', '-7.5'])).toBe('-2.50');
  });
});
