// DBA: live cluster state (every 2 s), replica lag chart, promotion, audit trail.
import { api } from '../ipc';
import { clear, field, fmtTime, h, keepFocus, openModal, setResult, showError, toast } from '../dom';
import { errorMessage, isSessionLost } from '../errors';
import { compactNumber, formatBytes, lineChart, PALETTE, type Series } from '../chart';
import type { Ctx, View } from '../shell';
import type { ClusterNode, ClusterState } from '../types';
import { auditRow, AUDIT_COLUMNS } from './audit';
import { pagedTable } from './paged';

const WINDOW_MS = 120_000;

interface Sample { t: number; nodes: ClusterNode[] }

/** One series per node that was a replica during the window: its replay lag in bytes. */
export function lagSeries(samples: Sample[], colors: Map<string, string>): Series[] {
  const names: string[] = [];
  for (const s of samples) for (const n of s.nodes) if (n.role === 'replica' && !names.includes(n.name)) names.push(n.name);
  return names.map((name) => {
    if (!colors.has(name)) colors.set(name, PALETTE[colors.size % PALETTE.length]);
    const points = samples.flatMap((s) => {
      const n = s.nodes.find((x) => x.name === name);
      return n && n.role === 'replica' && typeof n.replay_lag_bytes === 'number' ? [{ x: s.t, y: n.replay_lag_bytes }] : [];
    });
    return { label: name, points, color: colors.get(name) };
  });
}

function clusterView(ctx: Ctx): View {
  const samples: Sample[] = [];
  const colors = new Map<string, string>();
  let lastNodesJson = '';
  let promoting = false;

  const syncMode = h('dd', { id: 'sync-mode' }, '—');
  const pool = h('dd', { id: 'pool-state' }, '—');
  const failovers = h('dd', { id: 'failovers' }, '—');
  const updated = h('dd', { id: 'cluster-updated' }, '—');
  const error = h('p', { id: 'cluster-error', class: 'error', role: 'alert', hidden: true });
  const failoverBlocked = h('p', { id: 'failover-state', class: 'error', role: 'alert', hidden: true });
  const promoteResult = h('p', { id: 'promote-result', class: 'result', role: 'status', hidden: true });
  const promoteError = h('p', { id: 'promote-error', class: 'error', role: 'alert', hidden: true });
  const tbody = h('tbody', { id: 'node-rows' });
  const chartBox = h('div', { id: 'lag-chart-box', class: 'chart-box' });
  const legend = h('ul', { id: 'lag-legend', class: 'legend', 'aria-label': 'Legend' });

  const el = h('section', { 'aria-labelledby': 'cluster-title' },
    h('h1', { id: 'cluster-title' }, 'Cluster'),
    h('div', { class: 'panel' },
      h('dl', { class: 'stats' },
        h('div', null, h('dt', null, 'Replication'), syncMode),
        h('div', null, h('dt', null, 'Connection pool'), pool),
        h('div', null, h('dt', null, 'Failovers'), failovers),
        h('div', null, h('dt', null, 'Updated'), updated)),
      failoverBlocked, error, promoteResult, promoteError),
    h('div', { class: 'panel' },
      h('h2', null, 'Nodes'),
      h('div', { class: 'table-scroll' }, h('table', { class: 'table', id: 'node-table' },
        h('thead', null, h('tr', null, ['Node', 'Role', 'Timeline', 'LSN', 'Lag (bytes)', 'Lag (s)', 'Sync state', 'Diverged (bytes)', ''].map((t) => h('th', { scope: 'col' }, t)))),
        tbody))),
    h('div', { class: 'panel' },
      h('h2', null, 'Replica lag, last 2 minutes'),
      chartBox, legend));

  function nodeRow(n: ClusterNode): HTMLElement {
    const promote = n.role === 'replica'
      ? h('button', { type: 'button', class: 'small danger-outline', 'data-test': 'promote', 'data-node': n.name }, 'Promote…')
      : null;
    promote?.addEventListener('click', () => askPromote(n.name));
    return h('tr', { 'data-test': 'node-row', 'data-node': n.name, 'data-role': n.role },
      h('td', { class: 'mono' }, n.name),
      h('td', null, h('span', { class: `role role-${n.role}`, 'data-test': 'node-role' }, n.role)),
      h('td', { 'data-test': 'node-timeline', class: 'num' }, n.timeline ?? '—'),
      h('td', { 'data-test': 'node-lsn', class: 'mono' }, n.lsn ?? '—'),
      h('td', { 'data-test': 'node-lag-bytes', class: 'num', 'data-value': n.replay_lag_bytes ?? '', title: formatBytes(n.replay_lag_bytes) },
        n.replay_lag_bytes != null ? String(n.replay_lag_bytes) : '—'),
      h('td', { 'data-test': 'node-lag-seconds', class: 'num', 'data-value': n.replay_lag_seconds ?? '' },
        n.replay_lag_seconds != null ? n.replay_lag_seconds.toFixed(1) : '—'),
      h('td', { 'data-test': 'node-sync-state' }, n.sync_state ?? '—'),
      h('td', { 'data-test': 'node-diverged-bytes', class: 'num', 'data-value': n.diverged_bytes ?? '',
        title: n.diverged_bytes ? `${formatBytes(n.diverged_bytes)} exist only on this node; a rejoin needs --discard-diverged` : '' },
        n.diverged_bytes != null ? String(n.diverged_bytes) : '—'),
      h('td', null, promote));
  }

  function render(state: ClusterState) {
    const now = Date.now();
    syncMode.textContent = state.sync_mode;
    syncMode.dataset.value = state.sync_mode;
    pool.textContent = `size ${state.pool.size} · ${state.pool.available} available · ${state.pool.waiting} waiting`;
    Object.assign(pool.dataset, { size: String(state.pool.size), available: String(state.pool.available), waiting: String(state.pool.waiting) });
    failovers.textContent = state.failovers != null ? String(state.failovers) : '—';
    failovers.dataset.value = String(state.failovers ?? '');
    const blocked = state.failover?.state === 'blocked';
    failoverBlocked.hidden = !blocked;
    failoverBlocked.textContent = blocked ? (state.failover?.reason ?? 'automatic promotion blocked') : '';
    updated.textContent = fmtTime(new Date(now).toISOString());
    const json = JSON.stringify(state.nodes);
    if (json !== lastNodesJson) {
      lastNodesJson = json;
      keepFocus(tbody, () => clear(tbody, state.nodes.map(nodeRow)));
    }
    samples.push({ t: now, nodes: state.nodes });
    while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
    const series = lagSeries(samples, colors);
    clear(chartBox, lineChart(series, {
      id: 'lag-chart', title: 'Replay lag of each replica in bytes over the last two minutes', width: 760, height: 220,
      xDomain: [now - WINDOW_MS, now], yFormat: (v) => `${compactNumber(v)}B`,
      xFormat: (v) => (v === now ? 'now' : `-${Math.round((now - v) / 1000)} s`), emptyText: 'No replicas reporting',
    }));
    clear(legend, series.map((se) => {
      const last = se.points[se.points.length - 1];
      return h('li', { 'data-test': 'lag-legend-item', 'data-node': se.label },
        h('span', { class: 'swatch', style: `background:${se.color}` }), `${se.label}${last ? ` — ${formatBytes(last.y)}` : ''}`);
    }));
  }

  async function refresh() {
    try {
      render(await api.dbaCluster());
      showError(error, null);
    } catch (err) {
      showError(error, err, undefined, true);
      updated.textContent = `${updated.textContent?.replace(/ \(stale\)$/, '')} (stale)`;
    }
  }

  /** A typed confirmation; `unsafeDetail` (the server's account of what may
   * be lost) turns it into the forced promotion, with a longer phrase. */
  function askPromote(name: string, unsafeDetail?: string) {
    if (promoting) return;
    const force = unsafeDetail !== undefined;
    const phrase = force ? `force ${name}` : name;
    const input = h('input', { id: 'promote-confirm-input', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off' });
    const ok = h('button', { id: 'promote-confirm-ok', type: 'button', class: 'danger', disabled: true }, force ? 'Force promotion' : 'Promote');
    const cancel = h('button', { id: 'promote-confirm-cancel', type: 'button' }, 'Cancel');
    const close = () => modal.close();
    const body = force
      ? [h('p', { id: 'promote-unsafe-detail', class: 'error' }, unsafeDetail),
        h('p', null, `Acknowledged transfers that only the unseen standbys hold will be lost, and their customers may already have been told. This is audited with these figures.`),
        field(`Type "${phrase}" to promote anyway`, input)]
      : [h('p', null, `The pool fences the current primary and ${name} becomes the writable node. Clients may see a short interruption.`),
        field(`Type the node name (${name}) to confirm`, input)];
    const modal = openModal('promote-dialog', force ? `${name} cannot be proven up to date` : `Promote ${name} to primary?`, body, [cancel, ok], close);
    input.focus();
    input.addEventListener('input', () => { ok.disabled = input.value.trim() !== phrase; });
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && !ok.disabled) { ev.preventDefault(); ok.click(); } });
    cancel.addEventListener('click', close);
    ok.addEventListener('click', async () => {
      if (input.value.trim() !== phrase) return;
      close();
      promoting = true;
      setResult(promoteResult, `Promoting ${name}…`, 'running', { 'data-node': name });
      showError(promoteError, null);
      let unsafe: string | undefined;
      try {
        const state = await api.dbaPromote(name, force);
        render(state);
        setResult(promoteResult, `${name} was promoted to primary`, 'committed', { 'data-node': name });
        toast(`${name} is now the primary`, 'success');
      } catch (err) {
        setResult(promoteResult, null);
        const e = err as { code?: string; detail?: string };
        if (!force && e.code === 'promotion_unsafe') unsafe = e.detail ?? 'The quorum rule cannot prove this node up to date.';
        else showError(promoteError, isSessionLost(err) ? err : `Promotion of ${name} failed: ${errorMessage(err)}`);
      } finally { promoting = false; }
      if (unsafe !== undefined) askPromote(name, unsafe);
    });
  }

  ctx.poll(refresh, 2000);
  return { id: 'cluster', label: 'Cluster', el, show() { /* kept fresh by the poller */ } };
}

function dbaAuditView(): View {
  const table = pagedTable({
    prefix: 'dba-audit',
    caption: 'Audit trail of every branch',
    columns: AUDIT_COLUMNS,
    emptyText: 'No audit entries yet.',
    row: auditRow,
    fetch: (cursor) => api.dbaAudit(cursor),
  });
  const refresh = h('button', { id: 'dba-audit-refresh', type: 'button' }, 'Refresh');
  refresh.addEventListener('click', () => void table.reload());
  const el = h('section', { 'aria-labelledby': 'dba-audit-title' },
    h('h1', { id: 'dba-audit-title' }, 'Audit trail'),
    h('div', { class: 'panel' }, h('div', { class: 'actions' }, refresh), table.el));
  return { id: 'dba-audit', label: 'Audit', el, show() { void table.reload(); } };
}

export function dbaViews(ctx: Ctx): View[] {
  return [clusterView(ctx), dbaAuditView()];
}
