// Branch admin: find accounts; freeze, unfreeze or close them (always after confirmation).
import { api } from '../ipc';
import { busy, confirmDialog, field, h, label, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { Account } from '../types';
import { pagedTable } from './paged';

type Action = 'freeze' | 'unfreeze' | 'close';

const ACTIONS: Record<Action, { label: string; verb: string; explain: string }> = {
  freeze: { label: 'Freeze', verb: 'frozen', explain: 'No money can move in or out until it is unfrozen.' },
  unfreeze: { label: 'Unfreeze', verb: 'unfrozen', explain: 'Money can move in and out again.' },
  close: { label: 'Close', verb: 'closed', explain: 'Closing is permanent. Only an account with a zero balance can be closed.' },
};

export function actionsFor(status: string): Action[] {
  if (status === 'active') return ['freeze', 'close'];
  if (status === 'frozen') return ['unfreeze', 'close'];
  return [];
}

export function adminAccountsView(): View {
  let filter = { query: '', status: '' };
  const query = h('input', { id: 'admin-account-query', type: 'search', placeholder: 'Account number or owner name', autocomplete: 'off' });
  const status = h('select', { id: 'admin-account-status' },
    h('option', { value: '' }, 'Any status'), ...['active', 'frozen', 'closed'].map((st) => h('option', { value: st }, st)));
  const searchBtn = h('button', { id: 'admin-account-search', type: 'submit' }, 'Search');
  const form = h('form', { id: 'admin-account-form', class: 'filters', role: 'search', novalidate: true },
    field('Number or owner', query), field('Status', status), h('div', { class: 'actions' }, searchBtn));
  const result = h('p', { id: 'admin-account-result', class: 'result', role: 'status', hidden: true });

  const table = pagedTable<Account>({
    prefix: 'admin-accounts',
    caption: 'Branch accounts',
    columns: ['Number', 'Owners', 'Kind', 'Balance', 'Status', 'Actions'],
    emptyText: 'No accounts match.',
    row,
    fetch: (cursor) => api.adminAccounts({ query: filter.query || undefined, status: filter.status || undefined, cursor }),
  });
  table.error.id = 'admin-account-error';

  const el = h('section', { 'aria-labelledby': 'admin-accounts-title' },
    h('h1', { id: 'admin-accounts-title' }, 'Accounts'),
    h('div', { class: 'panel' }, form, result),
    h('div', { class: 'panel' }, table.el));

  function row(a: Account): HTMLElement {
    const tr = h('tr', { 'data-test': 'admin-account-row', 'data-number': a.number, 'data-status': a.status, 'data-id': a.id },
      h('td', { class: 'mono' }, a.number),
      h('td', { class: 'wrap' }, a.owners.map((o) => o.full_name).join(', ')),
      h('td', null, label(a.kind)),
      h('td', { class: 'num', 'data-test': 'balance', 'data-balance': a.balance }, formatMoney(a.balance, a.currency)),
      h('td', null, h('span', { class: `status status-${a.status}`, 'data-test': 'account-status' }, a.status)),
      h('td', { class: 'row-actions' }, actionsFor(a.status).map((act) => {
        const b = h('button', { type: 'button', class: act === 'close' ? 'danger-outline small' : 'small', 'data-test': 'account-action', 'data-action': act, 'data-id': a.id },
          ACTIONS[act].label);
        b.addEventListener('click', () => void run(a, act, b, tr));
        return b;
      })));
    return tr;
  }

  async function run(a: Account, act: Action, button: HTMLButtonElement, tr: HTMLElement) {
    const info = ACTIONS[act];
    const ok = await confirmDialog(`${info.label} account ${a.number}?`,
      `${info.explain} Owners: ${a.owners.map((o) => o.full_name).join(', ')}. Balance ${formatMoney(a.balance, a.currency)}.`,
      info.label, act !== 'unfreeze');
    if (!ok) return;
    showError(table.error, null);
    setResult(result, null);
    await busy(button, async () => {
      try {
        const updated = await api.adminAccountAction(a.id, act);
        const fresh = row(updated);
        tr.replaceWith(fresh);
        setResult(result, `Account ${updated.number} is now ${updated.status}`, 'committed', { 'data-number': updated.number, 'data-status': updated.status });
        toast(`Account ${updated.number} ${info.verb}`, 'success');
        fresh.querySelector<HTMLElement>('[data-test=account-action]')?.focus();
      } catch (err) { showError(table.error, err); }
    });
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filter = { query: query.value.trim(), status: status.value };
    void busy(searchBtn, () => table.reload());
  });
  status.addEventListener('change', () => searchBtn.click());

  return { id: 'admin-accounts', label: 'Accounts', el, show() { void table.reload(); } };
}
