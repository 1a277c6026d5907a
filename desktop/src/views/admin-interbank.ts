// Branch admin: the bank's position at the switch and its inter-bank payments.
import { api } from '../ipc';
import { clear, fmtDateTime, h, label, showError } from '../dom';
import { formatAmount, sumAmounts } from '../money';
import type { View } from '../shell';
import type { InterbankPayment, InterbankPosition } from '../types';
import { pagedTable } from './paged';

/** What the bank may still send: prefunded + position + net debit cap - pending out. */
export function availableToSend(p: InterbankPosition): string {
  return sumAmounts([p.prefunded, p.position, p.net_debit_cap, `-${p.pending_out.replace(/^-/, '')}`]);
}

export function adminInterbankView(): View {
  const position = h('dl', { id: 'ib-position', class: 'facts' });
  const positionError = h('p', { id: 'ib-position-error', class: 'error', role: 'alert', hidden: true });
  const refresh = h('button', { id: 'ib-refresh', type: 'button' }, 'Refresh');

  const table = pagedTable<InterbankPayment>({
    prefix: 'ib-payments',
    caption: 'Inter-bank payments',
    columns: ['Time', 'End-to-end id', 'Status', 'Amount', 'Payee bank', 'Payee', 'Memo'],
    emptyText: 'No inter-bank payments yet.',
    fetch: (cursor) => api.adminInterbankPayments(cursor),
    row: (p) => h('tr', { 'data-test': 'ib-payment-row', 'data-id': p.id, 'data-status': p.status, 'data-amount': p.amount },
      h('td', { class: 'nowrap' }, fmtDateTime(p.created_at)),
      h('td', { class: 'mono' }, p.e2e_id),
      h('td', null, label(p.status), p.reason ? ` (${p.reason})` : ''),
      h('td', { class: 'num' }, `${formatAmount(p.amount)} ${p.currency}`),
      h('td', null, `${p.payee?.bank_name ?? ''} (${p.payee?.bank_id ?? '?'})`),
      h('td', null, p.payee ? `${p.payee.holder_name_masked} · ${p.payee.account_number_masked}` : '—'),
      h('td', { class: 'memo' }, p.memo)),
  });

  const el = h('section', { 'aria-labelledby': 'ib-title' },
    h('h1', { id: 'ib-title' }, 'Inter-bank'),
    h('div', { class: 'panel' }, h('h2', null, 'Position at the switch'), positionError, position, h('div', { class: 'actions' }, refresh)),
    h('div', { class: 'panel' }, h('h2', null, 'Payments'), table.el));

  function fact(name: string, key: string, value: string) {
    return [h('dt', null, name), h('dd', { 'data-test': `ib-${key}`, 'data-value': value, class: 'num' }, formatAmount(value))];
  }

  async function loadPosition() {
    try {
      const p = await api.adminInterbankPosition();
      clear(position,
        h('dt', null, 'Bank'), h('dd', { 'data-test': 'ib-bank-id', class: 'mono' }, p.bank_id),
        fact('Prefunded', 'prefunded', p.prefunded),
        fact('Position (net of committed payments)', 'position', p.position),
        fact('Net debit cap', 'net-debit-cap', p.net_debit_cap),
        fact('Reserved for pending payments', 'pending-out', p.pending_out),
        fact('Available to send', 'available', availableToSend(p)));
      showError(positionError, null);
    } catch (err) { showError(positionError, err); }
  }

  refresh.addEventListener('click', () => { void loadPosition(); void table.reload(); });

  return { id: 'interbank', label: 'Inter-bank', el, show() { void loadPosition(); void table.reload(); } };
}
