// Audit trail rows, shared by the branch admin's and the DBA's audit views.
import { fmtDateTime, h } from '../dom';
import type { AuditRow } from '../types';

export const AUDIT_COLUMNS = ['Time', 'Actor', 'Action', 'Target', 'Outcome', 'Details'];

function details(d: unknown): string {
  if (d === null || d === undefined) return '';
  if (typeof d === 'object' && Object.keys(d as object).length === 0) return '';
  return JSON.stringify(d);
}

export function auditRow(r: AuditRow): HTMLElement {
  const text = details(r.details);
  return h('tr', { 'data-test': 'audit-row', 'data-id': r.id, 'data-action': r.action, 'data-outcome': r.outcome },
    h('td', { class: 'nowrap' }, fmtDateTime(r.at)),
    h('td', null, r.actor_role ?? 'system', r.actor_id ? h('div', { class: 'muted small mono', title: r.actor_id }, r.actor_id.slice(0, 8)) : null),
    h('td', { class: 'mono' }, r.action),
    h('td', { class: 'mono wrap' }, r.target ?? ''),
    h('td', null, h('span', { class: `status status-${r.outcome === 'success' ? 'active' : 'frozen'}` }, r.outcome)),
    h('td', { class: 'mono small wrap', title: [text, r.request_id ? `request ${r.request_id}` : '', r.client_addr ? `from ${r.client_addr}` : ''].filter(Boolean).join('\n') },
      text.length > 160 ? `${text.slice(0, 160)}…` : text));
}
