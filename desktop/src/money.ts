// Money is carried as decimal strings ("1250.50"), never as floating point numbers.

export const MAX_AMOUNT_CENTS = 100_000_000_000_000n; // 1000000000000.00

/** Checks an amount typed by the user. Returns a message for the user, or null when valid. */
export function validateAmount(input: string): string | null {
  const s = input.trim();
  if (s === '') return 'Enter an amount';
  if (/^-\s*\d+(\.\d+)?$/.test(s)) return 'Amount must be greater than 0';
  if (!/^\d+(\.\d+)?$/.test(s)) return 'Use digits only, with an optional decimal point (e.g. 1250.50)';
  const [int, frac = ''] = s.split('.');
  if (frac.length > 2) return 'At most 2 decimal places';
  const cents = BigInt(int) * 100n + BigInt(frac.padEnd(2, '0'));
  if (cents <= 0n) return 'Amount must be greater than 0';
  if (cents > MAX_AMOUNT_CENTS) return 'Amount must be at most 1,000,000,000,000';
  return null;
}

/** Groups the integer part with commas: "1234567" -> "1,234,567". */
function group(int: string): string {
  const digits = int.replace(/^0+(?=\d)/, '');
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Formats a decimal string with its currency: ("1250.5", "INR") -> "1,250.50 INR". */
export function formatAmount(amount: string | number | null | undefined): string {
  if (amount === null || amount === undefined) return '—';
  const s = String(amount).trim();
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return s;
  const [, sign, int, fracRaw = ''] = m;
  let frac = fracRaw.padEnd(2, '0');
  // Keep extra precision only when it carries information ("1.005" stays, "1.500" -> "1.50").
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  const isZero = /^0*$/.test(int) && /^0*$/.test(frac);
  const neg = sign === '-' && !isZero ? '-' : '';
  return `${neg}${group(int)}.${frac}`;
}

export function formatMoney(amount: string | number | null | undefined, currency: string): string {
  return `${formatAmount(amount)} ${currency}`.trim();
}

/** "+100.00 INR" for money coming in, "-100.00 INR" for money going out. */
export function formatSigned(amount: string, currency: string, credit: boolean): string {
  return `${credit ? '+' : '-'}${formatMoney(amount.replace(/^[+-]/, ''), currency)}`;
}

/** Sums decimal strings exactly (for totals); returns a decimal string with 2 places. */
export function sumAmounts(amounts: string[]): string {
  let cents = 0n;
  for (const a of amounts) {
    const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(a.trim());
    if (!m) continue;
    const v = BigInt(m[2]) * 100n + BigInt((m[3] ?? '').padEnd(2, '0'));
    cents += m[1] ? -v : v;
  }
  const neg = cents < 0n;
  const abs = neg ? -cents : cents;
  return `${neg ? '-' : ''}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}
