// Move money: deposit, withdraw and transfer forms. A transfer is confirmed before it is sent:
// "Continue" looks the payee up (or, for a saved payee, uses what was shown when it was saved)
// and shows whom the money goes to; only "Confirm transfer" sends it. The bank may hold a
// transfer for a check (202 held_for_review): nothing moves yet, the amount is held, and the
// customer can cancel it in Reviews.
import { api, toIpcError } from '../ipc';
import { errorMessage, isSessionLost } from '../errors';
import { busy, field, fillSelect, h, setResult, showError, toast } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { AccountLookup, Payee, Transfer } from '../types';
import { MAX_MEMO, type AccountStore } from './store';
import { heldText, reviewId } from '../reviews';
import { ANOTHER_ACCOUNT, confirmSentence, lookupErrorText, nicknameProblem, transferPayeeOptions, MAX_NICKNAME, type PayeeStore } from './payees';

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

/** What the confirmation panel stands for, sent as it is by "Confirm transfer". */
export interface PendingTransfer {
  from_account_id: string;
  from_number: string;
  to_account_number: string;
  amount: string;
  currency: string;
  memo: string;
  /** Whom the number pays, masked: from the look-up, or as shown when the payee was saved. */
  payee: Pick<AccountLookup, 'holder_name_masked' | 'account_number_masked'>;
  /** The saved payee this was confirmed from (no look-up), or null. */
  saved: Pick<Payee, 'id' | 'nickname'> | null;
}

/** "Rent (B•• M••••, ••••0027)" for a saved payee, else "B•• M•••• (••••0027)". */
export function payeeName(p: Pick<PendingTransfer, 'payee' | 'saved'>): string {
  const { holder_name_masked: holder, account_number_masked: account } = p.payee;
  return p.saved ? `${p.saved.nickname} (${holder}, ${account})` : `${holder} (${account})`;
}

export interface MoveView extends View {
  /** Chooses a saved payee as the transfer's "To" (from the Payees view). */
  choosePayee(id: string): void;
}

export function moveView(store: AccountStore, payees: PayeeStore): MoveView {
  const payeeSelect = h('select', { id: 'transfer-payee' });
  const to = h('input', { id: 'transfer-to', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'Account number' });
  const toField = field('To account number', to);
  const dep = parts('deposit', 'Deposit', 'To account', 'Deposit');
  const wd = parts('withdraw', 'Withdraw', 'From account', 'Withdraw');
  const tr = parts('transfer', 'Transfer', 'From account', 'Continue', [field('To', payeeSelect, 'A saved payee, or another account number'), toField]);

  // The confirmation step: whom the money goes to, before anything is sent.
  const confirmText = h('p', { id: 'transfer-payee-confirm', class: 'payee', 'aria-live': 'polite' });
  const confirmAmount = h('p', { id: 'transfer-confirm-amount' });
  const confirmSaved = h('p', { id: 'transfer-confirm-saved', class: 'muted', hidden: true });
  const saveBox = h('input', { id: 'transfer-save-payee', type: 'checkbox' });
  const saveRow = h('div', { class: 'field' }, h('label', { class: 'check', for: 'transfer-save-payee' }, saveBox, 'Save as payee'));
  const saveNick = h('input', { id: 'transfer-save-nickname', autocomplete: 'off', maxlength: MAX_NICKNAME, placeholder: 'e.g. Rent' });
  const saveNickField = field('Payee nickname', saveNick);
  saveNickField.hidden = true;
  const confirmBtn = h('button', { id: 'transfer-confirm', type: 'button', class: 'primary' }, 'Confirm transfer');
  const cancelBtn = h('button', { id: 'transfer-cancel', type: 'button' }, 'Cancel');
  const panel = h('div', { id: 'transfer-confirm-panel', class: 'confirm-panel', role: 'group', 'aria-labelledby': 'transfer-confirm-title', tabindex: -1, hidden: true },
    h('h3', { id: 'transfer-confirm-title' }, 'Check whom you are paying'),
    confirmText, confirmAmount, confirmSaved, saveRow, saveNickField,
    h('div', { class: 'actions' }, confirmBtn, cancelBtn));
  tr.form.append(panel);

  const viewError = h('p', { id: 'move-error', class: 'error', role: 'alert', hidden: true });
  const el = h('section', { 'aria-labelledby': 'move-title' },
    h('h1', { id: 'move-title' }, 'Move money'),
    viewError,
    h('div', { class: 'forms-grid' }, dep.form, wd.form, tr.form));


  /** The transfer the panel shows, or null when it is hidden. */
  let pending: PendingTransfer | null = null;
  /** Bumped by every change of the transfer's input: a look-up answer for older input is dropped. */
  let generation = 0;

  function hidePanel() {
    pending = null;
    panel.hidden = true;
    tr.submit.hidden = false;
    saveBox.checked = false;
    saveNick.value = '';
    saveNickField.hidden = true;
  }
  /** The transfer's input changed: whatever was confirmed no longer holds. */
  function invalidate() {
    generation++;
    if (pending) hidePanel();
  }
  store.subscribe(() => {
    const from = tr.account.value;
    for (const p of [dep, wd, tr]) fillSelect(p.account, store.options());
    if (tr.account.value !== from) invalidate();
  });
  function syncPayee() {
    toField.hidden = payeeSelect.value !== ANOTHER_ACCOUNT;
  }
  payees.subscribe((list) => {
    const before = payeeSelect.value;
    fillSelect(payeeSelect, transferPayeeOptions(list));
    syncPayee();
    if (payeeSelect.value !== before) invalidate();
  });
  payeeSelect.addEventListener('change', () => { syncPayee(); invalidate(); });
  for (const input of [to, tr.amount, tr.memo]) input.addEventListener('input', invalidate);
  tr.account.addEventListener('change', invalidate);
  saveBox.addEventListener('change', () => {
    saveNickField.hidden = !saveBox.checked;
    if (saveBox.checked) saveNick.focus();
  });

  function showPanel(p: PendingTransfer) {
    pending = p;
    showError(tr.error, null);
    confirmText.textContent = confirmSentence(p.payee);
    confirmAmount.textContent = `${formatMoney(p.amount, p.currency)} from your account ${p.from_number}${p.memo ? `, memo "${p.memo}"` : ''}`;
    confirmSaved.textContent = p.saved ? `Saved payee ${p.saved.nickname}: confirmed from what you were shown when you saved it.` : '';
    confirmSaved.hidden = !p.saved;
    saveRow.hidden = !!p.saved;
    saveNickField.hidden = true;
    panel.dataset.holderMasked = p.payee.holder_name_masked;
    panel.dataset.accountMasked = p.payee.account_number_masked;
    panel.dataset.saved = String(!!p.saved);
    panel.hidden = false;
    tr.submit.hidden = true;
    panel.focus();
  }

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
    delete wd.error.dataset.code;
    const amount = check(wd);
    if (amount === null) return;
    const acct = store.byId(wd.account.value);
    void busy(wd.submit, async () => {
      try {
        const t = await api.withdraw(wd.account.value, amount, wd.memo.value);
        done(wd, `Withdrew ${formatMoney(t.amount, t.currency)} from ${acct?.number ?? 'your account'}. New balance: ${formatMoney(t.balance_after, t.currency)}`, t);
      } catch (err) { showError(wd.error, err, NOT_FOUND); wd.error.dataset.code = toIpcError(err).code; }
    });
  });

  tr.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // The confirmation is open (Enter in its nickname field): confirm or cancel it, nothing else.
    if (pending) { panel.focus(); return; }
    delete tr.error.dataset.code;
    const amount = check(tr);
    if (amount === null) return;
    const from = store.byId(tr.account.value);
    const choice = payeeSelect.value;
    const chosen = choice === ANOTHER_ACCOUNT ? undefined : payees.byId(choice);
    if (choice !== ANOTHER_ACCOUNT && !chosen?.account_number) { showError(tr.error, 'Choose whom to pay'); payeeSelect.focus(); return; }
    const toNumber = chosen?.account_number ?? to.value.trim();
    const target = chosen ? payeeSelect : to;
    if (!toNumber) { showError(tr.error, 'Enter the account number to send to'); to.focus(); return; }
    if (from && toNumber === from.number) { showError(tr.error, 'You cannot transfer to the same account'); target.focus(); return; }
    if (!from) { showError(tr.error, 'Choose an account'); return; }
    const base = { from_account_id: from.id, from_number: from.number, to_account_number: toNumber, amount, currency: from.currency, memo: tr.memo.value };
    // A saved payee (chosen, or its number typed) is confirmed from what was shown when it was
    // saved: no look-up, so it can be paid offline too.
    const saved = chosen ?? payees.byAccountNumber(toNumber);
    if (saved) { showPanel({ ...base, payee: saved, saved }); return; }
    const asked = generation;
    void busy(tr.submit, async () => {
      try {
        const who = await api.accountLookup(toNumber);
        if (asked !== generation) return; // the input changed meanwhile: Continue again
        showPanel({ ...base, payee: who, saved: null });
      } catch (err) {
        if (asked !== generation || isSessionLost(err)) return;
        showError(tr.error, lookupErrorText(err));
        tr.error.dataset.code = toIpcError(err).code;
        to.focus();
      }
    });
  });

  /** After a confirmed transfer: saves the new number as a payee when asked to. */
  async function saveAsPayee(p: PendingTransfer, nickname: string) {
    try {
      const saved = await api.payeeAdd({ account_number: p.to_account_number, nickname });
      payees.set([...payees.list.filter((x) => x.id !== saved.id), saved]);
      tr.result.textContent = `${tr.result.textContent ?? ''} Saved as payee ${saved.nickname}.`;
      tr.result.dataset.savedPayeeId = saved.id;
    } catch (err) {
      toast(`The payee was not saved: ${errorMessage(err)}`, 'error');
    }
  }

  confirmBtn.addEventListener('click', () => {
    const p = pending;
    if (!p) return;
    let nickname: string | null = null;
    if (!p.saved && saveBox.checked) {
      const problem = nicknameProblem(saveNick.value);
      if (problem) { showError(tr.error, problem); saveNick.focus(); return; }
      nickname = saveNick.value.trim();
    }
    showError(tr.error, null);
    cancelBtn.disabled = true;
    void busy(confirmBtn, async () => {
      try {
        const answer = await api.transfer({ from_account_id: p.from_account_id, to_account_number: p.to_account_number, amount: p.amount, currency: p.currency, memo: p.memo });
        hidePanel();
        if (answer.outcome === 'queued') {
          const item = answer.item;
          setResult(tr.result,
            `Queued (offline): ${formatMoney(item.request.amount, item.request.currency)} to ${payeeName(p)} will be sent when the server is back. See Queue.`,
            'queued', { 'data-queue-id': item.id });
          toast('Cannot reach the server — the transfer was queued and will be sent automatically', 'info');
          tr.amount.value = '';
          tr.memo.value = '';
        } else if (answer.outcome === 'held') {
          const r = answer.review;
          setResult(tr.result, heldText(r), 'held', { 'data-review-id': reviewId(r), 'data-amount': r.amount, 'data-currency': r.currency });
          tr.amount.value = '';
          tr.memo.value = '';
          store.refresh().catch(() => undefined); // the available balance dropped by the held amount
        } else {
          const t = answer.transfer;
          done(tr, `Sent ${formatMoney(t.amount, t.currency)} to ${payeeName(p)}. New balance: ${formatMoney(t.balance_after, t.currency)}`, t);
        }
        if (nickname) await saveAsPayee(p, nickname);
        tr.amount.focus();
      } catch (err) {
        hidePanel();
        showError(tr.error, err, NOT_FOUND);
        tr.error.dataset.code = toIpcError(err).code;
        tr.submit.focus();
      } finally {
        cancelBtn.disabled = false;
      }
    });
  });

  cancelBtn.addEventListener('click', () => {
    hidePanel();
    setResult(tr.result, 'Not sent: you cancelled the transfer.', 'cancelled');
    tr.submit.focus();
  });

  return {
    id: 'move',
    label: 'Move money',
    el,
    show() {
      store.refresh().then(() => showError(viewError, null), (err) => showError(viewError, err));
      payees.refresh().catch(() => undefined); // offline: the payees loaded before stay
    },
    choosePayee(id: string) {
      if (!payees.byId(id)) return;
      payeeSelect.value = id;
      syncPayee();
      invalidate();
      tr.amount.focus();
    },
  };
}
