// Branch admin: cash deposits and withdrawals at the counter for any branch account.
import { api } from '../ipc';
import { busy, clear, field, h, label, setResult, showError } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { Account } from '../types';
import { MAX_MEMO } from './store';

/** Finds a branch account by its exact number (admin_accounts searches by number or owner). */
export async function resolveAccount(number: string): Promise<Account | null> {
  const page = await api.adminAccounts({ query: number });
  return page.items.find((a) => a.number === number) ?? null;
}

export function tellerView(): View {
  let chosen: Account | null = null;
  let searchTimer: number | null = null;
  let searchGen = 0;

  const kind = h('select', { id: 'teller-kind' }, h('option', { value: 'deposit' }, 'Deposit (cash in)'), h('option', { value: 'withdrawal' }, 'Withdrawal (cash out)'));
  const account = h('input', { id: 'teller-account', autocomplete: 'off', spellcheck: 'false', placeholder: 'Account number, or type a name to search', 'aria-describedby': 'teller-account-info', 'aria-controls': 'teller-matches' });
  const matches = h('ul', { id: 'teller-matches', class: 'matches', 'aria-label': 'Matching accounts' });
  const info = h('p', { id: 'teller-account-info', class: 'muted small', 'aria-live': 'polite' });
  const amount = h('input', { id: 'teller-amount', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const memo = h('input', { id: 'teller-memo', maxlength: MAX_MEMO, autocomplete: 'off' });
  const submit = h('button', { id: 'teller-submit', type: 'submit', class: 'primary' }, 'Post');
  const error = h('p', { id: 'teller-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'teller-result', class: 'result', role: 'status', hidden: true });
  const form = h('form', { id: 'teller-form', class: 'panel form narrow', novalidate: true },
    field('Transaction', kind), field('Account', account), matches, info,
    field('Amount', amount, 'For example 1250.50'), field('Memo (optional)', memo),
    error, result, submit);

  const el = h('section', { 'aria-labelledby': 'teller-title' }, h('h1', { id: 'teller-title' }, 'Teller'), form);

  function describe(a: Account): string {
    return `${a.number} · ${a.owners.map((o) => o.full_name).join(', ')} · ${label(a.kind)} · ${formatMoney(a.balance, a.currency)} · ${a.status}`;
  }
  function choose(a: Account) {
    chosen = a;
    account.value = a.number;
    info.textContent = describe(a);
    clear(matches);
    amount.focus();
  }

  account.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') { const first = matches.querySelector<HTMLElement>('button'); if (first) { ev.preventDefault(); first.focus(); } }
  });
  account.addEventListener('input', () => {
    if (chosen && account.value.trim() !== chosen.number) { chosen = null; info.textContent = ''; }
    if (searchTimer !== null) clearTimeout(searchTimer);
    const q = account.value.trim();
    if (q.length < 3) { clear(matches); return; }
    searchTimer = window.setTimeout(async () => {
      const gen = ++searchGen;
      try {
        const page = await api.adminAccounts({ query: q });
        if (gen !== searchGen) return;
        clear(matches, page.items.slice(0, 6).map((a) => {
          const b = h('button', { type: 'button', class: 'match', 'data-test': 'teller-match', 'data-number': a.number, 'data-id': a.id }, describe(a));
          b.addEventListener('click', () => choose(a));
          return h('li', null, b);
        }));
      } catch { /* suggestions are optional */ }
    }, 300);
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    const number = account.value.trim();
    if (!number) { showError(error, 'Enter the account number'); account.focus(); return; }
    const problem = validateAmount(amount.value);
    if (problem) { showError(error, problem); amount.focus(); return; }
    const value = amount.value.trim();
    const k = kind.value as 'deposit' | 'withdrawal';
    void busy(submit, async () => {
      try {
        const target = chosen && chosen.number === number ? chosen : await resolveAccount(number);
        if (!target) { showError(error, 'No such account in your branch'); account.focus(); return; }
        const t = await api.adminTeller(k, target.id, value, memo.value);
        const text = k === 'deposit'
          ? `Deposited ${formatMoney(t.amount, t.currency)} to ${target.number}. New balance: ${formatMoney(t.balance_after, t.currency)}`
          : `Paid out ${formatMoney(t.amount, t.currency)} from ${target.number}. New balance: ${formatMoney(t.balance_after, t.currency)}`;
        setResult(result, text, 'committed', { 'data-balance-after': t.balance_after, 'data-transfer-id': t.id, 'data-number': target.number });
        chosen = { ...target, balance: t.balance_after };
        info.textContent = describe(chosen);
        amount.value = '';
        memo.value = '';
      } catch (err) { showError(error, err, { not_found: 'No such account in your branch' }); }
    });
  });

  return { id: 'teller', label: 'Teller', el, show() { /* nothing to load */ } };
}
