// Branch admin: find accounts; freeze, unfreeze or close them (always after confirmation); see and
// set an account's daily limit (at once); add a customer of the branch as one more owner; save a
// monthly statement of any account of the branch (as the customer can in History).
import { api } from '../ipc';
import { errorMessage, isSessionLost } from '../errors';
import { busy, confirmDialog, field, fillSelect, h, label, openModal, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { Account, Customer, Limits } from '../types';
import { STATEMENT_ERRORS, savedStatementText, statementMonths } from '../statements';
import { limitFigures, limitForm } from './limits';
import { pagedTable } from './paged';

/** At most this many owners per account (the server's rule too). */
export const MAX_OWNERS = 8;

/** Customers who may still be added to `a`: not already owners of it. */
export function ownerCandidates(a: Pick<Account, 'owners'>, customers: Pick<Customer, 'id' | 'full_name' | 'username'>[]): { value: string; label: string }[] {
  const owners = new Set(a.owners.map((o) => o.id));
  return customers.filter((c) => !owners.has(c.id)).map((c) => ({ value: c.id, label: `${c.full_name} (${c.username})` }));
}

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
    const tr: HTMLElement = h('tr', { 'data-test': 'admin-account-row', 'data-number': a.number, 'data-status': a.status, 'data-id': a.id },
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
      }), extraActions(a, () => tr)));
    return tr;
  }

  function extraActions(a: Account, current: () => HTMLElement): HTMLElement[] {
    const limit = h('button', { type: 'button', class: 'small', 'data-test': 'account-limit', 'data-id': a.id, 'aria-label': `Daily limit of account ${a.number}` }, 'Daily limit');
    limit.addEventListener('click', () => limitDialog(a));
    // A closed account keeps its statements: the months it was open.
    const statement = h('button', {
      type: 'button', class: 'small', 'data-test': 'account-statement', 'data-id': a.id, 'aria-haspopup': 'dialog',
      'aria-label': `Monthly statement of account ${a.number}`,
    }, 'Statement');
    statement.addEventListener('click', () => statementDialog(a));
    if (a.status === 'closed' || a.owners.length >= MAX_OWNERS) return [limit, statement];
    const owner = h('button', { type: 'button', class: 'small', 'data-test': 'account-add-owner', 'data-id': a.id, 'aria-label': `Add an owner to account ${a.number}` }, 'Add owner');
    owner.addEventListener('click', () => addOwnerDialog(a, current()));
    return [limit, statement, owner];
  }

  /**
   * Saves the month's statement (PDF) of the account as the customer's History does: months in
   * UTC from its opening month to now. The dialog stays open on the saved file's path, for
   * another month.
   */
  function statementDialog(a: Account) {
    const month = h('select', { id: 'admin-statement-month' });
    fillSelect(month, statementMonths(a.opened_at, new Date()));
    const error = h('p', { id: 'admin-statement-error', class: 'error', role: 'alert', hidden: true });
    const saved = h('p', { id: 'admin-statement-result', class: 'result', role: 'status', hidden: true });
    const close = h('button', { id: 'admin-statement-close', type: 'button' }, 'Close');
    const save = h('button', { id: 'admin-statement-save', type: 'submit', form: 'admin-statement-form', class: 'primary' }, 'Save statement');
    const form = h('form', { id: 'admin-statement-form', class: 'form', novalidate: true },
      h('p', { class: 'muted small' }, `Owners: ${a.owners.map((o) => o.full_name).join(', ')}. A PDF with the opening and closing balance and every entry `
        + 'of the month, saved to your Downloads folder. Months are counted in UTC; this month\'s statement runs to today. The download is in the audit trail.'),
      field('Month', month), error, saved);
    const modal = openModal('admin-statement-dialog', `Statement of account ${a.number}`, [form], [close, save], () => modal.close());
    modal.root.dataset.accountId = a.id;
    close.addEventListener('click', () => modal.close());
    month.addEventListener('change', () => { setResult(saved, null); showError(error, null); });
    month.focus();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(error, null);
      setResult(saved, null);
      if (!month.value) { showError(error, 'Choose a month'); month.focus(); return; }
      const chosen = month.value;
      const name = month.selectedOptions[0]?.textContent ?? chosen;
      void busy(save, async () => {
        try {
          const file = await api.statementDownload(a.id, chosen);
          setResult(saved, savedStatementText(a.number, name, file), 'saved', {
            'data-path': file.path, 'data-month': file.month, 'data-bytes': String(file.bytes), 'data-account-id': a.id,
          });
        } catch (err) {
          if (isSessionLost(err)) { modal.close(); return; }
          showError(error, err, STATEMENT_ERRORS);
        }
      });
    });
  }

  /** The account's limit figures and a form that sets a new limit at once. */
  function limitDialog(a: Account) {
    let limits: Limits | null = null;
    const figures = limitFigures('admin-limit');
    const loadError = h('p', { id: 'admin-limit-load-error', class: 'error', role: 'alert', hidden: true });
    const form = limitForm('admin-limit', {
      branch: true,
      explain: h('small', { class: 'hint' }, 'The branch sets a limit at once, above the bank\'s default too; a waiting raise of the customer is dropped. The owners are told when it rises.'),
      current: () => limits,
      save: (limit) => api.limitsSet(a.id, limit).catch((err: unknown) => {
        if (isSessionLost(err)) modal.close(); // sign-in takes over: no dialog left above it
        throw err;
      }),
      saved(l) { limits = l; figures.render(l); },
      number: () => a.number,
    });
    const close = h('button', { id: 'admin-limit-close', type: 'button' }, 'Close');
    const owners = a.owners.map((o) => o.full_name).join(', ');
    const modal = openModal('admin-limit-dialog', `Daily limit of account ${a.number}`,
      [h('p', { class: 'muted small' }, `Owners: ${owners}. ${label(a.kind)}, ${a.currency}.`), loadError, figures.el, form.el],
      [close], () => modal.close());
    modal.root.dataset.accountId = a.id;
    close.addEventListener('click', () => modal.close());
    form.input.focus();
    api.limitsGet(a.id).then(
      (l) => { limits = l; figures.render(l); modal.root.dataset.loaded = 'true'; },
      (err) => {
        if (isSessionLost(err)) modal.close();
        else showError(loadError, err, { not_found: 'No such account in your branch' });
      });
  }

  /** Picks a customer of the branch (searched by name, username, …) and adds them as an owner. */
  function addOwnerDialog(a: Account, tr: HTMLElement) {
    const query = h('input', { id: 'add-owner-query', type: 'search', autocomplete: 'off', placeholder: 'Name, username, national ID, phone or email' });
    const search = h('button', { id: 'add-owner-search', type: 'submit' }, 'Search');
    const searchForm = h('form', { class: 'inline-form', role: 'search', novalidate: true }, field('Find a customer of the branch', query), search);
    const customer = h('select', { id: 'add-owner-customer' });
    const hint = h('p', { id: 'add-owner-hint', class: 'muted small', 'aria-live': 'polite' });
    const error = h('p', { id: 'add-owner-error', class: 'error', role: 'alert', hidden: true });
    const cancel = h('button', { id: 'add-owner-cancel', type: 'button' }, 'Cancel');
    const submit = h('button', { id: 'add-owner-submit', type: 'button', class: 'primary' }, 'Add owner');
    const modal = openModal('add-owner-dialog', `Add an owner to account ${a.number}`, [
      h('p', { class: 'muted small' }, `Owners now: ${a.owners.map((o) => o.full_name).join(', ')}. The new owner can spend from the account; every owner is told.`),
      searchForm, field('Customer', customer), hint, error,
    ], [cancel, submit], () => modal.close());
    cancel.addEventListener('click', () => modal.close());
    query.focus();

    async function find() {
      showError(error, null);
      try {
        const page = await api.adminCustomers({ query: query.value.trim() || undefined, limit: 50 });
        const options = ownerCandidates(a, page.items);
        fillSelect(customer, options);
        hint.textContent = options.length ? `${options.length} customer${options.length === 1 ? '' : 's'} found` : 'No customer matches who is not an owner already.';
      } catch (err) {
        if (isSessionLost(err)) modal.close();
        else showError(error, err);
      }
    }
    searchForm.addEventListener('submit', (ev) => { ev.preventDefault(); void busy(search, find); });
    void find();

    submit.addEventListener('click', () => {
      if (!customer.value) { showError(error, 'Find and choose a customer first'); query.focus(); return; }
      const name = customer.selectedOptions[0]?.textContent ?? 'The customer';
      void busy(submit, async () => {
        try {
          const updated = await api.adminAddOwner(a.id, customer.value);
          modal.close();
          const fresh = row(updated);
          tr.replaceWith(fresh);
          setResult(result, `${name} is now an owner of account ${updated.number}`, 'owner-added', { 'data-number': updated.number, 'data-owners': String(updated.owners.length) });
          toast(`Owner added to ${updated.number}`, 'success');
          fresh.querySelector<HTMLElement>('[data-test=account-add-owner], [data-test=account-limit]')?.focus();
        } catch (err) {
          if (isSessionLost(err)) { modal.close(); return; }
          showError(error, errorMessage(err, { not_found: 'No such customer or account in your branch', limit_reached: `An account has at most ${MAX_OWNERS} owners` }));
        }
      });
    });
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
