// Payees: the customer's saved recipients (an account number of this bank, or a key at any bank).
// Saving one shows whom it pays, masked ("B•• M••••, account ••••0027"); what was shown is kept,
// so a transfer to a saved payee can be confirmed without a new look-up, even offline.
import { api, toIpcError } from '../ipc';
import { errorMessage, formatDuration } from '../errors';
import { busy, clear, confirmDialog, field, fmtDateTime, h, keyText, label, setResult, showError } from '../dom';
import type { View } from '../shell';
import type { AccountLookup, KeyType, NewPayee, Payee } from '../types';
import { KEY_HINTS, KEY_TYPES, MAX_KEY_CHARS, keyValueProblem } from './paykey';

export const MAX_NICKNAME = 64;
/** The value of "Another account number" in Move money's payee select. */
export const ANOTHER_ACCOUNT = 'new';

/** "You are paying B•• M••••, account ••••0027": shown before a transfer is sent. */
export function confirmSentence(p: Pick<AccountLookup, 'holder_name_masked' | 'account_number_masked'>): string {
  return `You are paying ${p.holder_name_masked}, account ${p.account_number_masked}`;
}

/** "Saved B•• M••••, account ••••0027 as Rent" (or "… was already saved as Rent"). */
export function savedText(p: Payee, already = false): string {
  const who = `${p.holder_name_masked}, account ${p.account_number_masked}`;
  const bank = p.key && p.bank_name ? ` at ${p.bank_name}` : '';
  return already ? `${who}${bank} was already saved as ${p.nickname}` : `Saved ${who}${bank} as ${p.nickname}`;
}

/** How the payee is paid: "Account number" or "Phone key +919876543210". */
export function payeeRoute(p: Pick<Payee, 'key'>): string {
  return p.key ? keyText(p.key) : 'Account number';
}

/** The payee's bank; an account payee without one is at this bank (not in a consortium). */
export function bankName(p: Pick<Payee, 'bank_name' | 'key'>): string {
  return p.bank_name ?? (p.key ? '—' : 'This bank');
}

/** Saved payees Move money can pay: those saved by account number. */
export function accountPayees(list: Payee[]): Payee[] {
  return list.filter((p) => !!p.account_number);
}

/** Move money's "To" choices: "Another account number" first, then the saved payees by nickname. */
export function transferPayeeOptions(list: Payee[]): { value: string; label: string }[] {
  return [
    { value: ANOTHER_ACCOUNT, label: 'Another account number' },
    ...accountPayees(list)
      .slice()
      .sort((a, b) => a.nickname.localeCompare(b.nickname))
      .map((p) => ({ value: p.id, label: `${p.nickname} — ${p.holder_name_masked}, ${p.account_number_masked}` })),
  ];
}

/** A nickname as the server takes it: 1 to 64 characters, no control characters; null when fine. */
export function nicknameProblem(text: string): string | null {
  const t = text.trim();
  if (!t) return 'Enter a nickname for the payee';
  if ([...t].length > MAX_NICKNAME) return `A nickname has at most ${MAX_NICKNAME} characters`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(t)) return 'A nickname cannot contain control characters';
  return null;
}

/**
 * Why an account look-up failed, in plain words. Offline a new account number cannot be
 * confirmed; a saved payee can still be paid (confirmed from what was shown when it was saved).
 */
export function lookupErrorText(err: unknown): string {
  const e = toIpcError(err);
  if (e.kind === 'unreachable' || e.code === 'unreachable') {
    return 'This payee cannot be confirmed while the server cannot be reached (offline), so nothing was sent. '
      + 'Saved payees can still be paid offline: choose one under "To", or try again once you are back online.';
  }
  if (e.code === 'rate_limited') return `${rateLimitText(e)}; saved payees need no look-up.`;
  return errorMessage(e, { not_found: 'No such account' });
}

/** "Too many account look-ups: … Try again in 9 min 30 s" (look-ups are limited per customer). */
export function rateLimitText(err: unknown): string {
  const e = toIpcError(err);
  const wait = e.retryAfterS != null ? `in ${formatDuration(e.retryAfterS)}` : 'later';
  return `Too many account look-ups: for your security they are limited. Try again ${wait}`;
}

/** The signed-in customer's saved payees, shared by Payees, Move money and Pay by key. */
export class PayeeStore {
  list: Payee[] = [];
  loaded = false;
  private listeners = new Set<(list: Payee[]) => void>();
  private inflight: Promise<Payee[]> | null = null;

  subscribe(fn: (list: Payee[]) => void): void {
    this.listeners.add(fn);
    if (this.loaded) fn(this.list);
  }

  /** Reloads the payees; on failure (e.g. offline) the last list stays. */
  refresh(): Promise<Payee[]> {
    if (!this.inflight) {
      this.inflight = api.payeesList()
        .then(({ items }) => { this.set(items); return this.list; })
        .finally(() => { this.inflight = null; });
    }
    return this.inflight;
  }

  set(list: Payee[]): void {
    this.list = list;
    this.loaded = true;
    for (const fn of this.listeners) fn(this.list);
  }

  byId(id: string): Payee | undefined {
    return this.list.find((p) => p.id === id);
  }

  /** The payee saved under this account number, if any. */
  byAccountNumber(number: string): Payee | undefined {
    return this.list.find((p) => p.account_number === number);
  }

  /** The payee saved under this key, if any. */
  byKey(key: { type: string; value: string }): Payee | undefined {
    return this.list.find((p) => p.key?.type === key.type && p.key.value === key.value);
  }
}

type Mode = 'account' | 'key';

export interface PayeeActions {
  /** Opens Move money (account payees) or Pay by key (key payees) with this payee chosen. */
  pay(p: Payee): void;
}

export function payeesView(payees: PayeeStore, actions: PayeeActions): View {
  const mode = h('select', { id: 'payee-mode' },
    h('option', { value: 'account' }, 'Account number at this bank'),
    h('option', { value: 'key' }, 'Key (phone, e-mail, national id, random) at any bank'));
  const number = h('input', { id: 'payee-number', autocomplete: 'off', spellcheck: 'false', inputmode: 'numeric', placeholder: 'Account number', maxlength: 34 });
  const numberField = field('Account number', number);
  const keyType = h('select', { id: 'payee-key-type' }, KEY_TYPES.map((k) => h('option', { value: k }, label(k))));
  const keyValue = h('input', { id: 'payee-key-value', autocomplete: 'off', spellcheck: 'false', maxlength: MAX_KEY_CHARS });
  const keyTypeField = field('Key type', keyType);
  const keyValueField = field('Key', keyValue, KEY_HINTS.national_id);
  const nickname = h('input', { id: 'payee-nickname', autocomplete: 'off', maxlength: MAX_NICKNAME, placeholder: 'e.g. Rent' });
  const add = h('button', { id: 'payee-add', type: 'submit', class: 'primary' }, 'Save payee');
  const error = h('p', { id: 'payee-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'payee-result', class: 'result', role: 'status', hidden: true });
  const form = h('form', { id: 'payee-add-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'payee-add-title' },
    h('h2', { id: 'payee-add-title' }, 'Add a payee'),
    field('Pay them by', mode),
    numberField, keyTypeField, keyValueField,
    field('Nickname', nickname, 'How the payee appears in your list, 1 to 64 characters'),
    error, result, add);

  const tbody = h('tbody', null);
  const listTitle = h('h2', { id: 'payees-list-title', tabindex: -1 }, 'Saved payees');
  const empty = h('p', { id: 'payees-empty', class: 'muted', hidden: true }, 'No saved payees yet. Add one to pay them again with a quick, confirmed transfer, even offline.');
  const listError = h('p', { id: 'payees-error', class: 'error', role: 'alert', hidden: true });
  const table = h('table', { class: 'table', id: 'payees-table' },
    h('caption', { class: 'sr-only' }, 'Your saved payees'),
    h('thead', null, h('tr', null, ['Nickname', 'Name', 'Account', 'Bank', 'Paid by', 'Saved', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const list = h('div', { id: 'payees-list', class: 'table-scroll' }, table);

  const el = h('section', { 'aria-labelledby': 'payees-title' },
    h('h1', { id: 'payees-title' }, 'Payees'),
    h('p', { class: 'muted' }, 'People you pay: saving one shows whose account it is (names are masked). Transfers to a saved payee are confirmed from what you saw here.'),
    h('div', { class: 'forms-grid' }, form),
    h('div', { class: 'panel', 'aria-labelledby': 'payees-list-title', role: 'region' }, listTitle, listError, list, empty));

  function syncMode() {
    const m = mode.value as Mode;
    numberField.hidden = m !== 'account';
    keyTypeField.hidden = m !== 'key';
    keyValueField.hidden = m !== 'key';
  }
  function syncKeyHint() {
    const hint = keyValueField.querySelector('small');
    if (hint) hint.textContent = KEY_HINTS[keyType.value as KeyType];
  }
  syncMode();
  mode.addEventListener('change', () => { syncMode(); showError(error, null); });
  keyType.addEventListener('change', syncKeyHint);

  function row(p: Payee): HTMLElement {
    const pay = h('button', { type: 'button', class: 'small', 'data-test': 'payee-pay', 'data-payee-id': p.id, 'aria-label': `Pay ${p.nickname}` }, 'Pay');
    pay.addEventListener('click', () => actions.pay(p));
    const del = h('button', { type: 'button', class: 'danger small', 'data-test': 'payee-delete', 'data-payee-id': p.id, 'aria-label': `Delete payee ${p.nickname}` }, 'Delete');
    del.addEventListener('click', () => void remove(p, del));
    return h('tr', {
      'data-test': 'payee', 'data-payee-id': p.id, 'data-nickname': p.nickname, 'data-kind': p.key ? 'key' : 'account',
      'data-holder-masked': p.holder_name_masked, 'data-account-masked': p.account_number_masked, 'data-bank-id': p.bank_id ?? '',
    },
    h('td', { 'data-test': 'payee-nickname' }, p.nickname),
    h('td', { 'data-test': 'payee-name' }, p.holder_name_masked),
    h('td', { class: 'mono', 'data-test': 'payee-account' }, p.account_number_masked),
    h('td', { 'data-test': 'payee-bank' }, bankName(p)),
    h('td', { 'data-test': 'payee-route' }, payeeRoute(p)),
    h('td', { class: 'nowrap' }, fmtDateTime(p.created_at)),
    h('td', { class: 'actions' }, pay, del));
  }

  payees.subscribe((items) => {
    clear(tbody, items.map(row));
    empty.hidden = items.length > 0;
    table.hidden = items.length === 0;
  });

  async function reload() {
    try {
      await payees.refresh();
      showError(listError, null);
    } catch (err) { showError(listError, err); }
  }

  async function remove(p: Payee, button: HTMLButtonElement) {
    const ok = await confirmDialog('Delete payee', `Delete the payee ${p.nickname} (${p.holder_name_masked}, account ${p.account_number_masked})? You can add them again later.`, 'Delete', true);
    if (!ok) return;
    // Focus goes to the next row's delete button (or the list's title) once this row is gone.
    const rows = Array.from(tbody.querySelectorAll<HTMLElement>('[data-test=payee]'));
    const at = rows.findIndex((r) => r.dataset.payeeId === p.id);
    const nextId = (rows[at + 1] ?? rows[at - 1])?.dataset.payeeId;
    await busy(button, async () => {
      try {
        await api.payeeDelete(p.id);
        payees.set(payees.list.filter((x) => x.id !== p.id));
        setResult(result, `Deleted the payee ${p.nickname}.`, 'deleted', { 'data-payee-id': p.id });
      } catch (err) {
        showError(listError, err, { not_found: 'That payee is already gone' });
      }
      await reload();
    });
    const next = nextId ? tbody.querySelector<HTMLElement>(`[data-test=payee-delete][data-payee-id="${CSS.escape(nextId)}"]`) : null;
    (next ?? listTitle).focus();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    const m = mode.value as Mode;
    let request: NewPayee;
    const nick = nickname.value.trim();
    if (m === 'account') {
      const n = number.value.trim();
      if (!n) { showError(error, 'Enter the account number'); number.focus(); return; }
      if (!/^[A-Za-z0-9]{1,34}$/.test(n)) { showError(error, 'An account number is 1 to 34 letters or digits'); number.focus(); return; }
      request = { account_number: n, nickname: nick };
    } else {
      const v = keyValue.value.trim();
      const keyProblem = keyValueProblem(v);
      if (keyProblem) { showError(error, keyProblem); keyValue.focus(); return; }
      request = { key: { type: keyType.value as KeyType, value: v }, nickname: nick };
    }
    const problem = nicknameProblem(nickname.value);
    if (problem) { showError(error, problem); nickname.focus(); return; }
    void busy(add, async () => {
      try {
        const already = new Set(payees.list.map((p) => p.id));
        const p = await api.payeeAdd(request);
        const wasSaved = already.has(p.id);
        setResult(result, savedText(p, wasSaved), wasSaved ? 'existing' : 'saved', { 'data-payee-id': p.id });
        payees.set([...payees.list.filter((x) => x.id !== p.id), p]);
        number.value = '';
        keyValue.value = '';
        nickname.value = '';
        (m === 'account' ? number : keyValue).focus();
        void reload();
      } catch (err) {
        showError(error, err, {
          not_found: m === 'account' ? 'No such account' : 'No account is registered under that key',
          limit_reached: 'You have as many saved payees as you may keep: delete one first',
          rate_limited: `${rateLimitText(err)}.`,
        });
        (m === 'account' ? number : keyValue).focus();
      }
    });
  });

  return {
    id: 'payees',
    label: 'Payees',
    el,
    show() { void reload(); },
  };
}
