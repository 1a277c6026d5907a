// Customer settings: which notifications also go out by SMS or email, quiet hours and
// low-balance alerts per own account. In-app notifications always get everything.
import { api } from '../ipc';
import { busy, clear, field, h, keepFocus, setResult, showError } from '../dom';
import { formatMoney, validateAmount } from '../money';
import type { View } from '../shell';
import type { Account, LowBalanceAlert, NotificationSettings } from '../types';
import type { AccountStore } from './store';

const DEFAULT_QUIET = { start: '22:00', end: '07:00' };

/** This computer's IANA time zone ("Asia/Kolkata"), or "UTC" when the browser will not say. */
export function browserTimeZone(): string {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
}

/** "HH:MM" from a time input's value ("22:00" or "22:00:00"), or null. */
export function hhmm(value: string): string | null {
  const m = /^(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?$/.exec(value.trim());
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) return null;
  return `${m[1]}:${m[2]}`;
}

/**
 * The time zone to show for stored settings. The server answers "UTC" until the customer
 * saves; while quiet hours are off the zone changes nothing, so this computer's zone is offered.
 */
export function zoneToShow(s: Pick<NotificationSettings, 'quiet_hours' | 'time_zone'>, local: string): string {
  if (!s.time_zone || (s.quiet_hours === null && s.time_zone === 'UTC')) return local;
  return s.time_zone;
}

function checkbox(id: string): HTMLInputElement {
  return h('input', { id, type: 'checkbox' });
}

function check(box: HTMLInputElement, text: string): HTMLElement {
  return h('label', { class: 'check', for: box.id }, box, text);
}

export function settingsView(store: AccountStore): View {
  let stored: NotificationSettings | null = null;
  let dirty = false;
  let accountsKey = '';
  const thresholds = new Map<string, HTMLInputElement>();

  const smsMoney = checkbox('settings-sms-money');
  const emailMoney = checkbox('settings-email-money');
  const smsSecurity = checkbox('settings-sms-security');
  const emailSecurity = checkbox('settings-email-security');
  const quiet = checkbox('settings-quiet');
  const quietStart = h('input', { id: 'settings-quiet-start', type: 'time', disabled: true });
  const quietEnd = h('input', { id: 'settings-quiet-end', type: 'time', disabled: true });
  const local = browserTimeZone();
  const zones = h('datalist', { id: 'settings-time-zones' });
  const timeZone = h('input', {
    id: 'settings-time-zone', type: 'text', value: local, list: 'settings-time-zones', autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'off', maxlength: 64,
  });
  const useLocal = h('button', { id: 'settings-time-zone-local', type: 'button', class: 'link' }, `Use this computer's (${local})`);
  const alertRows = h('tbody', { id: 'settings-low-balance-rows' });
  const save = h('button', { id: 'settings-save', type: 'submit', class: 'primary', disabled: true }, 'Save settings');
  const error = h('p', { id: 'settings-error', class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: 'settings-result', class: 'result', role: 'status', hidden: true });

  const form = h('form', { id: 'settings-form', class: 'settings', novalidate: true, 'aria-labelledby': 'settings-title' },
    h('div', { class: 'forms-grid' },
      h('div', { class: 'panel' },
        h('h2', null, 'Where notifications go'),
        h('p', { class: 'muted small' }, 'Every notification always appears here in the app (the bell). Choose what is also sent to your phone and email.'),
        h('fieldset', { class: 'choices' },
          h('legend', null, 'Money', h('span', { class: 'hint' }, 'Debits, credits and low-balance alerts')),
          check(smsMoney, 'SMS'), check(emailMoney, 'Email')),
        h('fieldset', { class: 'choices' },
          h('legend', null, 'Security', h('span', { class: 'hint' }, 'New sign-ins, authenticator changes, an account frozen or closed')),
          check(smsSecurity, 'SMS'), check(emailSecurity, 'Email'))),
      h('div', { class: 'panel' },
        h('h2', null, 'Quiet hours'),
        check(quiet, 'Hold money SMS and emails during quiet hours'),
        h('div', { class: 'time-range' }, field('From', quietStart), field('To', quietEnd)),
        field('Time zone', timeZone, 'An IANA name such as Asia/Kolkata; quiet hours are in this zone.'),
        useLocal, zones,
        h('p', { id: 'settings-security-note', class: 'notice small' },
          'Security notices always go out straight away and ignore quiet hours. Money notices held during quiet hours are sent when they end.'))),
    h('div', { class: 'panel' },
      h('h2', { id: 'settings-low-balance-title' }, 'Low-balance alerts'),
      h('p', { class: 'muted small' },
        'Get a notification when a debit takes an account below the amount you set (leave empty for no alert). ' +
        'It fires once, and again only after the balance has been back at or above the amount.'),
      h('div', { class: 'table-scroll' }, h('table', { class: 'table', 'aria-labelledby': 'settings-low-balance-title' },
        h('thead', null, h('tr', null, ['Account', 'Balance', 'Alert below'].map((t) => h('th', { scope: 'col' }, t)))),
        alertRows))),
    error, result,
    h('div', { class: 'actions' }, save));

  const el = h('section', { 'aria-labelledby': 'settings-title' },
    h('h1', { id: 'settings-title' }, 'Settings'),
    form);

  // A list of known zones for the field's suggestions, when the engine can give one.
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try { zones.append(...(intl.supportedValuesOf?.('timeZone') ?? []).map((z) => h('option', { value: z }))); } catch { /* suggestions only */ }

  function syncQuiet() {
    quietStart.disabled = quietEnd.disabled = !quiet.checked;
    if (quiet.checked) {
      if (!quietStart.value) quietStart.value = DEFAULT_QUIET.start;
      if (!quietEnd.value) quietEnd.value = DEFAULT_QUIET.end;
    }
  }

  function thresholdInput(a: Account): HTMLInputElement {
    let input = thresholds.get(a.id);
    if (!input) {
      input = h('input', {
        id: `settings-low-balance-${a.id}`, 'data-test': 'low-balance', 'data-account-id': a.id, 'data-currency': a.currency,
        inputmode: 'decimal', autocomplete: 'off', placeholder: 'No alert',
      });
      input.value = stored?.low_balance_alerts.find((x) => x.account_id === a.id)?.threshold ?? '';
      thresholds.set(a.id, input);
    }
    return input;
  }

  function renderAccounts(list: Account[]) {
    const key = JSON.stringify(list.map((a) => [a.id, a.number, a.currency, a.status, a.balance]));
    if (key === accountsKey) return;
    accountsKey = key;
    keepFocus(alertRows, () => clear(alertRows, list.length
      ? list.map((a) => {
        const input = thresholdInput(a);
        return h('tr', { 'data-account-id': a.id },
          h('td', null, h('label', { for: input.id, class: 'number' }, a.number),
            a.status === 'active' ? null : [' ', h('span', { class: `status status-${a.status}` }, a.status)]),
          h('td', { class: 'num' }, formatMoney(a.balance, a.currency)),
          h('td', null, h('div', { class: 'with-unit' }, input, h('span', { class: 'unit' }, a.currency))));
      })
      : h('tr', null, h('td', { colspan: 3, class: 'muted' }, 'You have no accounts yet.'))));
  }

  /** Shows stored settings; `saved`: exactly as stored (no friendlier time zone). */
  function fill(s: NotificationSettings, saved: boolean) {
    stored = s;
    smsMoney.checked = s.sms_money;
    emailMoney.checked = s.email_money;
    smsSecurity.checked = s.sms_security;
    emailSecurity.checked = s.email_security;
    quiet.checked = s.quiet_hours !== null;
    quietStart.value = s.quiet_hours?.start ?? (quietStart.value || DEFAULT_QUIET.start);
    quietEnd.value = s.quiet_hours?.end ?? (quietEnd.value || DEFAULT_QUIET.end);
    syncQuiet();
    timeZone.value = saved ? s.time_zone : zoneToShow(s, local);
    for (const [id, input] of thresholds) {
      input.value = s.low_balance_alerts.find((x) => x.account_id === id)?.threshold ?? '';
      input.removeAttribute('aria-invalid');
    }
    dirty = false;
    save.disabled = false;
    form.dataset.loaded = 'true';
  }

  /** The settings to send, or a message (the offending control focused). */
  function collect(): NotificationSettings | string {
    for (const input of thresholds.values()) input.removeAttribute('aria-invalid');
    const alerts: LowBalanceAlert[] = [];
    for (const a of store.list) {
      const input = thresholds.get(a.id);
      const value = input?.value.trim() ?? '';
      if (!input || value === '') continue;
      const problem = validateAmount(value);
      if (problem) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return `Low-balance alert for ${a.number}: ${problem}`;
      }
      alerts.push({ account_id: a.id, threshold: value });
    }
    // Alerts on accounts not listed here (none expected) are kept as they are.
    for (const x of stored?.low_balance_alerts ?? []) if (!store.byId(x.account_id)) alerts.push(x);

    let quietHours: NotificationSettings['quiet_hours'] = null;
    if (quiet.checked) {
      const start = hhmm(quietStart.value);
      const end = hhmm(quietEnd.value);
      if (!start) { quietStart.focus(); return 'Enter when quiet hours start, e.g. 22:00'; }
      if (!end) { quietEnd.focus(); return 'Enter when quiet hours end, e.g. 07:00'; }
      if (start === end) { quietEnd.focus(); return 'Quiet hours must start and end at different times'; }
      quietHours = { start, end };
    }
    const zone = timeZone.value.trim();
    if (!zone) { timeZone.focus(); return 'Enter a time zone such as Asia/Kolkata'; }
    return {
      sms_money: smsMoney.checked,
      sms_security: smsSecurity.checked,
      email_money: emailMoney.checked,
      email_security: emailSecurity.checked,
      quiet_hours: quietHours,
      time_zone: zone,
      low_balance_alerts: alerts,
    };
  }

  form.addEventListener('input', () => { dirty = true; setResult(result, null); });
  form.addEventListener('change', () => { dirty = true; setResult(result, null); });
  quiet.addEventListener('change', syncQuiet);
  useLocal.addEventListener('click', () => { timeZone.value = local; dirty = true; setResult(result, null); timeZone.focus(); });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    setResult(result, null);
    const settings = collect();
    if (typeof settings === 'string') { showError(error, settings); return; }
    void busy(save, async () => {
      try {
        fill(await api.saveNotificationSettings(settings), true);
        setResult(result, 'Settings saved.', 'saved');
      } catch (err) {
        showError(error, err, { not_found: 'A low-balance alert names an account that is not yours' });
      }
    });
  });

  store.subscribe(renderAccounts);

  async function load() {
    try {
      const [settings] = await Promise.all([api.notificationSettings(), store.refresh()]);
      // Coming back to the page keeps what the customer was typing.
      if (!dirty || !stored) fill(settings, false);
      showError(error, null);
    } catch (err) {
      showError(error, err);
    }
  }

  return { id: 'settings', label: 'Settings', el, show() { void load(); } };
}
