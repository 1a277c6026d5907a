// Exchange: move money between currencies at the bank's rate. "Get quote" shows the rate, what
// leaves and what arrives (and, for someone else's account, whom it pays) with a countdown: the
// rate holds about a minute. Only "Confirm exchange" moves money, once per quote (one
// Idempotency-Key per quote, reused when that confirmation is retried). An expired quote asks
// for a new one. The branch admin sets the rates (adminFxView).
import { api, toIpcError } from '../ipc';
import { isSessionLost } from '../errors';
import { busy, clear, confirmDialog, field, fillSelect, fmtDateTime, h, setResult, showError, toast } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { Account, AccountLookup, FxQuote, FxRate } from '../types';
import { countdownText, exchangeErrorText, quoteAmountsText, quoteErrorText, quoteRateText, rateProblem, rateText, secondsLeft, trimRate } from '../fx';
import { MAX_MEMO, type AccountStore } from './store';
import { confirmSentence, lookupErrorText } from './payees';
import { isRetryable, newIdempotencyKey } from './paykey';

export const CURRENCIES = ['INR', 'USD', 'EUR'];
const ANOTHER = 'new';

/** The "To" choices for an exchange from `from`: the customer's accounts in another currency, then another number. */
export function exchangeTargets(from: Pick<Account, 'id' | 'currency'> | undefined, accounts: Pick<Account, 'id' | 'number' | 'currency' | 'status'>[]): { value: string; label: string }[] {
  const own = accounts
    .filter((a) => from && a.id !== from.id && a.currency !== from.currency && a.status !== 'closed')
    .map((a) => ({ value: a.id, label: `Your account ${a.number} (${a.currency})` }));
  return [...own, { value: ANOTHER, label: 'Another account number' }];
}

/** The rate for a pair, if the bank has one. */
export function rateFor(rates: FxRate[], from: string, to: string): FxRate | undefined {
  return rates.find((r) => r.from === from && r.to === to);
}

interface Shown {
  quote: FxQuote;
  from: Account;
  to_account_number: string;
  memo: string;
  /** Whom it pays: the look-up for another number, or null for the customer's own account. */
  payee: AccountLookup | null;
  ownTo: Account | null;
  key: string;
  /** A confirmation was sent and no answer came: pressing again asks with the same key. */
  uncertain: boolean;
}

export function exchangeView(store: AccountStore): View {
  let rates: FxRate[] = [];
  let shown: Shown | null = null;
  let timer: number | null = null;
  let generation = 0;

  const from = h('select', { id: 'fx-from', required: true });
  const toChoice = h('select', { id: 'fx-to-choice' });
  const to = h('input', { id: 'fx-to', autocomplete: 'off', spellcheck: 'false', inputmode: 'numeric', placeholder: 'Account number', maxlength: 34 });
  const toField = field('To account number', to, 'An account at this bank in another currency');
  const amount = h('input', { id: 'fx-amount', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00', required: true });
  const memo = h('input', { id: 'fx-memo', maxlength: MAX_MEMO, autocomplete: 'off' });
  const rateHint = h('p', { id: 'fx-rate-hint', class: 'hint', 'aria-live': 'polite' });
  const quoteBtn = h('button', { id: 'fx-get-quote', type: 'submit', class: 'primary' }, 'Get quote');
  const error = h('p', { id: 'fx-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'fx-result', class: 'result', role: 'status', hidden: true });

  const payeeText = h('p', { id: 'fx-payee-confirm', class: 'payee' });
  const rateLine = h('p', { id: 'fx-rate' });
  const amountsLine = h('p', { id: 'fx-amounts', class: 'fx-amounts' });
  const countdown = h('p', { id: 'fx-countdown', role: 'timer', 'aria-live': 'off', class: 'muted' });
  const expired = h('p', { id: 'fx-expired', class: 'notice', role: 'alert', hidden: true });
  const confirmBtn = h('button', { id: 'fx-confirm', type: 'button', class: 'primary' }, 'Confirm exchange');
  const requote = h('button', { id: 'fx-requote', type: 'button', class: 'primary', hidden: true }, 'Get a new quote');
  const cancelBtn = h('button', { id: 'fx-quote-cancel', type: 'button' }, 'Cancel');
  const panel = h('div', { id: 'fx-quote-panel', class: 'confirm-panel', role: 'group', 'aria-labelledby': 'fx-quote-title', tabindex: -1, hidden: true },
    h('h3', { id: 'fx-quote-title' }, 'Your quote'),
    payeeText, rateLine, amountsLine, countdown, expired,
    h('div', { class: 'actions' }, confirmBtn, requote, cancelBtn));

  const form = h('form', { id: 'fx-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'fx-form-title' },
    h('h2', { id: 'fx-form-title' }, 'Get a quote'),
    field('From account', from),
    field('To', toChoice),
    toField,
    field('Amount to send', amount, 'In the currency of the account it leaves, e.g. 1000.00'),
    field('Memo (optional)', memo),
    rateHint, error, result, quoteBtn, panel);

  const ratesBody = h('tbody', { id: 'fx-rates-rows' });
  const ratesEmpty = h('p', { id: 'fx-rates-empty', class: 'muted', hidden: true }, 'The bank has set no exchange rates yet.');
  const ratesError = h('p', { id: 'fx-rates-error', class: 'error', role: 'alert', hidden: true });
  const ratesTable = h('table', { id: 'fx-rates', class: 'table' },
    h('caption', { class: 'sr-only' }, "The bank's exchange rates"),
    h('thead', null, h('tr', null, ['Rate', 'Set'].map((c) => h('th', { scope: 'col' }, c)))),
    ratesBody);

  const el = h('section', { 'aria-labelledby': 'fx-title' },
    h('h1', { id: 'fx-title' }, 'Exchange'),
    h('p', { class: 'muted' }, 'Send money to an account in another currency at the bank\'s rate. A quote holds its rate for about a minute; nothing moves until you confirm it.'),
    h('div', { class: 'two-col' },
      form,
      h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'fx-rates-title' },
        h('h2', { id: 'fx-rates-title' }, "The bank's rates"), ratesError, ratesTable, ratesEmpty)));

  function syncTargets() {
    const before = toChoice.value;
    fillSelect(toChoice, exchangeTargets(store.byId(from.value), store.list));
    if (toChoice.value !== before) invalidate();
    toField.hidden = toChoice.value !== ANOTHER;
    renderHint();
  }

  function renderHint() {
    const f = store.byId(from.value);
    const target = store.byId(toChoice.value);
    const r = f && target ? rateFor(rates, f.currency, target.currency) : undefined;
    rateHint.textContent = !f || !target ? ''
      : r ? `Rate now: ${rateText(r)} (set ${fmtDateTime(r.set_at)}). The quote fixes it for you.`
        : `The bank has no ${f.currency} to ${target.currency} rate at the moment.`;
  }

  function stopTimer() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  function hidePanel() {
    stopTimer();
    shown = null;
    panel.hidden = true;
    quoteBtn.hidden = false;
  }

  function invalidate() {
    generation++;
    if (shown) hidePanel();
  }

  store.subscribe(() => {
    const before = from.value;
    fillSelect(from, store.options());
    if (from.value !== before) invalidate();
    syncTargets();
  });
  from.addEventListener('change', () => { invalidate(); syncTargets(); });
  toChoice.addEventListener('change', () => { invalidate(); toField.hidden = toChoice.value !== ANOTHER; renderHint(); });
  for (const input of [to, amount, memo]) input.addEventListener('input', invalidate);

  /** Redraws the countdown; at 0 the quote can no longer be confirmed (unless an answer is owed). */
  function tick() {
    const s = shown;
    if (!s) return;
    const left = secondsLeft(s.quote.expires_at, Date.now());
    countdown.textContent = countdownText(left);
    countdown.dataset.secondsLeft = String(left);
    if (left > 0) return;
    stopTimer();
    expire(s.uncertain
      ? 'This quote has expired. If your last confirmation reached the bank, "Confirm exchange" shows its result; otherwise get a new quote.'
      : countdownText(0));
  }

  function expire(text: string) {
    const s = shown;
    panel.dataset.state = 'expired';
    countdown.hidden = true;
    expired.textContent = text;
    expired.hidden = false;
    const hadFocus = document.activeElement === confirmBtn;
    confirmBtn.hidden = !s?.uncertain;
    requote.hidden = false;
    if (hadFocus || document.activeElement === document.body) requote.focus();
  }

  function showQuote(s: Shown) {
    shown = s;
    showError(error, null);
    const q = s.quote;
    payeeText.textContent = s.payee
      ? confirmSentence(s.payee)
      : `To your account ${s.ownTo?.number ?? s.to_account_number} (${q.to_currency})`;
    rateLine.textContent = quoteRateText(q);
    amountsLine.textContent = `${quoteAmountsText(q)} in account ${s.payee ? s.payee.account_number_masked : s.to_account_number}.`;
    Object.assign(panel.dataset, {
      quoteId: q.id, rate: q.rate, fromAmount: q.from_amount, fromCurrency: q.from_currency, toAmount: q.to_amount,
      toCurrency: q.to_currency, expiresAt: q.expires_at, state: 'live',
    });
    expired.hidden = true;
    countdown.hidden = false;
    confirmBtn.hidden = false;
    requote.hidden = true;
    panel.hidden = false;
    quoteBtn.hidden = true;
    stopTimer();
    tick();
    timer = window.setInterval(tick, 1000);
    panel.focus();
  }

  /** Asks for a quote for what the form says (and, for another number, whom it pays). */
  async function getQuote(button: HTMLButtonElement) {
    showError(error, null);
    delete error.dataset.code;
    setResult(result, null);
    const f = store.byId(from.value);
    if (!f) { showError(error, 'Choose the account to send from'); from.focus(); return; }
    const ownTo = toChoice.value === ANOTHER ? null : store.byId(toChoice.value) ?? null;
    const number = ownTo ? ownTo.number : to.value.trim();
    if (!number) { showError(error, 'Enter the account number to send to'); to.focus(); return; }
    if (!/^[A-Za-z0-9]{1,34}$/.test(number)) { showError(error, 'An account number is 1 to 34 letters or digits'); to.focus(); return; }
    if (number === f.number) { showError(error, 'Choose another account than the one it leaves'); (ownTo ? toChoice : to).focus(); return; }
    const problem = validateAmount(amount.value);
    if (problem) { showError(error, problem); amount.focus(); return; }
    if (memo.value.length > MAX_MEMO) { showError(error, `Memo must be at most ${MAX_MEMO} characters`); memo.focus(); return; }
    const asked = ++generation;
    await busy(button, async () => {
      let payee: AccountLookup | null = null;
      let looking = !ownTo;
      try {
        // Someone else's account: whom it pays is shown with the quote (confirmation of payee).
        if (!ownTo) payee = await api.accountLookup(number);
        looking = false;
        const quote = await api.fxQuote(f.id, number, amount.value.trim());
        if (asked !== generation) return;
        showQuote({ quote, from: f, to_account_number: number, memo: memo.value, payee, ownTo, key: newIdempotencyKey(), uncertain: false });
      } catch (err) {
        if (asked !== generation || isSessionLost(err)) return;
        hidePanel();
        const e = toIpcError(err);
        showError(error, looking ? lookupErrorText(e).replace(/ Saved payees can still be paid offline[^.]*\./, '') : quoteErrorText(e, f.currency));
        error.dataset.code = e.code;
        (looking ? to : amount).focus();
      }
    });
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (shown) { panel.focus(); return; }
    void getQuote(quoteBtn);
  });
  requote.addEventListener('click', () => {
    hidePanel();
    void getQuote(requote).then(() => { if (!shown) quoteBtn.focus(); });
  });
  cancelBtn.addEventListener('click', () => {
    hidePanel();
    setResult(result, 'Nothing was exchanged: you cancelled the quote.', 'cancelled');
    quoteBtn.focus();
  });

  confirmBtn.addEventListener('click', () => {
    const s = shown;
    if (!s) return;
    showError(error, null);
    delete error.dataset.code;
    cancelBtn.disabled = true;
    void busy(confirmBtn, async () => {
      try {
        const t = await api.fxExchange({
          quote_id: s.quote.id, from_account_id: s.from.id, to_account_number: s.to_account_number, amount: s.quote.from_amount,
          memo: s.memo, idempotency_key: s.key,
        });
        hidePanel();
        setResult(result,
          `Exchanged ${formatMoney(t.amount, t.currency)} for ${formatMoney(t.to_amount, t.to_currency)} at ${rateText({ from: t.currency, to: t.to_currency, rate: t.rate })}. `
          + `New balance of ${s.from.number}: ${formatMoney(t.balance_after, t.currency)}.`,
          'committed', {
            'data-transfer-id': t.id, 'data-from-amount': t.amount, 'data-to-amount': t.to_amount, 'data-to-currency': t.to_currency,
            'data-balance-after': t.balance_after, 'data-rate': t.rate,
          });
        amount.value = '';
        memo.value = '';
        toast('Exchange done', 'success');
        store.refresh().catch(() => undefined);
        amount.focus();
      } catch (err) {
        if (isSessionLost(err)) return;
        const e = toIpcError(err);
        if (isRetryable(e)) {
          // The same quote, the same key: a second press never exchanges twice.
          s.uncertain = true;
          showError(error, `No answer from the bank (${e.detail || e.code}). Press "Confirm exchange" again: it will not be exchanged twice.`);
          error.dataset.code = e.code;
          error.dataset.retry = 'true';
          if (secondsLeft(s.quote.expires_at, Date.now()) === 0) tick();
          confirmBtn.focus();
          return;
        }
        error.dataset.code = e.code;
        if (e.code === 'quote_expired' || e.code === 'quote_used') {
          s.uncertain = false;
          stopTimer();
          expire(exchangeErrorText(e));
          return;
        }
        hidePanel();
        showError(error, exchangeErrorText(e));
        error.dataset.code = e.code;
        quoteBtn.focus();
      } finally {
        cancelBtn.disabled = false;
      }
    });
  });

  async function loadRates() {
    try {
      rates = (await api.fxRates()).rates;
      clear(ratesBody, rates.map((r) => h('tr', { 'data-test': 'fx-rate', 'data-from': r.from, 'data-to': r.to, 'data-rate': r.rate },
        h('td', { class: 'mono' }, rateText(r)),
        h('td', { class: 'nowrap' }, fmtDateTime(r.set_at)))));
      ratesEmpty.hidden = rates.length > 0;
      ratesTable.hidden = rates.length === 0;
      showError(ratesError, null);
      renderHint();
    } catch (err) { showError(ratesError, err); }
  }

  return {
    id: 'exchange',
    label: 'Exchange',
    el,
    show() {
      store.refresh().catch((err) => showError(error, err));
      void loadRates();
    },
  };
}

/** Branch admin: the bank's exchange rates, and setting one (after confirmation; audited by the server). */
export function adminFxView(): View {
  let rates: FxRate[] = [];
  const tbody = h('tbody', { id: 'admin-fx-rows' });
  const empty = h('p', { id: 'admin-fx-empty', class: 'muted', hidden: true }, 'No rates yet: customers cannot exchange until you set one.');
  const listError = h('p', { id: 'admin-fx-list-error', class: 'error', role: 'alert', hidden: true });
  const table = h('table', { id: 'admin-fx-rates', class: 'table' },
    h('caption', { class: 'sr-only' }, 'Exchange rates'),
    h('thead', null, h('tr', null, ['From', 'To', 'Rate', 'Set', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);

  const fromSel = h('select', { id: 'admin-fx-from' }, CURRENCIES.map((c) => h('option', { value: c }, c)));
  const toSel = h('select', { id: 'admin-fx-to' }, CURRENCIES.map((c) => h('option', { value: c }, c)));
  toSel.value = 'USD';
  const rate = h('input', { id: 'admin-fx-rate', inputmode: 'decimal', autocomplete: 'off', placeholder: 'e.g. 0.012', 'aria-describedby': 'admin-fx-rate-hint' });
  const hint = h('small', { id: 'admin-fx-rate-hint', class: 'hint' }, 'How much of the "to" currency one unit of the "from" currency buys: above 0, up to 8 decimals.');
  const save = h('button', { id: 'admin-fx-save', type: 'submit', class: 'primary' }, 'Set rate');
  const error = h('p', { id: 'admin-fx-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'admin-fx-result', class: 'result', role: 'status', hidden: true });
  const form = h('form', { id: 'admin-fx-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'admin-fx-form-title' },
    h('h2', { id: 'admin-fx-form-title' }, 'Set a rate'),
    h('div', { class: 'row-fields' }, field('From', fromSel), field('To', toSel)),
    h('div', { class: 'field' }, h('label', { for: rate.id }, 'Rate'), rate, hint),
    error, result, save);

  const el = h('section', { 'aria-labelledby': 'admin-fx-title' },
    h('h1', { id: 'admin-fx-title' }, 'Exchange rates'),
    h('p', { class: 'muted' }, 'The rates customers exchange at. A new rate counts for every quote from now on; quotes already given keep theirs.'),
    h('div', { class: 'two-col' },
      h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'admin-fx-list-title' },
        h('h2', { id: 'admin-fx-list-title' }, 'Rates now'), listError, h('div', { class: 'table-scroll' }, table), empty),
      form));

  function render() {
    clear(tbody, rates.map((r) => {
      const edit = h('button', { type: 'button', class: 'small', 'data-test': 'admin-fx-edit', 'aria-label': `Change the ${r.from} to ${r.to} rate` }, 'Change');
      edit.addEventListener('click', () => { fromSel.value = r.from; toSel.value = r.to; rate.value = trimRate(r.rate); rate.focus(); rate.select(); });
      return h('tr', { 'data-test': 'admin-fx-rate', 'data-from': r.from, 'data-to': r.to, 'data-rate': r.rate },
        h('td', null, r.from), h('td', null, r.to),
        h('td', { class: 'mono' }, rateText(r)),
        h('td', { class: 'nowrap' }, fmtDateTime(r.set_at)),
        h('td', null, edit));
    }));
    empty.hidden = rates.length > 0;
    table.hidden = rates.length === 0;
  }

  async function load() {
    try {
      rates = (await api.fxRates()).rates;
      render();
      showError(listError, null);
    } catch (err) { showError(listError, err); }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    const pair = { from: fromSel.value, to: toSel.value, rate: rate.value.trim() };
    if (pair.from === pair.to) { showError(error, 'Choose two different currencies'); toSel.focus(); return; }
    const problem = rateProblem(pair.rate);
    if (problem) { showError(error, problem); rate.focus(); return; }
    const old = rateFor(rates, pair.from, pair.to);
    void (async () => {
      const ok = await confirmDialog(`Set the ${pair.from} to ${pair.to} rate?`,
        `${rateText(pair)}${old ? ` (now ${rateText(old)})` : ' (no rate until now)'}. Every new quote uses it at once.`, 'Set rate');
      if (!ok) return;
      await busy(save, async () => {
        try {
          rates = (await api.adminFxRatesSet([pair])).rates;
          render();
          setResult(result, `The ${pair.from} to ${pair.to} rate is now ${rateText(pair)}.`, 'saved', { 'data-from': pair.from, 'data-to': pair.to, 'data-rate': pair.rate });
          rate.value = '';
        } catch (err) {
          showError(error, err);
        }
      });
      rate.focus();
    })();
  });

  return { id: 'admin-fx', label: 'Exchange rates', el, show() { void load(); } };
}
