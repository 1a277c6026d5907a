// Batch transfers: paste or load a CSV, preview it (checked on the Rust side), submit all or nothing.
import { api, toIpcError } from '../ipc';
import { busy, clear, field, h, setResult, showError } from '../dom';
import { detailIncluded, errorMessage } from '../errors';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { BatchPreview, BatchRow } from '../types';
import type { AccountStore } from './store';

const MAX_FILE_BYTES = 1024 * 1024;

/** The failing item's index named in a problem's detail ("item 3: ..."), or null. */
export function failingIndex(detail: string): number | null {
  const m = /\b(?:item|index|row)\D{0,3}(\d+)/i.exec(detail);
  return m ? Number(m[1]) : null;
}

export function batchView(store: AccountStore): View {
  let preview: BatchPreview | null = null;

  const csv = h('textarea', { id: 'batch-csv', rows: 8, spellcheck: 'false', placeholder: 'from_account,to_account,amount,memo\n1000000001,1000000002,250.00,Rent' });
  const file = h('input', { id: 'batch-file', type: 'file', accept: '.csv,text/csv,text/plain' });
  const previewBtn = h('button', { id: 'batch-preview', type: 'submit', class: 'primary' }, 'Preview');
  const submit = h('button', { id: 'batch-submit', type: 'button', class: 'primary', disabled: true }, 'Submit batch');
  const error = h('p', { id: 'batch-error', class: 'error', role: 'alert', hidden: true });
  const status = h('p', { id: 'batch-status', class: 'muted', role: 'status', hidden: true });
  const progress = h('progress', { id: 'batch-progress', hidden: true });
  const result = h('p', { id: 'batch-result', class: 'result', role: 'status', hidden: true });
  const summary = h('p', { id: 'batch-summary', class: 'muted' });
  const totals = h('ul', { id: 'batch-totals', class: 'totals' });
  const tbody = h('tbody', { id: 'batch-rows' });
  const table = h('table', { id: 'batch-table', class: 'table', hidden: true },
    h('caption', { class: 'sr-only' }, 'Batch preview'),
    h('thead', null, h('tr', null, ['Line', 'From', 'To', 'Amount', 'Memo', 'Check'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  const form = h('form', { id: 'batch-form', class: 'panel form', novalidate: true },
    field('Transfers (CSV: from_account,to_account,amount,memo — one per line, at most 1000)', csv),
    field('…or load a CSV file', file),
    h('div', { class: 'actions' }, previewBtn, submit),
    error, status, progress, result);

  const el = h('section', { 'aria-labelledby': 'batch-title' },
    h('h1', { id: 'batch-title' }, 'Batch transfers'),
    form,
    h('div', { class: 'panel' }, h('h2', null, 'Preview'), summary, totals, h('div', { class: 'table-scroll' }, table)));

  function stale() {
    preview = null;
    submit.disabled = true;
  }

  function row(r: BatchRow, index: number): HTMLElement {
    return h('tr', {
      'data-test': 'batch-row', 'data-line': r.line, 'data-index': index, 'data-valid': String(!r.error),
      class: r.error ? 'row-error' : '',
    },
      h('td', null, String(r.line)),
      h('td', null, r.from_account_number),
      h('td', null, r.to_account_number),
      h('td', { class: 'num' }, r.currency ? formatMoney(r.amount, r.currency) : r.amount),
      h('td', null, r.memo),
      h('td', { 'data-test': 'batch-row-error', class: r.error ? 'error-cell' : 'ok-cell' }, r.error ?? 'OK'));
  }

  function render(p: BatchPreview) {
    clear(tbody, p.rows.map(row));
    table.hidden = p.rows.length === 0;
    const bad = p.rows.filter((r) => r.error).length;
    summary.textContent = p.rows.length === 0
      ? 'No transfers found in the CSV.'
      : `${p.rows.length} transfer${p.rows.length === 1 ? '' : 's'}${bad ? `, ${bad} with errors — fix them and preview again` : ', all valid'}.`;
    summary.dataset.valid = String(p.valid);
    clear(totals, p.totals.map((t) => h('li', { 'data-test': 'batch-total', 'data-currency': t.currency, 'data-amount': t.amount }, `Total ${formatMoney(t.amount, t.currency)}`)));
    submit.disabled = !p.valid;
  }

  csv.addEventListener('input', stale);
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (!f) return;
    if (f.size > MAX_FILE_BYTES) { showError(error, 'The file is too large (at most 1 MiB)'); return; }
    const reader = new FileReader();
    reader.onload = () => { csv.value = String(reader.result ?? ''); stale(); showError(error, null); csv.focus(); };
    reader.onerror = () => showError(error, 'Could not read the file');
    reader.readAsText(f);
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    if (!csv.value.trim()) { showError(error, 'Paste the CSV or choose a file first'); csv.focus(); return; }
    void busy(previewBtn, async () => {
      try {
        if (!store.loaded) await store.refresh();
        preview = await api.previewBatch(csv.value, store.list);
        render(preview);
      } catch (err) { stale(); showError(error, err); }
    });
  });

  submit.addEventListener('click', () => {
    if (!preview || !preview.valid) return;
    const rows = preview.rows;
    const items = rows.map((r) => ({ from_account_id: r.from_account_id ?? '', to_account_number: r.to_account_number, amount: r.amount, memo: r.memo }));
    showError(error, null);
    delete error.dataset.index;
    setResult(result, null);
    for (const tr of Array.from(tbody.children)) tr.classList.remove('row-failed');
    status.textContent = `Submitting ${items.length} transfer${items.length === 1 ? '' : 's'}…`;
    status.hidden = false;
    progress.hidden = false;
    previewBtn.disabled = true;
    void busy(submit, async () => {
      try {
        const answer = await api.submitBatch(items);
        const n = answer.transfers.length;
        setResult(result, `${n} transfer${n === 1 ? '' : 's'} committed`, 'committed', { 'data-count': String(n) });
        stale();
        store.refresh().catch(() => undefined);
      } catch (err) {
        const e = toIpcError(err);
        const idx = failingIndex(e.detail);
        let msg = errorMessage(e);
        if (idx !== null && rows[idx]) {
          msg = `Line ${rows[idx].line} (item ${idx}, to ${rows[idx].to_account_number}) failed: ${msg}. Nothing was transferred.`;
          const tr = tbody.querySelector(`[data-index="${idx}"]`);
          tr?.classList.add('row-failed');
          tr?.setAttribute('data-failed', 'true');
        } else if (e.detail && !msg.includes(e.detail) && !detailIncluded(e)) {
          msg = `${msg} (${e.detail}). Nothing was transferred.`;
        }
        showError(error, e.code === 'unauthenticated' ? err : msg);
        error.title = e.detail;
        if (idx !== null) error.dataset.index = String(idx);
      } finally {
        status.hidden = true;
        progress.hidden = true;
        previewBtn.disabled = false;
      }
    }).then(() => { if (!preview) submit.disabled = true; });
  });

  return { id: 'batch', label: 'Batch', el, show() { if (!store.loaded) store.refresh().catch((err) => showError(error, err)); } };
}
