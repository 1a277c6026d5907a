// Accounts: one card per account and the selected account's balance over time.
import { api } from '../ipc';
import { compactNumber, lineChart } from '../chart';
import { clear, fmtDateTime, h, keepFocus, label, showError } from '../dom';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { Account } from '../types';
import type { AccountStore } from './store';

const CHART_ENTRIES = 200;

export function accountsView(store: AccountStore): View {
  let selected: string | null = null;
  let chartToken = 0;
  const error = h('p', { id: 'accounts-error', class: 'error', role: 'alert', hidden: true });
  const cards = h('div', { id: 'accounts', class: 'cards' });
  const chartTitle = h('h2', { id: 'balance-chart-title' }, 'Balance over time');
  const chartNote = h('p', { class: 'muted small', id: 'balance-chart-note' });
  const chartBox = h('div', { class: 'chart-box', id: 'balance-chart-box' });
  const el = h('section', { 'aria-labelledby': 'accounts-title' },
    h('h1', { id: 'accounts-title' }, 'Your accounts'),
    error, cards,
    h('div', { class: 'panel' }, chartTitle, chartBox, chartNote));

  function card(a: Account): HTMLElement {
    const owners = a.owners.length > 1 ? h('p', { class: 'muted small' }, 'Joint: ', a.owners.map((o) => o.full_name).join(', ')) : null;
    const isSel = a.id === selected;
    const select = h('button', { type: 'button', class: 'link', 'data-test': 'account-select', 'data-id': a.id, 'aria-pressed': String(isSel) }, isSel ? 'Showing chart' : 'Show balance chart');
    select.addEventListener('click', () => choose(a.id));
    const c = h('article', {
      class: `card account-card${isSel ? ' selected' : ''}`, 'data-test': 'account', 'data-number': a.number, 'data-id': a.id,
      'data-status': a.status, 'data-currency': a.currency,
    },
      h('div', { class: 'card-head' },
        h('span', { class: 'kind', 'data-test': 'kind' }, `${label(a.kind)} account`),
        h('span', { class: `status status-${a.status}`, 'data-test': 'status' }, a.status)),
      h('p', { class: 'number', 'data-test': 'number' }, a.number),
      h('p', { class: 'balance', 'data-test': 'balance', 'data-balance': a.balance, 'data-currency': a.currency }, formatMoney(a.balance, a.currency)),
      // Money on hold (an inter-bank payment not yet decided) cannot be spent.
      a.available_balance !== undefined && Number(a.available_balance) !== Number(a.balance)
        ? h('p', { class: 'muted small', 'data-test': 'available-balance' }, `Available ${formatMoney(a.available_balance, a.currency)}`)
        : null,
      owners,
      select);
    c.addEventListener('click', (ev) => { if (ev.target !== select) choose(a.id); });
    return c;
  }

  function render(list: Account[]) {
    if (!selected || !list.some((a) => a.id === selected)) selected = list[0]?.id ?? null;
    keepFocus(cards, () => clear(cards, list.length ? list.map(card) : h('p', { class: 'muted' }, 'You have no accounts yet.')));
  }

  function choose(id: string) {
    selected = id;
    render(store.list);
    void loadChart();
  }

  async function loadChart() {
    const token = ++chartToken;
    const a = store.list.find((x) => x.id === selected);
    if (!a) { clear(chartBox, lineChart([], { id: 'balance-chart', title: 'Balance over time', emptyText: 'No account' })); return; }
    chartTitle.textContent = `Balance over time — ${a.number}`;
    try {
      const page = await api.transactions({ account_id: a.id, limit: CHART_ENTRIES });
      if (token !== chartToken) return;
      const points = page.items.map((e) => ({ x: Date.parse(e.created_at), y: Number(e.balance_after) })).reverse();
      clear(chartBox, lineChart([{ label: a.number, points }], {
        id: 'balance-chart', title: `Balance of ${a.number} over time, in ${a.currency}`, width: 760, height: 220,
        yFormat: compactNumber, xFormat: (v) => fmtDateTime(new Date(v).toISOString()).slice(0, 16),
        emptyText: 'No transactions yet',
      }));
      chartNote.textContent = page.items.length
        ? `Last ${page.items.length} transaction${page.items.length === 1 ? '' : 's'}, in ${a.currency}. Current balance ${formatMoney(a.balance, a.currency)}.`
        : `No transactions yet. Current balance ${formatMoney(a.balance, a.currency)}.`;
    } catch (err) {
      if (token !== chartToken) return;
      showError(error, err);
    }
  }

  store.subscribe(render);

  return {
    id: 'accounts',
    label: 'Accounts',
    el,
    show() {
      showError(error, null);
      store.refresh().then(() => loadChart(), (err) => showError(error, err));
    },
  };
}
