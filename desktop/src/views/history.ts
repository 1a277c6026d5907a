// History: an account's entries with filters, paging as the list scrolls, and CSV export.
import { api, type HistoryFilter } from '../ipc';
import { busy, clear, dayBound, field, fillSelect, fmtDateTime, h, label, setResult, showError } from '../dom';
import { formatSigned, formatMoney } from '../money';
import type { View } from '../shell';
import type { Entry, EntryKind } from '../types';
import { STATEMENT_ERRORS, savedStatementText, statementMonths } from '../statements';
import type { AccountStore } from './store';

const PAGE = 50;
const CREDIT = new Set(['deposit', 'transfer_in', 'interbank_in', 'fx_in']);

/** Who was on the other side: an account number, another bank ("to bank 00000002"), or cash. */
export function counterpartyText(e: Pick<Entry, 'kind' | 'counterparty_account_number' | 'counterparty_bank_id'>): string {
  if (e.kind === 'fx_out' || e.kind === 'fx_in') return 'Currency exchange';
  if (e.kind === 'interbank_out' || e.kind === 'interbank_in') {
    const bank = e.counterparty_bank_id ? `bank ${e.counterparty_bank_id}` : 'another bank';
    return `${e.kind === 'interbank_out' ? 'to' : 'from'} ${bank}`;
  }
  return e.counterparty_account_number ?? 'Cash';
}

export function historyView(store: AccountStore): View {
  let cursor: string | null = null;
  let loading = false;
  let generation = 0;

  const account = h('select', { id: 'history-account' });
  const kind = h('select', { id: 'history-kind' },
    h('option', { value: '' }, 'All'),
    ...(['deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'interbank_out', 'interbank_in'] as const).map((k) => h('option', { value: k }, label(k))));
  const from = h('input', { id: 'history-from', type: 'date' });
  const to = h('input', { id: 'history-to', type: 'date' });
  const apply = h('button', { id: 'history-apply', type: 'submit' }, 'Show');
  const exportBtn = h('button', { id: 'history-export', type: 'button' }, 'Export CSV');
  const exportResult = h('p', { id: 'history-export-result', class: 'result', role: 'status', hidden: true });
  const error = h('p', { id: 'history-error', class: 'error', role: 'alert', hidden: true });
  const tbody = h('tbody', { id: 'history-rows' });
  const empty = h('p', { id: 'history-empty', class: 'muted', hidden: true }, 'No transactions match.');
  const list = h('div', { id: 'history-list', class: 'scroll-list', tabindex: 0, 'aria-label': 'Transactions' },
    h('table', { class: 'table' },
      h('thead', null, h('tr', null, ['Date', 'Kind', 'Amount', 'Counterparty', 'Memo', 'Balance after'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody),
    empty);
  const more = h('button', { id: 'history-more', type: 'button', hidden: true }, 'Load more');
  const filters = h('form', { id: 'history-filters', class: 'filters', novalidate: true },
    field('Account', account), field('Kind', kind), field('From', from), field('To', to),
    h('div', { class: 'actions' }, apply, exportBtn));

  // Monthly statements (PDF): months counted in UTC, from the account's opening month to now.
  const stAccount = h('select', { id: 'statement-account' });
  const stMonth = h('select', { id: 'statement-month' });
  const stDownload = h('button', { id: 'statement-download', type: 'submit', class: 'primary' }, 'Download statement');
  const stError = h('p', { id: 'statement-error', class: 'error', role: 'alert', hidden: true });
  const stResult = h('p', { id: 'statement-result', class: 'result', role: 'status', hidden: true });
  const statementForm = h('form', { id: 'statement-form', class: 'statement-form', novalidate: true, 'aria-labelledby': 'statement-title' },
    field('Account', stAccount), field('Month', stMonth), stDownload);

  const el = h('section', { 'aria-labelledby': 'history-title' },
    h('h1', { id: 'history-title' }, 'History'),
    h('div', { class: 'panel' }, filters, error, exportResult),
    h('div', { class: 'panel' }, list, h('div', { class: 'actions' }, more)),
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'statement-title' },
      h('h2', { id: 'statement-title' }, 'Monthly statement'),
      h('p', { class: 'muted small' }, 'A PDF with the opening and closing balance, every entry of the month and a chart of the balance, saved to your Downloads folder. '
        + 'Months are counted in UTC; this month\'s statement runs to today.'),
      statementForm, stError, stResult));

  function fillMonths() {
    const a = store.byId(stAccount.value);
    fillSelect(stMonth, a ? statementMonths(a.opened_at, new Date()) : []);
  }
  stAccount.addEventListener('change', () => { fillMonths(); setResult(stResult, null); showError(stError, null); });
  stMonth.addEventListener('change', () => { setResult(stResult, null); showError(stError, null); });
  statementForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(stError, null);
    setResult(stResult, null);
    const a = store.byId(stAccount.value);
    if (!a) { showError(stError, 'Choose an account'); stAccount.focus(); return; }
    if (!stMonth.value) { showError(stError, 'Choose a month'); stMonth.focus(); return; }
    const month = stMonth.value;
    const name = stMonth.selectedOptions[0]?.textContent ?? month;
    void busy(stDownload, async () => {
      try {
        const saved = await api.statementDownload(a.id, month);
        setResult(stResult, savedStatementText(a.number, name, saved), 'saved', {
          'data-path': saved.path, 'data-month': saved.month, 'data-bytes': String(saved.bytes), 'data-account-id': a.id,
        });
        stResult.scrollIntoView({ block: 'nearest' });
      } catch (err) {
        showError(stError, err, STATEMENT_ERRORS);
      }
    });
  });

  function filter(): HistoryFilter | null {
    if (!account.value) return null;
    return { account_id: account.value, kind: (kind.value || undefined) as EntryKind | undefined, from: dayBound(from.value, false), to: dayBound(to.value, true) };
  }

  function row(e: Entry, currency: string): HTMLElement {
    const credit = CREDIT.has(e.kind);
    return h('tr', {
      'data-test': 'history-row', 'data-transfer-id': e.transfer_id, 'data-kind': e.kind, 'data-amount': e.amount, 'data-balance-after': e.balance_after,
      'data-counterparty-bank': e.counterparty_bank_id ?? undefined,
    },
      h('td', { class: 'nowrap' }, fmtDateTime(e.created_at)),
      h('td', null, label(e.kind)),
      h('td', { class: `num ${credit ? 'credit' : 'debit'}` }, formatSigned(e.amount, currency, credit)),
      h('td', { 'data-test': 'counterparty' }, counterpartyText(e)),
      h('td', { class: 'memo' }, e.memo),
      h('td', { class: 'num' }, formatMoney(e.balance_after, currency)));
  }

  async function load(reset: boolean) {
    const f = filter();
    if (!f) return;
    if (reset) { generation++; cursor = null; loading = false; }
    if (loading || (!reset && !cursor)) return;
    const gen = generation;
    loading = true;
    more.disabled = true;
    try {
      const page = await api.transactions({ ...f, limit: PAGE, cursor: reset ? undefined : cursor });
      if (gen !== generation) return;
      const currency = store.byId(f.account_id)?.currency ?? '';
      if (reset) clear(tbody);
      tbody.append(...page.items.map((e) => row(e, currency)));
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      empty.hidden = tbody.children.length > 0;
      showError(error, null);
    } catch (err) {
      if (gen === generation) showError(error, err);
    } finally {
      if (gen === generation) { loading = false; more.disabled = false; }
    }
    // A short first page may not fill the list: keep loading until it scrolls.
    if (gen === generation && cursor && list.scrollHeight <= list.clientHeight + 4) void load(false);
  }

  store.subscribe(() => {
    const before = account.value;
    fillSelect(account, store.options());
    if (account.value !== before) void load(true);
    // Months again each time: the list keeps the chosen month and grows when a new month begins.
    fillSelect(stAccount, store.options());
    fillMonths();
  });
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); void load(true); });
  for (const c of [account, kind, from, to]) c.addEventListener('change', () => void load(true));
  more.addEventListener('click', () => void load(false));
  list.addEventListener('scroll', () => {
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 120) void load(false);
  });

  exportBtn.addEventListener('click', () => {
    const f = filter();
    setResult(exportResult, null);
    if (!f) { showError(error, 'Choose an account'); return; }
    void busy(exportBtn, async () => {
      try {
        const r = await api.exportTransactions(f);
        setResult(exportResult, `Saved ${r.rows} row${r.rows === 1 ? '' : 's'} to ${r.path}`, 'saved', { 'data-rows': String(r.rows), 'data-path': r.path });
      } catch (err) { showError(error, err); }
    });
  });

  return {
    id: 'history',
    label: 'History',
    el,
    show() {
      store.refresh().then(() => load(true), (err) => showError(error, err));
    },
  };
}
