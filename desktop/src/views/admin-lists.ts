// Branch admin: the branch's transactions and its audit trail.
import { api } from '../ipc';
import { busy, dayBound, field, fmtDateTime, h, label, showError } from '../dom';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { BranchTransfer } from '../types';
import { resolveAccount } from './admin-teller';
import { auditRow, AUDIT_COLUMNS } from './audit';
import { pagedTable } from './paged';

export function branchTransactionsView(): View {
  let filter: { account_id?: string; from?: string; to?: string } = {};
  const account = h('input', { id: 'branch-tx-account', autocomplete: 'off', spellcheck: 'false', placeholder: 'Any account' });
  const from = h('input', { id: 'branch-tx-from', type: 'date' });
  const to = h('input', { id: 'branch-tx-to', type: 'date' });
  const searchBtn = h('button', { id: 'branch-tx-search', type: 'submit' }, 'Show');
  const form = h('form', { id: 'branch-tx-form', class: 'filters', novalidate: true },
    field('Account number', account), field('From', from), field('To', to), h('div', { class: 'actions' }, searchBtn));

  const table = pagedTable<BranchTransfer>({
    prefix: 'branch-tx',
    caption: 'Branch transactions',
    columns: ['Time', 'Kind', 'From', 'To', 'Amount', 'Memo'],
    emptyText: 'No transactions match.',
    fetch: (cursor) => api.adminTransactions({ ...filter, cursor }),
    row: (t) => h('tr', { 'data-test': 'branch-tx-row', 'data-id': t.id, 'data-kind': t.kind, 'data-amount': t.amount },
      h('td', { class: 'nowrap' }, fmtDateTime(t.created_at)),
      h('td', null, label(t.kind)),
      h('td', { class: 'mono' }, t.from_account_number),
      h('td', { class: 'mono' }, t.to_account_number),
      h('td', { class: 'num' }, formatMoney(t.amount, t.currency)),
      h('td', { class: 'memo' }, t.memo)),
  });

  const el = h('section', { 'aria-labelledby': 'branch-tx-title' },
    h('h1', { id: 'branch-tx-title' }, 'Branch transactions'),
    h('div', { class: 'panel' }, form),
    h('div', { class: 'panel' }, table.el));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void busy(searchBtn, async () => {
      const number = account.value.trim();
      let account_id: string | undefined;
      if (number) {
        try {
          const a = await resolveAccount(number);
          if (!a) { showError(table.error, 'No such account in your branch'); return; }
          account_id = a.id;
        } catch (err) { showError(table.error, err); return; }
      }
      filter = { account_id, from: dayBound(from.value, false), to: dayBound(to.value, true) };
      await table.reload();
    });
  });

  return { id: 'branch-transactions', label: 'Transactions', el, show() { void table.reload(); } };
}

const KNOWN_ACTIONS = ['auth.login', 'auth.logout', 'auth.mfa_enrolled', 'admin.customer_created', 'admin.account_opened', 'admin.mfa_reset', 'dba.promote'];

export function auditView(): View {
  let filter: { action?: string; from?: string; to?: string } = {};
  const action = h('input', { id: 'audit-action', autocomplete: 'off', spellcheck: 'false', placeholder: 'Any action' });
  const from = h('input', { id: 'audit-from', type: 'date' });
  const to = h('input', { id: 'audit-to', type: 'date' });
  const searchBtn = h('button', { id: 'audit-search', type: 'submit' }, 'Show');
  const form = h('form', { id: 'audit-form', class: 'filters', novalidate: true },
    field('Action', action, `e.g. ${KNOWN_ACTIONS.slice(0, 3).join(', ')}`), field('From', from), field('To', to), h('div', { class: 'actions' }, searchBtn));

  const table = pagedTable({
    prefix: 'audit',
    caption: 'Audit trail',
    columns: AUDIT_COLUMNS,
    emptyText: 'No audit entries match.',
    row: auditRow,
    fetch: (cursor) => api.adminAudit({ ...filter, cursor }),
  });

  const el = h('section', { 'aria-labelledby': 'audit-title' },
    h('h1', { id: 'audit-title' }, 'Audit trail'),
    h('div', { class: 'panel' }, form),
    h('div', { class: 'panel' }, table.el));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filter = { action: action.value.trim() || undefined, from: dayBound(from.value, false), to: dayBound(to.value, true) };
    void busy(searchBtn, () => table.reload());
  });

  return { id: 'audit', label: 'Audit', el, show() { void table.reload(); } };
}
