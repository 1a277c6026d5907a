// Branch admin: find customers, open (joint) accounts, create customers, reset MFA.
import { api } from '../ipc';
import { busy, clear, confirmDialog, field, h, label, setResult, showError, toast } from '../dom';
import { formatMoney } from '../money';
import type { View } from '../shell';
import type { Customer } from '../types';
import { pagedTable } from './paged';

const MAX_OWNERS = 8;

/** Local checks mirroring the server's; returns a message or null. */
export function checkNewCustomer(c: { username: string; full_name: string; national_id: string; phone: string; email: string; password: string }): string | null {
  if (!/^[a-z0-9._-]{3,64}$/.test(c.username.trim().toLowerCase())) return "Username must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-'";
  if (!c.full_name.trim()) return 'Enter the full name';
  if (!c.national_id.trim()) return 'Enter the national ID';
  if (!c.phone.trim() || !/^[0-9+ ()-]+$/.test(c.phone)) return 'Enter a phone number (digits, spaces, +, -, ( and ))';
  if (!/^[^@\s]+@[^@\s]+$/.test(c.email.trim())) return 'Enter an email address like name@example.com';
  if (c.password.length < 12) return 'Password must be at least 12 characters';
  return null;
}

export function customersView(): View {
  const picked = new Map<string, Customer>();
  let query = '';

  // ---- Search + list
  const search = h('input', { id: 'customer-search', type: 'search', placeholder: 'Name, username, national ID, phone or email', autocomplete: 'off' });
  const searchBtn = h('button', { id: 'customer-search-submit', type: 'submit' }, 'Search');
  const searchForm = h('form', { id: 'customer-search-form', class: 'inline-form', role: 'search', novalidate: true },
    field('Find customers', search), searchBtn);

  const table = pagedTable<Customer>({
    prefix: 'customers',
    caption: 'Customers',
    columns: ['Owner', 'Customer', 'Accounts', ''],
    emptyText: 'No customers match.',
    row: customerRow,
    fetch: (cursor) => api.adminCustomers({ query: query || undefined, cursor }),
  });

  // ---- Open account
  const owners = h('ul', { id: 'open-account-owners', class: 'chips', 'aria-live': 'polite' });
  const kind = h('select', { id: 'open-account-kind' }, ['savings', 'current', 'business'].map((k) => h('option', { value: k }, label(k))));
  const currency = h('select', { id: 'open-account-currency' }, ['INR', 'USD', 'EUR'].map((c) => h('option', { value: c }, c)));
  const openSubmit = h('button', { id: 'open-account-submit', type: 'submit', class: 'primary' }, 'Open account');
  const openError = h('p', { id: 'open-account-error', class: 'error', role: 'alert', hidden: true });
  const openResult = h('p', { id: 'open-account-result', class: 'result', role: 'status', hidden: true });
  const openForm = h('form', { id: 'open-account-form', class: 'panel form', novalidate: true },
    h('h2', null, 'Open account'),
    h('p', { class: 'muted small' }, 'Tick “Owner” next to one or more customers (two or more make a joint account).'),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Owners'), owners),
    field('Kind', kind), field('Currency', currency),
    openError, openResult, openSubmit);

  // ---- New customer
  const nc = {
    username: h('input', { id: 'new-customer-username', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', required: true }),
    full_name: h('input', { id: 'new-customer-full-name', autocomplete: 'off', required: true }),
    national_id: h('input', { id: 'new-customer-national-id', autocomplete: 'off', required: true }),
    phone: h('input', { id: 'new-customer-phone', type: 'tel', autocomplete: 'off', required: true }),
    email: h('input', { id: 'new-customer-email', type: 'email', autocomplete: 'off', required: true }),
    password: h('input', { id: 'new-customer-password', type: 'password', autocomplete: 'new-password', minlength: 12, required: true }),
  };
  const ncSubmit = h('button', { id: 'new-customer-submit', type: 'submit', class: 'primary' }, 'Create customer');
  const ncError = h('p', { id: 'new-customer-error', class: 'error', role: 'alert', hidden: true });
  const ncResult = h('p', { id: 'new-customer-result', class: 'result', role: 'status', hidden: true });
  const ncForm = h('form', { id: 'new-customer-form', class: 'panel form', novalidate: true },
    h('h2', null, 'New customer'),
    field('Username', nc.username), field('Full name', nc.full_name), field('National ID', nc.national_id),
    field('Phone', nc.phone), field('Email', nc.email), field('Initial password', nc.password, 'At least 12 characters'),
    ncError, ncResult, ncSubmit);

  const el = h('section', { 'aria-labelledby': 'customers-title' },
    h('h1', { id: 'customers-title' }, 'Customers'),
    h('div', { class: 'two-col' },
      h('div', { class: 'panel' }, searchForm, table.el),
      h('div', { class: 'stack' }, openForm, ncForm)));

  function renderOwners() {
    clear(owners, picked.size === 0
      ? h('li', { class: 'muted' }, 'No owners chosen yet')
      : [...picked.values()].map((c) => {
        const remove = h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${c.full_name}` }, '×');
        remove.addEventListener('click', () => { picked.delete(c.id); syncChecks(); renderOwners(); });
        return h('li', { class: 'chip', 'data-test': 'picked-owner', 'data-id': c.id }, `${c.full_name} (${c.username})`, remove);
      }));
  }
  function syncChecks() {
    for (const box of el.querySelectorAll<HTMLInputElement>('[data-test=owner-pick]')) box.checked = picked.has(box.dataset.id!);
  }

  function customerRow(c: Customer): HTMLElement {
    const pick = h('input', { type: 'checkbox', 'data-test': 'owner-pick', 'data-id': c.id, id: `pick-${c.id}`, checked: picked.has(c.id) });
    pick.addEventListener('change', () => {
      if (pick.checked) {
        if (picked.size >= MAX_OWNERS) { pick.checked = false; showError(openError, `At most ${MAX_OWNERS} owners`); return; }
        picked.set(c.id, c);
      } else picked.delete(c.id);
      renderOwners();
    });
    const reset = h('button', { type: 'button', class: 'small', 'data-test': 'reset-mfa', 'data-id': c.id }, 'Reset MFA');
    const resetNote = h('span', { class: 'muted small', 'data-test': 'reset-mfa-result' });
    reset.addEventListener('click', async () => {
      const ok = await confirmDialog('Reset two-step sign-in?',
        `${c.full_name} (${c.username}) will have to set up an authenticator app again at the next sign-in.`, 'Reset MFA', true);
      if (!ok) return;
      await busy(reset, async () => {
        try {
          await api.adminResetMfa(c.id);
          resetNote.textContent = 'MFA reset';
          toast(`Two-step sign-in reset for ${c.username}`, 'success');
        } catch (err) { showError(table.error, err); }
      });
    });
    const contact = [c.national_id, c.phone, c.email].filter(Boolean).join(' · ');
    return h('tr', { 'data-test': 'customer-row', 'data-username': c.username, 'data-id': c.id },
      h('td', null, h('label', { class: 'check', for: `pick-${c.id}` }, pick, h('span', null, 'Owner'))),
      h('td', null, h('strong', null, c.full_name), h('div', { class: 'muted small' }, c.username), contact ? h('div', { class: 'muted small wrap' }, contact) : null),
      h('td', null, c.accounts.length === 0 ? h('span', { class: 'muted small' }, 'No accounts')
        : h('ul', { class: 'plain small' }, c.accounts.map((a) => h('li', { 'data-test': 'customer-account', 'data-number': a.number, 'data-status': a.status },
          `${a.number} · ${label(a.kind)} · ${formatMoney(a.balance, a.currency)}`, a.status !== 'active' ? ` (${a.status})` : '')))),
      h('td', null, reset, resetNote));
  }

  searchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    query = search.value.trim();
    void busy(searchBtn, () => table.reload());
  });

  openForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(openError, null);
    setResult(openResult, null);
    if (picked.size === 0) { showError(openError, 'Choose at least one owner (tick “Owner” in the list)'); return; }
    const ids = [...picked.keys()];
    const names = [...picked.values()].map((c) => c.full_name).join(', ');
    void busy(openSubmit, async () => {
      try {
        const a = await api.adminOpenAccount(ids, kind.value, currency.value);
        setResult(openResult, `Opened ${label(a.kind).toLowerCase()} account ${a.number} (${a.currency}) for ${names}`, 'committed',
          { 'data-number': a.number, 'data-id': a.id });
        picked.clear();
        renderOwners();
        void table.reload();
      } catch (err) { showError(openError, err, { not_found: 'One of the owners was not found in your branch' }); }
    });
  });

  ncForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(ncError, null);
    setResult(ncResult, null);
    const values = {
      username: nc.username.value.trim().toLowerCase(), full_name: nc.full_name.value.trim(), national_id: nc.national_id.value.trim(),
      phone: nc.phone.value.trim(), email: nc.email.value.trim(), password: nc.password.value,
    };
    const problem = checkNewCustomer(values);
    if (problem) { showError(ncError, problem); return; }
    void busy(ncSubmit, async () => {
      try {
        const user = await api.adminCreateCustomer(values);
        setResult(ncResult, `Created customer ${user.username} (${user.full_name}). They set up two-step sign-in at their first sign-in.`, 'committed',
          { 'data-id': user.id, 'data-username': user.username });
        for (const input of Object.values(nc)) input.value = '';
        search.value = user.username;
        query = user.username;
        void table.reload();
      } catch (err) { showError(ncError, err); }
    });
  });

  renderOwners();
  return { id: 'customers', label: 'Customers', el, show() { void table.reload(); } };
}
