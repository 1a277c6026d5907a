// Standing orders: a fixed amount paid on a schedule (every day, week or month, at a time of day
// in the customer's time zone). Setting one up shows whom it pays first, as Move money does:
// "Continue" looks the number up (or uses a saved payee as it was shown when saved); only
// "Create standing order" sends it, with one Idempotency-Key per confirmed creation, reused when
// that creation is retried, so it is never set up twice. An order may also pay a key at another
// bank of the consortium (from an INR account): "Continue" looks the key up as Pay by key does,
// and each run places an inter-bank payment whose outcome ("Check") is the switch's. A live
// order's amount, schedule and memo can be changed ("Edit": only what changed is sent), and it
// can be paused and resumed. Each order's runs say what was paid, what the bank holds for a
// check, and what was not paid and why.
import { api, toIpcError } from '../ipc';
import { isSessionLost, isUnreachable } from '../errors';
import { busy, clear, confirmDialog, field, fillSelect, h, keepFocus, keyText, label, openModal, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { Ctx, View } from '../shell';
import type { AccountLookup, Every, KeyType, OrderRun, OrderTarget, Payee, StandingOrder } from '../types';
import {
  EVERY_CHOICES, MAX_INTERVAL, STATUS_WORDS, changeWords, dueText, firstRunDate, formatInZone, hhmmOf, interbankRunText, nextRunText, orderChange,
  orderProblem, orderTargetText, runTone, runWords, scheduleWords, shortMonthNote, sortOrders, timeInZone, todayInZone, type OrderEdit,
} from '../schedule';
import { MAX_MEMO, type AccountStore } from './store';
import { ANOTHER_ACCOUNT, confirmSentence, lookupErrorText, type PayeeStore } from './payees';
import { KEY_HINTS, KEY_TYPES, MAX_KEY_CHARS, isRetryable, keyValueProblem, newIdempotencyKey, refusalText } from './paykey';
import { browserTimeZone } from './settings';

/** How often the list (and the open runs) is read again while the view is shown. */
export const REFRESH_MS = 3000;

const ERRORS = {
  not_found: 'No such account: check the number',
  limit_reached: 'You have as many standing orders as you may keep (50): cancel one first',
  currency_mismatch: "The payee's account is in another currency: a standing order pays an account in the same currency",
  same_account: 'A standing order cannot pay the account it pays from',
};

/** Orders to a key at another bank pay in this currency only. */
export const KEY_ORDER_CURRENCY = 'INR';

/** The server's refusals of an order to a key at another bank, in plain words. */
export const KEY_ERRORS = {
  limit_reached: ERRORS.limit_reached,
  not_found: 'No account at another bank is registered under that key (or this bank is not part of an inter-bank network)',
  same_bank: 'That key names an account at this bank: choose "Another account number" and enter its account number',
  currency_mismatch: `A standing order to a key at another bank pays in ${KEY_ORDER_CURRENCY}: choose an ${KEY_ORDER_CURRENCY} account to pay from`,
};

/** The value of "Key at another bank" in the "To" select. */
export const ANOTHER_KEY = 'new-key';

/**
 * The "To" choices: another account number, a key at another bank, then the saved payees of
 * both kinds by nickname (a key payee with its bank and key).
 */
export function orderPayeeOptions(list: Payee[]): { value: string; label: string }[] {
  return [
    { value: ANOTHER_ACCOUNT, label: 'Another account number' },
    { value: ANOTHER_KEY, label: 'Key at another bank' },
    ...list
      .filter((p) => !!p.account_number || !!p.key)
      .sort((a, b) => a.nickname.localeCompare(b.nickname))
      .map((p) => ({
        value: p.id,
        label: p.key
          ? `${p.nickname} — ${p.holder_name_masked}, ${p.bank_name ?? 'another bank'}, ${keyText(p.key)}`
          : `${p.nickname} — ${p.holder_name_masked}, ${p.account_number_masked}`,
      })),
  ];
}

/** What is wrong with whom a new order pays (and which field to fix), or null when fine. */
export function orderTargetProblem(to: OrderTarget, from: { number: string; currency: string }): { field: 'to' | 'key' | 'from'; text: string } | null {
  if (to.key) {
    if (!KEY_TYPES.includes(to.key.type)) return { field: 'key', text: 'Choose the type of key' };
    const problem = keyValueProblem(to.key.value, 'Enter the key to pay');
    if (problem) return { field: 'key', text: problem };
    if (from.currency !== KEY_ORDER_CURRENCY) return { field: 'from', text: KEY_ERRORS.currency_mismatch };
    return null;
  }
  const number = to.account_number.trim();
  if (!number) return { field: 'to', text: 'Enter the account number to pay' };
  if (!/^[A-Za-z0-9]{1,34}$/.test(number)) return { field: 'to', text: 'An account number is 1 to 34 letters or digits' };
  if (number === from.number) return { field: 'to', text: ERRORS.same_account };
  return null;
}

/** Whom the order pays, masked: its bank too when it is another one. */
type OrderPayee = Pick<AccountLookup, 'holder_name_masked' | 'account_number_masked'> & { bank_name?: string | null };

/**
 * The confirmation's first line: "You are paying B•• M••••, account ••••0027", or for a key
 * "You are paying A••• F•••••••, Beta Bank, account ••••0001, by phone key +919876543210".
 */
export function orderConfirmSentence(to: OrderTarget, payee: OrderPayee): string {
  if (!to.key) return confirmSentence(payee);
  return `You are paying ${payee.holder_name_masked}, ${payee.bank_name ?? 'another bank'}, account ${payee.account_number_masked}, by ${orderTargetText(to)}`;
}

/** Whom an order to a key pays in the list: "Mum (Phone key +919876543210)", or "phone key +919876543210" for a key not saved. */
export function orderKeyPayeeName(key: { type: KeyType; value: string }, payee: Pick<Payee, 'nickname'> | undefined): string {
  return payee ? `${payee.nickname} (${keyText(key)})` : orderTargetText({ key });
}

/** What "Create standing order" sends, as the confirmation shows it. */
interface PendingOrder {
  from_account_id: string;
  from_number: string;
  to: OrderTarget;
  amount: string;
  currency: string;
  memo: string;
  every: Every;
  interval: number;
  time: string;
  start_at: string;
  end_at: string | null;
  payee: OrderPayee;
  saved: Pick<Payee, 'id' | 'nickname'> | null;
  /** One per confirmed creation: sent again when this creation is retried. */
  key: string;
}

/** "Rent (B•• M••••, ••••0027)", or "account 100000000027" for a number not saved as a payee. */
export function orderPayeeName(number: string, payee: Pick<Payee, 'nickname' | 'holder_name_masked' | 'account_number_masked'> | undefined): string {
  return payee ? `${payee.nickname} (${payee.holder_name_masked}, ${payee.account_number_masked})` : `account ${number}`;
}

export function standingOrdersView(ctx: Ctx, store: AccountStore, payees: PayeeStore): View {
  /** The customer's time zone (Settings): new orders run in it. null until known. */
  let zone: string | null = null;
  let orders: StandingOrder[] = [];
  let listKey = '';
  let runsOf: string | null = null;
  let runsKey = '';
  let pending: PendingOrder | null = null;
  let generation = 0;
  /** What "Check" last said of a run's inter-bank payment, by payment id (kept when the runs are drawn again). */
  const checked = new Map<string, { status: string; text: string }>();

  // ---- the form
  const from = h('select', { id: 'so-from', required: true });
  const payeeSelect = h('select', { id: 'so-payee' });
  const to = h('input', { id: 'so-to', autocomplete: 'off', spellcheck: 'false', inputmode: 'numeric', placeholder: 'Account number', maxlength: 34 });
  const toField = field('To account number', to);
  // A key at another bank: the same inputs and hints as Pay by key.
  const keyType = h('select', { id: 'so-key-type' }, KEY_TYPES.map((k) => h('option', { value: k }, label(k))));
  const keyValue = h('input', { id: 'so-key-value', autocomplete: 'off', spellcheck: 'false', maxlength: MAX_KEY_CHARS });
  const keyTypeField = field('Key type', keyType);
  const keyValueField = field('Key', keyValue, KEY_HINTS.national_id);
  const amount = h('input', { id: 'so-amount', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00', required: true });
  const memo = h('input', { id: 'so-memo', maxlength: MAX_MEMO, autocomplete: 'off', placeholder: 'e.g. Rent' });
  const interval = h('input', { id: 'so-interval', type: 'number', min: 1, max: MAX_INTERVAL, step: 1, value: '1', inputmode: 'numeric', required: true });
  const every = h('select', { id: 'so-every' }, EVERY_CHOICES.map((c) => h('option', { value: c.value }, `${c.label}(s)`)));
  const time = h('input', { id: 'so-time', type: 'time', value: '09:00', required: true });
  const start = h('input', { id: 'so-start', type: 'date', required: true });
  const end = h('input', { id: 'so-end', type: 'date' });
  const zoneHint = h('p', { id: 'so-zone', class: 'hint' });
  const preview = h('p', { id: 'so-preview', class: 'payee', 'aria-live': 'polite' });
  const previewNote = h('p', { id: 'so-preview-note', class: 'muted small', hidden: true });
  const submit = h('button', { id: 'so-submit', type: 'submit', class: 'primary' }, 'Continue');
  const error = h('p', { id: 'so-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'so-result', class: 'result', role: 'status', hidden: true });

  // The confirmation step: whom it pays and when, before anything is sent.
  const confirmText = h('p', { id: 'so-payee-confirm', class: 'payee' });
  const confirmSummary = h('p', { id: 'so-confirm-summary' });
  const confirmFirst = h('p', { id: 'so-confirm-first' });
  const confirmSaved = h('p', { id: 'so-confirm-saved', class: 'muted', hidden: true });
  const confirmBtn = h('button', { id: 'so-confirm', type: 'button', class: 'primary' }, 'Create standing order');
  const backBtn = h('button', { id: 'so-confirm-cancel', type: 'button' }, 'Cancel');
  const panel = h('div', { id: 'so-confirm-panel', class: 'confirm-panel', role: 'group', 'aria-labelledby': 'so-confirm-title', tabindex: -1, hidden: true },
    h('h3', { id: 'so-confirm-title' }, 'Check whom you are paying, and when'),
    confirmText, confirmSummary, confirmFirst, confirmSaved,
    h('div', { class: 'actions' }, confirmBtn, backBtn));

  const form = h('form', { id: 'so-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'so-form-title' },
    h('h2', { id: 'so-form-title' }, 'Set up a standing order'),
    field('From account', from),
    field('To', payeeSelect, `A saved payee, another account number at this bank, or a key at another bank (from an ${KEY_ORDER_CURRENCY} account)`),
    toField, keyTypeField, keyValueField,
    field('Amount', amount, 'Paid each time, e.g. 1250.50'),
    field('Memo (optional)', memo),
    h('fieldset', { class: 'schedule', 'aria-describedby': 'so-zone' },
      h('legend', null, 'When'),
      h('div', { class: 'row-fields' },
        field('Every', interval), field('Period', every), field('At', time)),
      h('div', { class: 'row-fields' },
        field('First date', start), field('Last date (optional)', end, 'Empty: until you cancel it')),
      zoneHint),
    preview, previewNote,
    error, result, submit, panel);

  // ---- the list and one order's runs
  const tbody = h('tbody', { id: 'so-rows' });
  const listTitle = h('h2', { id: 'so-list-title', tabindex: -1 }, 'Your standing orders');
  const listError = h('p', { id: 'so-list-error', class: 'error', role: 'alert', hidden: true });
  const listResult = h('p', { id: 'so-list-result', class: 'result', role: 'status', hidden: true });
  const empty = h('p', { id: 'so-empty', class: 'muted', hidden: true }, 'No standing orders yet. Set one up to pay rent, savings or a bill on its date without thinking of it.');
  const table = h('table', { id: 'so-table', class: 'table' },
    h('caption', { class: 'sr-only' }, 'Your standing orders'),
    h('thead', null, h('tr', null, ['Pays', 'Amount', 'From', 'Schedule', 'Next payment', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);

  const runsTitle = h('h2', { id: 'so-runs-title', tabindex: -1 }, 'Payments');
  const runsSchedule = h('p', { id: 'so-runs-schedule', class: 'muted small' });
  const runsError = h('p', { id: 'so-runs-error', class: 'error', role: 'alert', hidden: true });
  const runsBody = h('tbody', { id: 'so-runs-rows' });
  const runsEmpty = h('p', { id: 'so-runs-empty', class: 'muted', hidden: true });
  const runsTable = h('table', { class: 'table', id: 'so-runs-table' },
    h('caption', { class: 'sr-only' }, 'Payments of the standing order, newest first'),
    h('thead', null, h('tr', null, ['Due', 'What happened', 'Tries', 'Transfer or payment'].map((c) => h('th', { scope: 'col' }, c)))),
    runsBody);
  const runsNone = h('p', { id: 'so-runs-none', class: 'muted' }, 'Choose "Payments" on an order to see what it paid, and what it did not and why.');
  const runsRefresh = h('button', { id: 'so-runs-refresh', type: 'button' }, 'Refresh');
  const runsClose = h('button', { id: 'so-runs-close', type: 'button' }, 'Close');
  const runsActions = h('div', { class: 'actions', hidden: true }, runsRefresh, runsClose);
  runsSchedule.hidden = true;
  runsTable.hidden = true;
  const runsPanel = h('div', { id: 'so-runs-panel', class: 'panel', role: 'region', 'aria-labelledby': 'so-runs-title' },
    runsTitle, runsSchedule, runsNone, runsError, h('div', { class: 'table-scroll' }, runsTable), runsEmpty, runsActions);

  const viewError = h('p', { id: 'so-view-error', class: 'error', role: 'alert', hidden: true });
  const el = h('section', { 'aria-labelledby': 'so-title' },
    h('h1', { id: 'so-title' }, 'Standing orders'),
    h('p', { class: 'muted' }, 'Pay the same amount on a schedule. You see whom it pays before it is set up; you can pause or cancel it at any time.'),
    viewError,
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'so-list-title' }, listTitle, listError, listResult, h('div', { class: 'table-scroll' }, table), empty),
    h('div', { class: 'so-grid' }, form, runsPanel));

  // ---- form behaviour

  function zoneNow(): string {
    return zone ?? browserTimeZone();
  }

  function syncPayee() {
    toField.hidden = payeeSelect.value !== ANOTHER_ACCOUNT;
    keyTypeField.hidden = payeeSelect.value !== ANOTHER_KEY;
    keyValueField.hidden = payeeSelect.value !== ANOTHER_KEY;
  }
  function syncKeyHint() {
    const hint = keyValueField.querySelector('small');
    if (hint) hint.textContent = KEY_HINTS[keyType.value as KeyType];
  }

  function schedule() {
    return { every: every.value as Every, interval: Math.max(1, Number(interval.value) || 1), time: hhmmOf(time.value) ?? time.value };
  }

  function renderPreview() {
    const s = schedule();
    const startAt = start.value || todayInZone(zoneNow());
    preview.textContent = scheduleWords(s, startAt, zone);
    const note = shortMonthNote(s, startAt);
    previewNote.textContent = note ?? '';
    previewNote.hidden = !note;
    zoneHint.textContent = zone
      ? `Dates and times are in your time zone, ${zone}. You can change it in Settings.`
      : 'Dates and times are in your time zone (from Settings).';
  }

  function hidePanel() {
    pending = null;
    panel.hidden = true;
    submit.hidden = false;
  }
  function invalidate() {
    generation++;
    if (pending) hidePanel();
  }

  store.subscribe(() => {
    const before = from.value;
    fillSelect(from, store.options());
    if (from.value !== before) invalidate();
    renderList(true);
  });
  payees.subscribe((list) => {
    const before = payeeSelect.value;
    fillSelect(payeeSelect, orderPayeeOptions(list));
    syncPayee();
    if (payeeSelect.value !== before) invalidate();
    renderList(true);
  });
  payeeSelect.addEventListener('change', () => { syncPayee(); invalidate(); });
  keyType.addEventListener('change', () => { syncKeyHint(); invalidate(); });
  for (const input of [to, keyValue, amount, memo, interval, time, start, end]) input.addEventListener('input', () => { invalidate(); renderPreview(); });
  for (const select of [from, every]) select.addEventListener('change', () => { invalidate(); renderPreview(); });
  start.addEventListener('change', () => { end.min = start.value; renderPreview(); });
  end.addEventListener('change', invalidate);

  function showPanel(p: PendingOrder) {
    pending = p;
    showError(error, null);
    const tz = zoneNow();
    const s = { every: p.every, interval: p.interval, time: p.time };
    confirmText.textContent = orderConfirmSentence(p.to, p.payee);
    confirmSummary.textContent = `${formatMoney(p.amount, p.currency)} from your account ${p.from_number}`
      + `${p.to.key ? ` to ${orderTargetText(p.to)}` : ''}, `
      + `${scheduleWords(s, p.start_at, tz).replace(/^Every/, 'every')}${p.memo ? `, memo "${p.memo}"` : ''}.`
      + (p.to.key ? ' Each payment is sent to the other bank through the inter-bank network.' : '');
    const first = firstRunDate(s, p.start_at, todayInZone(tz), timeInZone(tz));
    confirmFirst.textContent = `First payment: ${first} at ${p.time} (${tz}). `
      + (p.end_at ? `Last date: ${p.end_at}.` : 'No last date: it pays until you cancel it.');
    confirmSaved.textContent = p.saved ? `Saved payee ${p.saved.nickname}: confirmed from what you were shown when you saved it.` : '';
    confirmSaved.hidden = !p.saved;
    panel.dataset.holderMasked = p.payee.holder_name_masked;
    panel.dataset.accountMasked = p.payee.account_number_masked;
    panel.dataset.saved = String(!!p.saved);
    panel.dataset.target = p.to.key ? 'key' : 'account';
    panel.dataset.firstRun = first;
    panel.hidden = false;
    submit.hidden = true;
    panel.focus();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (pending) { panel.focus(); return; }
    showError(error, null);
    delete error.dataset.code;
    delete error.dataset.retry;
    setResult(result, null);
    const account = store.byId(from.value);
    if (!account) { showError(error, 'Choose the account to pay from'); from.focus(); return; }
    const choice = payeeSelect.value;
    const typed = choice === ANOTHER_ACCOUNT || choice === ANOTHER_KEY;
    const chosen = typed ? undefined : payees.byId(choice);
    if (!typed && !chosen?.account_number && !chosen?.key) { showError(error, 'Choose whom to pay'); payeeSelect.focus(); return; }
    const target: OrderTarget = chosen?.key ? { key: chosen.key }
      : chosen?.account_number ? { account_number: chosen.account_number }
        : choice === ANOTHER_KEY ? { key: { type: keyType.value as KeyType, value: keyValue.value.trim() } }
          : { account_number: to.value.trim() };
    const targetProblem = orderTargetProblem(target, account);
    if (targetProblem) {
      showError(error, targetProblem.text);
      (targetProblem.field === 'from' ? from : chosen ? payeeSelect : targetProblem.field === 'key' ? keyValue : to).focus();
      return;
    }
    const inputs = { amount: amount.value, every: every.value, interval: interval.value, time: time.value, start: start.value, end: end.value };
    const problem = orderProblem(inputs, todayInZone(zoneNow()));
    if (problem) {
      showError(error, problem.text);
      ({ amount, every, interval, time, start, end } as Record<string, HTMLElement>)[problem.field].focus();
      return;
    }
    const base = {
      from_account_id: account.id, from_number: account.number, to: target, amount: amount.value.trim(), currency: account.currency,
      memo: memo.value, every: every.value as Every, interval: Number(interval.value.trim()), time: hhmmOf(time.value)!, start_at: start.value,
      end_at: end.value || null, key: newIdempotencyKey(),
    };
    // A saved payee is confirmed from what was shown when it was saved; anything else is looked up.
    const saved = chosen ?? (target.key ? payees.byKey(target.key) : payees.byAccountNumber(target.account_number));
    if (saved) { showPanel({ ...base, payee: saved, saved }); return; }
    const asked = generation;
    void busy(submit, async () => {
      try {
        const who = target.key ? await api.directoryLookup(target.key.type, target.key.value) : await api.accountLookup(target.account_number);
        if (asked !== generation) return;
        showPanel({ ...base, payee: who, saved: null });
      } catch (err) {
        if (asked !== generation || isSessionLost(err)) return;
        showError(error, target.key && !isUnreachable(err) ? refusalText(err) : lookupErrorText(err));
        error.dataset.code = toIpcError(err).code;
        (target.key ? keyValue : to).focus();
      }
    });
  });

  confirmBtn.addEventListener('click', () => {
    const p = pending;
    if (!p) return;
    showError(error, null);
    delete error.dataset.retry;
    backBtn.disabled = true;
    void busy(confirmBtn, async () => {
      try {
        const order = await api.standingOrderCreate({
          from_account_id: p.from_account_id, ...(p.to.key ? { to_key: p.to.key } : { to_account_number: p.to.account_number }),
          amount: p.amount, memo: p.memo, every: p.every,
          interval: p.interval, time: p.time, start_at: p.start_at, end_at: p.end_at, idempotency_key: p.key,
        });
        hidePanel();
        const masked = p.to.key
          ? `${p.payee.holder_name_masked}, ${p.payee.bank_name ?? 'another bank'}, ${keyText(p.to.key)}`
          : `${p.payee.holder_name_masked}, ${p.payee.account_number_masked}`;
        const who = p.saved ? `${p.saved.nickname} (${masked})` : p.to.key ? masked : `${p.payee.holder_name_masked} (${p.payee.account_number_masked})`;
        setResult(result,
          `Standing order set up: ${formatMoney(order.amount, order.currency)} to ${who}, `
          + `${scheduleWords(order.schedule, order.start_at, order.time_zone).replace(/^Every/, 'every')}. First payment ${nextRunText(order)}.`,
          'created', { 'data-order-id': order.id, 'data-next-run-at': order.next_run_at ?? '' });
        amount.value = '';
        memo.value = '';
        to.value = '';
        keyValue.value = '';
        orders = [...orders.filter((o) => o.id !== order.id), order];
        renderList(true);
        void loadList();
        amount.focus();
      } catch (err) {
        if (isSessionLost(err)) return;
        const e = toIpcError(err);
        if (isRetryable(e)) {
          // The same creation, the same key: pressing again never sets up a second order.
          showError(error, `No answer from the bank (${e.detail || e.code}). Press "Create standing order" again: it will not be set up twice.`);
          error.dataset.retry = 'true';
          error.dataset.code = e.code;
          confirmBtn.focus();
          return;
        }
        hidePanel();
        showError(error, e, p.to.key ? KEY_ERRORS : ERRORS);
        error.dataset.code = e.code;
        submit.focus();
      } finally {
        backBtn.disabled = false;
      }
    });
  });

  backBtn.addEventListener('click', () => {
    hidePanel();
    setResult(result, 'Not set up: you cancelled.', 'cancelled');
    submit.focus();
  });

  // ---- the list

  function payeeOf(o: StandingOrder): string {
    const number = o.to.account_number;
    if (number) return orderPayeeName(number, payees.byAccountNumber(number));
    return o.to.key ? orderKeyPayeeName(o.to.key, payees.byKey(o.to.key)) : orderTargetText(o.to);
  }

  function row(o: StandingOrder): HTMLElement {
    const live = o.status === 'active' || o.status === 'paused';
    const name = payeeOf(o);
    const runs = h('button', {
      type: 'button', class: 'small', 'data-test': 'so-runs', 'data-id': o.id, 'aria-controls': 'so-runs-panel',
      'aria-expanded': String(runsOf === o.id), 'aria-label': `Payments of the standing order to ${name}`,
    }, 'Payments');
    runs.addEventListener('click', () => openRuns(o.id));
    const actions: HTMLElement[] = [runs];
    if (live) {
      const action = o.status === 'active' ? 'pause' : 'resume';
      const pause = h('button', {
        type: 'button', class: 'small', 'data-test': 'so-pause', 'data-id': o.id, 'data-action': action,
        'aria-label': `${action === 'pause' ? 'Pause' : 'Resume'} the standing order to ${name}`,
      }, action === 'pause' ? 'Pause' : 'Resume');
      pause.addEventListener('click', () => void setPaused(o, action === 'pause', pause));
      const edit = h('button', {
        type: 'button', class: 'small', 'data-test': 'so-edit', 'data-id': o.id, 'aria-haspopup': 'dialog',
        'aria-label': `Change the amount, schedule or memo of the standing order to ${name}`,
      }, 'Edit');
      edit.addEventListener('click', () => editDialog(o));
      const cancel = h('button', {
        type: 'button', class: 'danger-outline small', 'data-test': 'so-cancel', 'data-id': o.id, 'aria-label': `Cancel the standing order to ${name}`,
      }, 'Cancel');
      cancel.addEventListener('click', () => void cancelOrder(o, cancel));
      actions.push(edit, pause, cancel);
    }
    const fromNumber = store.byId(o.from_account_id)?.number ?? '—';
    return h('tr', {
      'data-test': 'standing-order', 'data-order-id': o.id, 'data-status': o.status, 'data-next-run-at': o.next_run_at ?? '',
      'data-every': o.schedule.every, 'data-to': o.to.account_number, 'data-key-type': o.to.key?.type, 'data-key-value': o.to.key?.value,
      'data-amount': o.amount, class: live ? null : 'muted',
    },
    h('td', { 'data-test': 'so-to' }, name),
    h('td', { class: 'num', 'data-test': 'so-amount', 'data-amount': o.amount }, formatMoney(o.amount, o.currency)),
    h('td', { class: 'mono' }, fromNumber),
    h('td', { 'data-test': 'so-schedule' }, scheduleWords(o.schedule, o.start_at, o.time_zone),
      o.end_at ? h('span', { class: 'hint', style: 'display:block' }, `Until ${o.end_at}`) : null,
      o.memo ? h('span', { class: 'hint', style: 'display:block' }, `Memo: ${o.memo}`) : null),
    h('td', { class: 'nowrap', 'data-test': 'so-next-run' }, nextRunText(o)),
    h('td', null, h('span', { class: `status status-${o.status}`, 'data-test': 'so-status' }, STATUS_WORDS[o.status] ?? o.status)),
    h('td', { class: 'row-actions' }, actions));
  }

  function renderList(force = false) {
    const sorted = sortOrders(orders);
    const key = JSON.stringify(sorted) + String(runsOf);
    if (!force && key === listKey) return;
    listKey = key;
    keepFocus(tbody, () => clear(tbody, sorted.map(row)));
    empty.hidden = sorted.length > 0;
    table.hidden = sorted.length === 0;
  }

  async function loadList(quiet = false) {
    try {
      const { items } = await api.standingOrders();
      orders = items;
      renderList();
      showError(listError, null);
      if (runsOf && !orders.some((o) => o.id === runsOf)) closeRuns(false);
    } catch (err) { showError(listError, err, undefined, quiet); }
  }

  async function setPaused(o: StandingOrder, paused: boolean, button: HTMLButtonElement) {
    setResult(listResult, null);
    showError(listError, null);
    await busy(button, async () => {
      try {
        const after = await api.standingOrderPause(o.id, paused);
        orders = orders.map((x) => (x.id === after.id ? after : x));
        renderList(true);
        setResult(listResult, paused
          ? `Paused the standing order to ${payeeOf(after)}: nothing is paid until you resume it.`
          : `Resumed the standing order to ${payeeOf(after)}: next payment ${nextRunText(after)}. Dates that passed while it was paused are not paid.`,
        after.status, { 'data-order-id': after.id });
        if (runsOf === after.id) renderRunsHead(after);
      } catch (err) {
        showError(listError, err, { ...ERRORS, not_found: 'That standing order is gone' });
        void loadList(true);
      }
    });
    tbody.querySelector<HTMLElement>(`[data-test=so-pause][data-id="${CSS.escape(o.id)}"]`)?.focus();
  }

  /**
   * Changes a live order's amount, schedule or memo in a dialog; only what differs from the
   * order is sent. Its payee, first date (the day a weekly or monthly order runs on) and the
   * payments made so far stay as they are.
   */
  function editDialog(o: StandingOrder) {
    const amountIn = h('input', { id: 'so-edit-amount', inputmode: 'decimal', autocomplete: 'off', required: true, value: o.amount });
    const intervalIn = h('input', { id: 'so-edit-interval', type: 'number', min: 1, max: MAX_INTERVAL, step: 1, inputmode: 'numeric', required: true, value: String(o.schedule.interval) });
    // A test order's own period ("second") stays choosable, so an unchanged schedule is not sent.
    const choices = EVERY_CHOICES.some((c) => c.value === o.schedule.every) ? EVERY_CHOICES : [...EVERY_CHOICES, { value: o.schedule.every, label: o.schedule.every }];
    const everyIn = h('select', { id: 'so-edit-every' }, choices.map((c) => h('option', { value: c.value }, `${c.label}(s)`)));
    everyIn.value = o.schedule.every;
    const timeIn = h('input', { id: 'so-edit-time', type: 'time', required: true, value: o.schedule.time });
    const memoIn = h('input', { id: 'so-edit-memo', maxlength: MAX_MEMO, autocomplete: 'off', value: o.memo });
    const editPreview = h('p', { id: 'so-edit-preview', class: 'payee', 'aria-live': 'polite' });
    const editNote = h('p', { id: 'so-edit-note', class: 'muted small', hidden: true });
    const editError = h('p', { id: 'so-edit-error', class: 'error', role: 'alert', hidden: true });
    const cancelBtn = h('button', { id: 'so-edit-cancel', type: 'button' }, 'Cancel');
    // Outside the form (the dialog's actions), yet its submit button: Enter in a field saves too.
    const save = h('button', { id: 'so-edit-save', type: 'submit', form: 'so-edit-form', class: 'primary' }, 'Save changes');
    const editForm = h('form', { id: 'so-edit-form', class: 'form', novalidate: true },
      h('p', { class: 'muted small' }, `Pays ${payeeOf(o)} from ${store.byId(o.from_account_id)?.number ?? 'your account'}, in ${o.currency}. `
        + 'Changes count from the next payment; payments made so far stay as they were. The payee and the first date '
        + `(${o.start_at}, which sets the day it runs on) stay too.`),
      field('Amount', amountIn, 'Paid each time, e.g. 1250.50'),
      h('fieldset', { class: 'schedule' },
        h('legend', null, `When (${o.time_zone})`),
        h('div', { class: 'row-fields' }, field('Every', intervalIn), field('Period', everyIn), field('At', timeIn))),
      field('Memo (optional)', memoIn),
      editPreview, editNote, editError);
    const modal = openModal('so-edit-dialog', `Change the standing order to ${payeeOf(o)}`, [editForm], [cancelBtn, save], () => modal.close());
    modal.root.dataset.orderId = o.id;
    const inputs = (): OrderEdit => ({ amount: amountIn.value, memo: memoIn.value, every: everyIn.value, interval: intervalIn.value, time: timeIn.value });

    function renderEditPreview() {
      const s = { every: everyIn.value as Every, interval: Math.max(1, Number(intervalIn.value) || 1), time: hhmmOf(timeIn.value) ?? timeIn.value };
      editPreview.textContent = scheduleWords(s, o.start_at, o.time_zone);
      const note = shortMonthNote(s, o.start_at);
      editNote.textContent = note ?? '';
      editNote.hidden = !note;
    }
    for (const input of [amountIn, intervalIn, timeIn, memoIn]) input.addEventListener('input', () => { showError(editError, null); renderEditPreview(); });
    everyIn.addEventListener('change', () => { showError(editError, null); renderEditPreview(); });
    cancelBtn.addEventListener('click', () => modal.close());
    renderEditPreview();
    amountIn.focus();
    amountIn.select();

    editForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(editError, null);
      delete editError.dataset.code;
      const checked = orderChange(o, inputs());
      if ('field' in checked) {
        showError(editError, checked.text);
        ({ amount: amountIn, memo: memoIn, every: everyIn, interval: intervalIn, time: timeIn } as Record<keyof OrderEdit, HTMLElement>)[checked.field].focus();
        return;
      }
      const change = checked.change;
      if (Object.keys(change).length === 0) {
        showError(editError, 'Nothing to save: change the amount, the schedule or the memo first, or press Cancel.');
        amountIn.focus();
        return;
      }
      void busy(save, async () => {
        try {
          const after = await api.standingOrderUpdate(o.id, change);
          modal.close();
          orders = orders.map((x) => (x.id === after.id ? after : x));
          renderList(true);
          setResult(listResult, `Changed the standing order to ${payeeOf(after)}: ${changeWords(change, after)}. `
            + (after.status === 'active' ? `Next payment ${nextRunText(after)}.` : 'It stays paused until you resume it.'),
          'changed', { 'data-order-id': after.id, 'data-amount': after.amount });
          toast('Standing order changed', 'success');
          if (runsOf === after.id) renderRunsHead(after);
          tbody.querySelector<HTMLElement>(`[data-test=so-edit][data-id="${CSS.escape(after.id)}"]`)?.focus();
          void loadList(true);
        } catch (err) {
          if (isSessionLost(err)) { modal.close(); return; }
          showError(editError, err, { ...ERRORS, not_found: 'That standing order is gone' });
          editError.dataset.code = toIpcError(err).code;
        }
      });
    });
  }

  async function cancelOrder(o: StandingOrder, button: HTMLButtonElement) {
    const ok = await confirmDialog('Cancel this standing order?',
      `No payment of ${formatMoney(o.amount, o.currency)} to ${payeeOf(o)} (${scheduleWords(o.schedule, o.start_at, o.time_zone).replace(/^Every/, 'every')}) `
      + 'is made after this, and one waiting to be tried again is dropped. This cannot be undone.',
      'Cancel the order', true, 'Keep it');
    if (!ok) return;
    setResult(listResult, null);
    showError(listError, null);
    await busy(button, async () => {
      try {
        await api.standingOrderCancel(o.id);
        orders = orders.map((x) => (x.id === o.id ? { ...x, status: 'cancelled', next_run_at: null } : x));
        renderList(true);
        setResult(listResult, `Cancelled the standing order to ${payeeOf(o)}. Nothing more is paid by it.`, 'cancelled', { 'data-order-id': o.id });
        toast('Standing order cancelled', 'success');
      } catch (err) {
        showError(listError, err, { ...ERRORS, not_found: 'That standing order is gone' });
      }
      await loadList(true);
    });
    (tbody.querySelector<HTMLElement>(`[data-test=so-runs][data-id="${CSS.escape(o.id)}"]`) ?? listTitle).focus();
  }

  // ---- one order's runs

  function renderRunsHead(o: StandingOrder) {
    runsTitle.textContent = `Payments to ${payeeOf(o)}`;
    runsSchedule.textContent = `${formatMoney(o.amount, o.currency)}, ${scheduleWords(o.schedule, o.start_at, o.time_zone).replace(/^Every/, 'every')}. `
      + `Newest first. ${STATUS_WORDS[o.status]}${o.status === 'active' ? `: next payment ${nextRunText(o)}` : ''}.`;
  }

  /** A run of an order to a key: its inter-bank payment's outcome, asked of the bank on "Check". */
  function paymentCheck(paymentId: string): HTMLElement {
    const known = checked.get(paymentId);
    const text = h('span', { class: 'hint', style: 'display:block', 'data-test': 'so-run-payment', 'aria-live': 'polite' },
      known?.text ?? 'The other bank decides whether it is paid.');
    if (known) text.dataset.paymentStatus = known.status;
    const button = h('button', {
      type: 'button', class: 'small', 'data-test': 'so-run-check', 'data-payment-id': paymentId,
      'aria-label': 'Check whether the other bank took this payment',
    }, 'Check');
    button.addEventListener('click', () => void busy(button, async () => {
      try {
        const p = await api.interbankPayment(paymentId);
        const said = { status: p.status, text: interbankRunText(p) };
        checked.set(paymentId, said);
        text.textContent = said.text;
        text.dataset.paymentStatus = said.status;
        showError(runsError, null);
      } catch (err) {
        if (!isSessionLost(err)) showError(runsError, err, { not_found: 'That payment is not known to the bank' });
      }
    }));
    return h('span', { style: 'display:block' }, text, button);
  }

  function runRow(r: OrderRun, o: StandingOrder): HTMLElement {
    const tone = runTone(r.status);
    const payment = r.status === 'done' ? r.interbank_payment_id ?? null : null;
    const reference = r.transfer_id ?? r.interbank_payment_id ?? null;
    return h('tr', {
      'data-test': 'so-run', 'data-status': r.status, 'data-due': r.due, 'data-transfer-id': r.transfer_id ?? '', 'data-code': r.refusal_code ?? '',
      'data-payment-id': r.interbank_payment_id ?? undefined, 'data-review-id': r.review_id ?? undefined, class: tone === 'error' ? 'row-error' : null,
    },
    h('td', { class: 'nowrap' }, dueText(r, o.schedule, o.time_zone)),
    h('td', { 'data-test': 'so-run-words', class: `${tone}-cell`, title: `Tried ${formatInZone(r.ran_at, o.time_zone, true)} (${o.time_zone})` },
      runWords(r, o.time_zone),
      // Where the customer can follow (or cancel) it.
      tone === 'held' ? h('span', { class: 'hint', style: 'display:block' }, `${o.to.key ? 'Sent to the other bank' : 'Paid'} once approved: see Reviews`) : null),
    h('td', { class: 'num' }, String(r.attempts)),
    h('td', { title: reference ?? '' },
      h('span', { class: 'mono nowrap' }, reference ? `${r.transfer_id ? '' : 'payment '}${reference.slice(0, 8)}…` : '—'),
      payment ? paymentCheck(payment) : null));
  }

  async function loadRuns(quiet = false) {
    const id = runsOf;
    const o = orders.find((x) => x.id === id);
    if (!id || !o) return;
    try {
      const { items } = await api.standingOrderRuns(id);
      if (runsOf !== id) return;
      renderRunsHead(orders.find((x) => x.id === id) ?? o);
      const key = JSON.stringify(items);
      if (key !== runsKey) {
        runsKey = key;
        clear(runsBody, items.map((r) => runRow(r, o)));
      }
      runsEmpty.textContent = o.next_run_at && o.status === 'active'
        ? `Nothing paid yet: the first payment is due ${nextRunText(o)}.`
        : 'Nothing was paid by this order.';
      runsEmpty.hidden = items.length > 0;
      runsTable.hidden = items.length === 0;
      runsPanel.dataset.count = String(items.length);
      showError(runsError, null);
    } catch (err) {
      if (runsOf === id) showError(runsError, err, { not_found: 'That standing order is gone' }, quiet);
    }
  }

  function openRuns(id: string) {
    const o = orders.find((x) => x.id === id);
    if (!o) return;
    runsOf = id;
    runsKey = '';
    clear(runsBody);
    runsPanel.dataset.orderId = id;
    delete runsPanel.dataset.count;
    renderRunsHead(o);
    runsEmpty.hidden = true;
    runsTable.hidden = true;
    runsNone.hidden = true;
    runsSchedule.hidden = false;
    runsActions.hidden = false;
    renderList(true);
    runsTitle.focus();
    void loadRuns();
  }

  function closeRuns(moveFocus = true) {
    const id = runsOf;
    runsOf = null;
    runsKey = '';
    clear(runsBody);
    delete runsPanel.dataset.orderId;
    delete runsPanel.dataset.count;
    runsTitle.textContent = 'Payments';
    for (const part of [runsSchedule, runsTable, runsEmpty, runsActions]) part.hidden = true;
    showError(runsError, null);
    runsNone.hidden = false;
    renderList(true);
    if (!moveFocus) return;
    const button = id ? tbody.querySelector<HTMLElement>(`[data-test=so-runs][data-id="${CSS.escape(id)}"]`) : null;
    (button ?? listTitle).focus();
  }

  runsRefresh.addEventListener('click', () => void busy(runsRefresh, async () => { await loadList(); await loadRuns(); }));
  runsClose.addEventListener('click', () => closeRuns());
  runsPanel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && runsOf) { ev.preventDefault(); closeRuns(); } });

  async function loadZone() {
    try {
      const settings = await api.notificationSettings();
      zone = settings.time_zone || 'UTC';
    } catch { /* the server decides; the preview says "your time zone" */ }
    const today = todayInZone(zoneNow());
    start.min = today;
    end.min = start.value || today;
    if (!start.value || start.value < today) start.value = today;
    renderPreview();
  }

  // While the view is shown: new runs (and orders changed elsewhere) appear by themselves.
  ctx.poll(async () => {
    if (el.hidden || !el.isConnected) return;
    await loadList(true);
    if (runsOf) await loadRuns(true);
  }, REFRESH_MS);

  renderPreview();

  return {
    id: 'standing-orders',
    label: 'Standing orders',
    el,
    show() {
      store.refresh().then(() => showError(viewError, null), (err) => showError(viewError, err));
      payees.refresh().catch(() => undefined);
      void loadZone();
      void loadList();
      if (runsOf) void loadRuns();
    },
  };
}
