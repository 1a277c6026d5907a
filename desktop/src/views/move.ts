// Move money: deposit, withdraw and transfer forms.
import { api } from '../ipc';
import { busy, field, fillSelect, h, setResult, showError, toast } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { Transfer } from '../types';
import { MAX_MEMO, type AccountStore } from './store';

interface Parts {
  form: HTMLFormElement;
  account: HTMLSelectElement;
  amount: HTMLInputElement;
  memo: HTMLInputElement;
  submit: HTMLButtonElement;
  error: HTMLElement;
  result: HTMLElement;
}

function parts(prefix: string, title: string, accountLabel: string, submitLabel: string, extra: HTMLElement[] = []): Parts {
  const accountId = prefix === 'transfer' ? 'transfer-from' : `${prefix}-account`;
  const account = h('select', { id: accountId, required: true });
  const amount = h('input', { id: `${prefix}-amount`, inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00', required: true });
  const memo = h('input', { id: `${prefix}-memo`, maxlength: MAX_MEMO, autocomplete: 'off' });
  const submit = h('button', { id: `${prefix}-submit`, type: 'submit', class: 'primary' }, submitLabel);
  const error = h('p', { id: `${prefix}-error`, class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: `${prefix}-result`, class: 'result', role: 'status', hidden: true });
  const form = h('form', { id: `${prefix}-form`, class: 'panel form', novalidate: true, 'aria-labelledby': `${prefix}-title` },
    h('h2', { id: `${prefix}-title` }, title),
    field(accountLabel, account),
    ...extra,
    field('Amount', amount, 'For example 1250.50'),
    field('Memo (optional)', memo),
    error, result, submit);
  return { form, account, amount, memo, submit, error, result };
}

const NOT_FOUND = { not_found: 'No such account' };

export function moveView(store: AccountStore): View {
  const to = h('input', { id: 'transfer-to', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'Account number' });
  const dep = parts('deposit', 'Deposit', 'To account', 'Deposit');
  const wd = parts('withdraw', 'Withdraw', 'From account', 'Withdraw');
  const tr = parts('transfer', 'Transfer', 'From account', 'Send transfer', [field('To account number', to)]);

  const viewError = h('p', { id: 'move-error', class: 'error', role: 'alert', hidden: true });
  const el = h('section', { 'aria-labelledby': 'move-title' },
    h('h1', { id: 'move-title' }, 'Move money'),
    viewError,
    h('div', { class: 'forms-grid' }, dep.form, wd.form, tr.form));

  store.subscribe(() => {
    for (const p of [dep, wd, tr]) fillSelect(p.account, store.options());
  });

  /** Local checks shared by the three forms; returns the amount or null (message shown). */
  function check(p: Parts): string | null {
    showError(p.error, null);
    setResult(p.result, null);
    if (!p.account.value) { showError(p.error, 'Choose an account'); p.account.focus(); return null; }
    const problem = validateAmount(p.amount.value);
    if (problem) { showError(p.error, problem); p.amount.focus(); return null; }
    if (p.memo.value.length > MAX_MEMO) { showError(p.error, `Memo must be at most ${MAX_MEMO} characters`); p.memo.focus(); return null; }
    return p.amount.value.trim();
  }

  function done(p: Parts, text: string, t: Transfer) {
    setResult(p.result, text, 'committed', { 'data-balance-after': t.balance_after, 'data-transfer-id': t.id, 'data-currency': t.currency });
    p.amount.value = '';
    p.memo.value = '';
    store.refresh().catch(() => undefined);
  }

  dep.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const amount = check(dep);
    if (amount === null) return;
    const acct = store.byId(dep.account.value);
    void busy(dep.submit, async () => {
      try {
        const t = await api.deposit(dep.account.value, amount, dep.memo.value);
        done(dep, `Deposited ${formatMoney(t.amount, t.currency)} to ${acct?.number ?? 'your account'}. New balance: ${formatMoney(t.balance_after, t.currency)}`, t);
      } catch (err) { showError(dep.error, err, NOT_FOUND); }
    });
  });

  wd.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const amount = check(wd);
    if (amount === null) return;
    const acct = store.byId(wd.account.value);
    void busy(wd.submit, async () => {
      try {
        const t = await api.withdraw(wd.account.value, amount, wd.memo.value);
        done(wd, `Withdrew ${formatMoney(t.amount, t.currency)} from ${acct?.number ?? 'your account'}. New balance: ${formatMoney(t.balance_after, t.currency)}`, t);
      } catch (err) { showError(wd.error, err, NOT_FOUND); }
    });
  });

  tr.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const amount = check(tr);
    if (amount === null) return;
    const from = store.byId(tr.account.value);
    const toNumber = to.value.trim();
    if (!toNumber) { showError(tr.error, 'Enter the account number to send to'); to.focus(); return; }
    if (from && toNumber === from.number) { showError(tr.error, 'You cannot transfer to the same account'); to.focus(); return; }
    if (!from) { showError(tr.error, 'Choose an account'); return; }
    void busy(tr.submit, async () => {
      try {
        const answer = await api.transfer({ from_account_id: from.id, to_account_number: toNumber, amount, currency: from.currency, memo: tr.memo.value });
        if (answer.outcome === 'queued') {
          const item = answer.item;
          setResult(tr.result,
            `Queued (offline): ${formatMoney(item.request.amount, item.request.currency)} to ${item.request.to_account_number} will be sent when the server is back. See Queue.`,
            'queued', { 'data-queue-id': item.id });
          toast('Cannot reach the server — the transfer was queued and will be sent automatically', 'info');
          tr.amount.value = '';
          tr.memo.value = '';
        } else {
          const t = answer.transfer;
          done(tr, `Sent ${formatMoney(t.amount, t.currency)} to ${toNumber}. New balance: ${formatMoney(t.balance_after, t.currency)}`, t);
        }
      } catch (err) { showError(tr.error, err, NOT_FOUND); }
    });
  });

  return {
    id: 'move',
    label: 'Move money',
    el,
    show() { store.refresh().then(() => showError(viewError, null), (err) => showError(viewError, err)); },
  };
}
