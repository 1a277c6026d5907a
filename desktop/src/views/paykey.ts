// Pay by key: pay someone at another bank by their alias key (phone, e-mail, national id or
// random key). Look up first: the payee's bank and masked name are shown, and nothing is sent
// before "Confirm payment". One Idempotency-Key per confirmed attempt, reused when that attempt
// is retried, so a retry never pays twice. A pending payment is polled until it is final. The bank
// may hold the payment for a check (202 held_for_review, as Move money's transfers): nothing is
// sent yet, the amount is held, and the customer can cancel it in Reviews.
import { api, toIpcError } from '../ipc';
import { detailIncluded, errorMessage } from '../errors';
import { busy, field, fillSelect, h, label, setResult, showError } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { DirectoryEntry, InterbankPayment, KeyType, Payee, Review } from '../types';
import { heldText, isHeldReview, reviewId } from '../reviews';
import { MAX_MEMO, type AccountStore } from './store';
import type { PayeeStore } from './payees';

export const KEY_TYPES: KeyType[] = ['national_id', 'phone', 'email', 'random'];
export const KEY_HINTS: Record<KeyType, string> = {
  national_id: 'The national id number the payee registered',
  phone: 'In international form, e.g. +919876543210',
  email: 'e.g. name@example.com',
  random: 'The random key the payee gave you',
};
/** A key's value as the server takes it: 1 to 254 characters (once trimmed). */
export const MAX_KEY_CHARS = 254;

/** What is wrong with a key as typed (sent trimmed), or null when fine. `empty` says what to enter. */
export function keyValueProblem(value: string, empty = 'Enter the key'): string | null {
  const v = value.trim();
  if (!v) return empty;
  if ([...v].length > MAX_KEY_CHARS) return `A key has at most ${MAX_KEY_CHARS} characters`;
  return null;
}

/** Pay by key's saved choices: those saved by key. */
export function keyPayeeOptions(list: Payee[]): { value: string; label: string }[] {
  return list
    .filter((p) => !!p.key)
    .slice()
    .sort((a, b) => a.nickname.localeCompare(b.nickname))
    .map((p) => ({ value: p.id, label: `${p.nickname} — ${p.holder_name_masked}, ${p.bank_name ?? p.account_number_masked}` }));
}

/** Poll a pending payment every second for about 30 s. */
export const POLL_MS = 1000;
export const POLL_LIMIT_MS = 30_000;

/** "You are paying A••• F•••••••, Beta Bank, account ••••0001". */
export function payeeSentence(p: DirectoryEntry): string {
  return `You are paying ${p.holder_name_masked}, ${p.bank_name}, account ${p.account_number_masked}`;
}

/** A refusal in plain words, with the server's detail when it says more. */
export function refusalText(err: unknown): string {
  const e = toIpcError(err);
  const plain = errorMessage(e, LOOKUP_MESSAGES);
  const detail = e.detail.trim();
  return detail && e.kind === 'problem' && !plain.includes(detail) && !detailIncluded(e) ? `${plain} (${detail})` : plain;
}

const LOOKUP_MESSAGES = { not_found: 'No account is registered under that key' };

/**
 * Whether the same attempt may be sent again with the same Idempotency-Key: no answer, or the
 * server was busy. A refusal is final: a new attempt gets a new key.
 */
export function isRetryable(err: unknown): boolean {
  const e = toIpcError(err);
  if (e.kind === 'unreachable') return true;
  if (['no_primary', 'idempotency_in_progress', 'rate_limited'].includes(e.code)) return true;
  return e.kind === 'problem' && e.status >= 500 && e.code !== 'bank_unavailable';
}

/** A random UUID (v4) for the Idempotency-Key. */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Follows a pending payment until it is committed or aborted, or `limitMs` has passed (then the
 * last state seen, still pending). Errors while polling are ignored: the next poll tries again.
 */
export async function followPayment(
  first: InterbankPayment,
  get: (id: string) => Promise<InterbankPayment>,
  opts: { everyMs?: number; limitMs?: number; sleep?: (ms: number) => Promise<void>; now?: () => number; onUpdate?: (p: InterbankPayment) => void } = {},
): Promise<InterbankPayment> {
  const every = opts.everyMs ?? POLL_MS;
  const limit = opts.limitMs ?? POLL_LIMIT_MS;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const until = now() + limit;
  let last = first;
  while (last.status === 'pending' && now() < until) {
    await sleep(every);
    try {
      last = await get(first.id);
      opts.onUpdate?.(last);
    } catch { /* try again on the next tick */ }
  }
  return last;
}

export interface PayKeyView extends View {
  /** Fills in a payee saved by key (from the Payees view). */
  chooseKeyPayee(id: string): void;
}

export function payKeyView(store: AccountStore, payees: PayeeStore): PayKeyView {
  let payee: DirectoryEntry | null = null;
  /** The Idempotency-Key of the attempt being confirmed; null when the next confirm is a new attempt. */
  let attemptKey: string | null = null;

  const from = h('select', { id: 'paykey-from', required: true });
  const saved = h('select', { id: 'paykey-saved-payee' });
  const savedField = field('Saved payee', saved, 'Fills in the key of a payee you saved');
  savedField.hidden = true;
  const type = h('select', { id: 'paykey-type' }, KEY_TYPES.map((k) => h('option', { value: k }, label(k))));
  const value = h('input', { id: 'paykey-value', autocomplete: 'off', spellcheck: 'false', required: true, maxlength: MAX_KEY_CHARS });
  const valueField = field('Key', value, KEY_HINTS.national_id);
  const lookup = h('button', { id: 'paykey-lookup', type: 'submit', class: 'primary' }, 'Look up');
  const lookupError = h('p', { id: 'paykey-lookup-error', class: 'error', role: 'alert', hidden: true });
  const lookupForm = h('form', { id: 'paykey-lookup-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'paykey-step1' },
    h('h2', { id: 'paykey-step1' }, '1. Whom to pay'),
    field('From account', from), savedField, field('Key type', type), valueField, lookupError, lookup);

  const payeeText = h('p', { id: 'paykey-payee', class: 'payee', role: 'status' });
  const amount = h('input', { id: 'paykey-amount', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00', required: true });
  const memo = h('input', { id: 'paykey-memo', maxlength: MAX_MEMO, autocomplete: 'off' });
  const confirm = h('button', { id: 'paykey-confirm', type: 'submit', class: 'primary' }, 'Confirm payment');
  const change = h('button', { id: 'paykey-change', type: 'button' }, 'Change payee');
  const error = h('p', { id: 'paykey-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'paykey-result', class: 'result', role: 'status', hidden: true });
  const payForm = h('form', { id: 'paykey-pay-form', class: 'panel form', novalidate: true, hidden: true, 'aria-labelledby': 'paykey-step2' },
    h('h2', { id: 'paykey-step2' }, '2. Amount and confirmation'),
    payeeText,
    field('Amount', amount, 'For example 1250.50'),
    field('Memo (optional)', memo),
    error, result, h('div', { class: 'actions' }, confirm, change));

  const viewError = h('p', { id: 'paykey-view-error', class: 'error', role: 'alert', hidden: true });
  const el = h('section', { 'aria-labelledby': 'paykey-title' },
    h('h1', { id: 'paykey-title' }, 'Pay by key'),
    h('p', { class: 'muted' }, 'Pay someone at another bank with the key they registered: look them up, check whom you are paying, then confirm.'),
    viewError,
    h('div', { class: 'forms-grid' }, lookupForm, payForm));

  store.subscribe(() => fillSelect(from, store.options()));
  payees.subscribe((list) => {
    const options = keyPayeeOptions(list);
    fillSelect(saved, options, 'None: type a key');
    savedField.hidden = options.length === 0;
  });

  /** The payee no longer holds: back to step 1 (nothing was sent). */
  function resetPayee() {
    payee = null;
    attemptKey = null;
    payForm.hidden = true;
    payeeText.textContent = '';
    delete payeeText.dataset.bankId;
    showError(error, null);
  }
  /** A new attempt from here on (the amount, memo or account changed). */
  const newAttempt = () => {
    attemptKey = null;
    // The last answer was about other input: do not leave it next to the new one.
    if (result.dataset.state !== 'pending') setResult(result, null);
    showError(error, null);
  };

  function syncHint() {
    const hint = valueField.querySelector('small');
    if (hint) hint.textContent = KEY_HINTS[type.value as KeyType];
  }
  /** Fills in the key of a saved payee (nothing is looked up before "Look up"). */
  function useSaved(id: string) {
    const p = payees.byId(id);
    if (!p?.key) return;
    saved.value = p.id;
    type.value = p.key.type;
    value.value = p.key.value;
    syncHint();
    resetPayee();
  }
  type.addEventListener('change', () => {
    syncHint();
    saved.value = '';
    resetPayee();
  });
  value.addEventListener('input', () => { saved.value = ''; resetPayee(); });
  saved.addEventListener('change', () => { if (saved.value) useSaved(saved.value); });
  from.addEventListener('change', newAttempt);
  amount.addEventListener('input', newAttempt);
  memo.addEventListener('input', newAttempt);
  change.addEventListener('click', () => { resetPayee(); value.focus(); });

  lookupForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(lookupError, null);
    setResult(result, null);
    resetPayee();
    const key = value.value.trim();
    if (!from.value) { showError(lookupError, 'Choose an account'); from.focus(); return; }
    const keyProblem = keyValueProblem(key, 'Enter the key of the person you are paying');
    if (keyProblem) { showError(lookupError, keyProblem); value.focus(); return; }
    void busy(lookup, async () => {
      try {
        const entry = await api.directoryLookup(type.value as KeyType, key);
        if (value.value.trim() !== key) return; // typed on meanwhile
        payee = entry;
        payeeText.textContent = payeeSentence(entry);
        payeeText.dataset.bankId = entry.bank_id;
        payeeText.dataset.bankName = entry.bank_name;
        payForm.hidden = false;
        amount.focus();
      } catch (err) {
        showError(lookupError, err, LOOKUP_MESSAGES);
        value.focus();
      }
    });
  });

  function showFinal(p: InterbankPayment) {
    const who = `${p.payee.holder_name_masked} at ${p.payee.bank_name}`;
    const attrs = { 'data-payment-id': p.id, 'data-e2e-id': p.e2e_id, 'data-status': p.status };
    if (p.status === 'committed') {
      const after = p.balance_after ? ` New balance: ${formatMoney(p.balance_after, p.currency)}` : '';
      setResult(result, `Paid ${formatMoney(p.amount, p.currency)} to ${who}.${after}`, 'committed',
        { ...attrs, ...(p.balance_after ? { 'data-balance-after': p.balance_after } : {}) });
      amount.value = '';
      memo.value = '';
      store.refresh().catch(() => undefined);
    } else if (p.status === 'aborted') {
      setResult(result, `Not paid: the payment of ${formatMoney(p.amount, p.currency)} to ${who} was refused${p.reason ? ` (${p.reason})` : ''}. No money left your account.`, 'refused', attrs);
      store.refresh().catch(() => undefined);
    } else {
      setResult(result, `Pending: ${formatMoney(p.amount, p.currency)} to ${who} is still being settled between the banks. Your history will show it once it is final.`, 'pending', attrs);
    }
  }

  /** Held for a check: accepted (not to be confirmed again), sent only once a reviewer approves. */
  function showHeld(r: Review) {
    setResult(result, heldText(r), 'held', { 'data-review-id': reviewId(r), 'data-amount': r.amount, 'data-currency': r.currency });
    amount.value = '';
    memo.value = '';
    store.refresh().catch(() => undefined); // the available balance dropped by the held amount
  }

  payForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    const account = store.byId(from.value);
    if (!payee) { showError(error, 'Look up the payee first'); value.focus(); return; }
    if (!account) { showError(error, 'Choose an account'); from.focus(); return; }
    const problem = validateAmount(amount.value);
    if (problem) { showError(error, problem); amount.focus(); return; }
    if (memo.value.length > MAX_MEMO) { showError(error, `Memo must be at most ${MAX_MEMO} characters`); memo.focus(); return; }
    attemptKey ??= newIdempotencyKey();
    const request = {
      from_account_id: account.id, key_type: type.value as KeyType, key_value: value.value.trim(),
      amount: amount.value.trim(), memo: memo.value, idempotency_key: attemptKey,
    };
    void busy(confirm, async () => {
      try {
        const first = await api.interbankPay(request);
        attemptKey = null;
        if (isHeldReview(first)) {
          showHeld(first);
        } else if (first.status === 'pending') {
          showFinal(first);
          const last = await followPayment(first, api.interbankPayment, { onUpdate: (p) => { if (p.status !== 'pending') showFinal(p); } });
          showFinal(last);
        } else {
          showFinal(first);
        }
      } catch (err) {
        if (isRetryable(err)) {
          // Same attempt, same key: "Confirm payment" again cannot pay twice.
          showError(error, `${errorMessage(err)}. Nothing is lost: press "Confirm payment" again to retry this same payment.`);
          error.dataset.retry = 'true';
        } else {
          attemptKey = null;
          delete error.dataset.retry;
          setResult(result, `Not paid: ${refusalText(err)}`, 'refused', { 'data-code': toIpcError(err).code });
        }
      }
    });
  });

  return {
    id: 'paykey',
    label: 'Pay by key',
    el,
    show() {
      store.refresh().then(() => showError(viewError, null), (err) => showError(viewError, err));
      payees.refresh().catch(() => undefined);
    },
    chooseKeyPayee(id: string) {
      useSaved(id);
      lookup.focus();
    },
  };
}
