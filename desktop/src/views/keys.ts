// My keys: the alias keys others can pay the customer by (phone, e-mail, national id, random).
// Phone and e-mail keys wait for the 6-digit code sent there; deleting asks first.
import { api } from '../ipc';
import { busy, clear, confirmDialog, field, fillSelect, fmtDateTime, h, label, setResult, showError } from '../dom';
import type { View } from '../shell';
import type { AliasKey, KeyType } from '../types';
import type { AccountStore } from './store';
import { KEY_HINTS } from './paykey';

const REGISTER_TYPES: KeyType[] = ['random', 'national_id', 'phone', 'email'];

/** What the status column says. */
export function keyStatusText(k: Pick<AliasKey, 'status' | 'type'>): string {
  if (k.status === 'pending_verification') return `Waiting for the code sent to this ${k.type === 'email' ? 'address' : 'phone'}`;
  return label(k.status);
}

export function keysView(store: AccountStore): View {
  /** The key waiting for its code, while the code form is open. */
  let verifying: AliasKey | null = null;

  const account = h('select', { id: 'key-account', required: true });
  const type = h('select', { id: 'key-type' }, REGISTER_TYPES.map((k) => h('option', { value: k }, label(k))));
  const value = h('input', { id: 'key-value', autocomplete: 'off', spellcheck: 'false' });
  const valueField = field('Key', value, KEY_HINTS.phone);
  const register = h('button', { id: 'key-register', type: 'submit', class: 'primary' }, 'Register key');
  const registerError = h('p', { id: 'key-error', class: 'error', role: 'alert', hidden: true });
  const registerResult = h('p', { id: 'key-result', class: 'result', role: 'status', hidden: true });
  const registerForm = h('form', { id: 'key-form', class: 'panel form', novalidate: true, 'aria-labelledby': 'key-form-title' },
    h('h2', { id: 'key-form-title' }, 'Register a key'),
    field('Account', account), field('Key type', type), valueField, registerError, registerResult, register);

  const code = h('input', { id: 'key-code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, spellcheck: 'false' });
  const verifyText = h('p', { id: 'key-verify-text' });
  const verify = h('button', { id: 'key-verify', type: 'submit', class: 'primary' }, 'Verify');
  const verifyCancel = h('button', { id: 'key-verify-cancel', type: 'button' }, 'Later');
  const verifyError = h('p', { id: 'key-verify-error', class: 'error', role: 'alert', hidden: true });
  const verifyForm = h('form', { id: 'key-verify-form', class: 'panel form', novalidate: true, hidden: true, 'aria-labelledby': 'key-verify-title' },
    h('h2', { id: 'key-verify-title' }, 'Enter the code'), verifyText, field('6-digit code', code), verifyError,
    h('div', { class: 'actions' }, verify, verifyCancel));

  const tbody = h('tbody', { id: 'keys-rows' });
  const empty = h('p', { id: 'keys-empty', class: 'muted', hidden: true }, 'You have no keys yet. Register one so people at other banks can pay you by it.');
  const listError = h('p', { id: 'keys-error', class: 'error', role: 'alert', hidden: true });
  const table = h('table', { class: 'table', id: 'keys-table' },
    h('caption', { class: 'sr-only' }, 'Your keys'),
    h('thead', null, h('tr', null, ['Type', 'Key', 'Account', 'Status', 'Registered', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);

  const el = h('section', { 'aria-labelledby': 'keys-title' },
    h('h1', { id: 'keys-title' }, 'My keys'),
    h('div', { class: 'forms-grid' }, registerForm, verifyForm),
    h('div', { class: 'panel' }, h('h2', null, 'Your keys'), listError, h('div', { class: 'table-scroll' }, table), empty));

  function syncValueField() {
    const t = type.value as KeyType;
    valueField.hidden = t === 'random';
    const hint = valueField.querySelector('small');
    if (hint) hint.textContent = t === 'random' ? '' : t === 'national_id' ? 'Your own national id number' : KEY_HINTS[t];
  }
  syncValueField();
  type.addEventListener('change', syncValueField);
  store.subscribe(() => { fillSelect(account, store.options()); void reload(); });

  function row(k: AliasKey): HTMLElement {
    const del = h('button', { type: 'button', class: 'danger small', 'data-action': 'delete', 'data-id': k.id, 'aria-label': `Delete ${label(k.type)} key ${k.value}` }, 'Delete');
    del.addEventListener('click', () => void remove(k, del));
    const verifyBtn = k.status === 'pending_verification'
      ? h('button', { type: 'button', class: 'small', 'data-action': 'verify', 'data-id': k.id }, 'Enter code')
      : null;
    verifyBtn?.addEventListener('click', () => openVerify(k));
    return h('tr', { 'data-test': 'key-row', 'data-id': k.id, 'data-type': k.type, 'data-status': k.status, 'data-value': k.value },
      h('td', null, label(k.type)),
      h('td', { class: 'mono' }, k.value),
      h('td', { class: 'mono' }, store.byId(k.account_id)?.number ?? k.account_id),
      h('td', { 'data-test': 'key-status' }, keyStatusText(k)),
      h('td', { class: 'nowrap' }, fmtDateTime(k.created_at)),
      h('td', { class: 'actions' }, verifyBtn, del));
  }

  async function reload() {
    try {
      const { items } = await api.keysList();
      clear(tbody, items.map(row));
      empty.hidden = items.length > 0;
      showError(listError, null);
    } catch (err) { showError(listError, err); }
  }

  function openVerify(k: AliasKey) {
    verifying = k;
    verifyText.textContent = `We sent a 6-digit code to ${k.value}. Enter it to activate this key.`;
    code.value = '';
    showError(verifyError, null);
    verifyForm.hidden = false;
    code.focus();
  }
  function closeVerify() {
    verifying = null;
    verifyForm.hidden = true;
  }

  async function remove(k: AliasKey, button: HTMLButtonElement) {
    const ok = await confirmDialog('Delete key', `Delete the key ${k.value} (${label(k.type)})? People can no longer pay you by it.`, 'Delete', true);
    if (!ok) return;
    await busy(button, async () => {
      try {
        await api.keyDelete(k.id);
        if (verifying?.id === k.id) closeVerify();
        setResult(registerResult, `Deleted the key ${k.value}.`, 'deleted', { 'data-id': k.id });
      } catch (err) { showError(listError, err, { not_found: 'That key is already gone' }); }
      await reload();
    });
  }

  registerForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(registerError, null);
    setResult(registerResult, null);
    const t = type.value as KeyType;
    const v = value.value.trim();
    if (!account.value) { showError(registerError, 'Choose an account'); account.focus(); return; }
    if (t !== 'random' && !v) { showError(registerError, 'Enter the key'); value.focus(); return; }
    void busy(register, async () => {
      try {
        const k = await api.keyRegister(account.value, t, t === 'random' ? undefined : v);
        value.value = '';
        if (k.status === 'pending_verification') {
          setResult(registerResult, `Registered ${k.value}; it becomes active once you enter the code we sent.`, 'pending_verification', { 'data-id': k.id });
          openVerify(k);
        } else {
          setResult(registerResult, `Registered the key ${k.value} (${label(k.type)}). It is active.`, 'active', { 'data-id': k.id, 'data-value': k.value });
        }
      } catch (err) {
        showError(registerError, err, { forbidden: 'You can only register your own national id', not_found: 'No such account' });
      }
      await reload();
    });
  });

  verifyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!verifying) return;
    const c = code.value.replace(/\s+/g, '');
    if (!/^\d{6}$/.test(c)) { showError(verifyError, 'Enter the 6-digit code'); code.focus(); return; }
    const k = verifying;
    void busy(verify, async () => {
      try {
        const done = await api.keyVerify(k.id, c);
        closeVerify();
        setResult(registerResult, `The key ${done.value} is active.`, 'active', { 'data-id': done.id, 'data-value': done.value });
      } catch (err) {
        showError(verifyError, err, { not_found: 'The code expired or was tried too often: delete the key and register it again' });
        code.select();
      }
      await reload();
    });
  });
  verifyCancel.addEventListener('click', closeVerify);
  code.addEventListener('input', () => { code.value = code.value.replace(/[^\d]/g, '').slice(0, 6); });

  return {
    id: 'keys',
    label: 'My keys',
    el,
    show() { store.refresh().then(() => reload(), (err) => showError(listError, err)); },
  };
}
