// Daily limits: what may leave an account in one day, what left it today, and changing it.
// A customer's lower limit counts at once; a higher one (up to the bank's default) only 24 h
// later, and every owner is told. The branch sets any limit at once (Accounts, "Daily limit").
import { api, toIpcError } from '../ipc';
import { errorMessage, isSessionLost } from '../errors';
import { busy, fillSelect, fmtDateTime, h, setResult, showError } from '../dom';
import { formatMoney, sumAmounts, validateAmount } from '../money';
import type { View } from '../shell';
import type { Limits } from '../types';
import type { AccountStore } from './store';

/** A decimal string ("1250.5") in cents, or null when it is none. */
function cents(amount: string): bigint | null {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(amount.trim());
  return m ? BigInt(m[1]) * 100n + BigInt((m[2] ?? '').padEnd(2, '0')) : null;
}

/** -1, 0 or 1 as a < b, a = b, a > b (decimal strings; what is no amount counts as 0). */
export function compareAmounts(a: string, b: string): number {
  const x = cents(a) ?? 0n;
  const y = cents(b) ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What may still leave the account today: the limit less what was used, never below 0. */
export function leftToday(l: Pick<Limits, 'daily_transfer_limit' | 'used_today'>): string {
  const left = sumAmounts([l.daily_transfer_limit, `-${l.used_today}`]);
  return left.startsWith('-') ? '0.00' : left;
}

/** The share of today's limit used, 0 to 100 (whole percent, rounded down; 100 when the limit is used up). */
export function usedPercent(l: Pick<Limits, 'daily_transfer_limit' | 'used_today'>): number {
  const limit = cents(l.daily_transfer_limit) ?? 0n;
  const used = cents(l.used_today) ?? 0n;
  if (limit <= 0n) return used > 0n ? 100 : 0;
  const pct = (used * 100n) / limit;
  return Number(pct > 100n ? 100n : pct);
}

/** "Raise to 500,000.00 INR asked for: it counts from 2026-12-02 10:00:00." (or null: none waits). */
export function pendingText(l: Pick<Limits, 'pending_raise' | 'currency'>): string | null {
  const p = l.pending_raise;
  if (!p) return null;
  return `Raise to ${formatMoney(p.daily_transfer_limit, l.currency)} asked for: it counts from ${fmtDateTime(p.effective_at)} (24 hours after it was asked for). Until then the limit above applies.`;
}

/** A new limit as typed: null when fine, else what is wrong. */
export function newLimitProblem(text: string): string | null {
  if (!text.trim()) return 'Enter the new daily limit';
  const problem = validateAmount(text);
  return problem ? problem.replace(/^Amount/, 'The limit') : null;
}

export type LimitOutcome = 'now' | 'pending';

/** What a change did, in words: `after` is the server's answer to setting `requested`. */
export function changeText(after: Limits, requested: string, branch: boolean, number?: string): { state: LimitOutcome; text: string } {
  const whose = branch ? `The daily limit of account ${number ?? ''}`.replace(/ $/, '') : 'Your daily limit';
  const pending = after.pending_raise;
  if (!branch && pending && compareAmounts(pending.daily_transfer_limit, requested) === 0) {
    return {
      state: 'pending',
      text: `Asked for: ${whose.charAt(0).toLowerCase()}${whose.slice(1)} rises to ${formatMoney(pending.daily_transfer_limit, after.currency)} `
        + `from ${fmtDateTime(pending.effective_at)}, 24 hours from now. Until then it stays ${formatMoney(after.daily_transfer_limit, after.currency)}. `
        + 'Every owner of the account is told.',
    };
  }
  return { state: 'now', text: `${whose} is now ${formatMoney(after.daily_transfer_limit, after.currency)}. It counts at once.` };
}

/** A refused change in plain words: above the bank's default only the branch may go. */
export function limitErrorText(err: unknown, bankDefault: string | null, currency: string | null): string {
  const e = toIpcError(err);
  if (e.code === 'forbidden') {
    const fig = bankDefault && currency ? formatMoney(bankDefault, currency) : /default of ([\d.]+ [A-Z]{3})/.exec(e.detail)?.[1];
    return fig
      ? `Only your branch can set a limit above the bank's default of ${fig}. Ask your branch, or choose at most ${fig}.`
      : "Only your branch can set a limit above the bank's default. Ask your branch.";
  }
  return errorMessage(e, { not_found: 'No such account' });
}

/** The figures of one account's limits, under ids `${prefix}-current`, `-used`, `-progress`, `-left`, `-default`, `-time-zone`, `-pending`. */
export function limitFigures(prefix: string): { el: HTMLElement; render(l: Limits | null): void } {
  const current = h('dd', { id: `${prefix}-current`, class: 'limit-figure' }, '—');
  const used = h('dd', { id: `${prefix}-used` }, '—');
  const left = h('dd', { id: `${prefix}-left` }, '—');
  const bankDefault = h('dd', { id: `${prefix}-default` }, '—');
  const timeZone = h('dd', { id: `${prefix}-time-zone` }, '—');
  const progress = h('progress', { id: `${prefix}-progress`, max: 100, value: 0, 'aria-labelledby': `${prefix}-progress-label` });
  const progressLabel = h('span', { id: `${prefix}-progress-label`, class: 'muted small' }, 'Used today');
  const pending = h('p', { id: `${prefix}-pending`, class: 'notice', role: 'status', hidden: true });
  const el = h('div', { class: 'limit-figures' },
    h('dl', { class: 'stats' },
      h('div', null, h('dt', null, 'Daily limit'), current),
      h('div', null, h('dt', null, 'Used today'), used),
      h('div', null, h('dt', null, 'Left today'), left),
      h('div', null, h('dt', null, "Bank's default"), bankDefault)),
    h('div', { class: 'limit-bar' }, progress, progressLabel),
    h('dl', { class: 'facts' }, h('dt', null, 'Days counted in'), timeZone),
    pending);

  function render(l: Limits | null) {
    for (const [node, value] of [[current, l?.daily_transfer_limit], [used, l?.used_today], [left, l ? leftToday(l) : null], [bankDefault, l?.bank_default]] as const) {
      node.textContent = l && value != null ? formatMoney(value, l.currency) : '—';
    }
    current.dataset.limit = l?.daily_transfer_limit ?? '';
    used.dataset.used = l?.used_today ?? '';
    left.dataset.left = l ? leftToday(l) : '';
    bankDefault.dataset.default = l?.bank_default ?? '';
    timeZone.textContent = l?.time_zone ?? '—';
    const pct = l ? usedPercent(l) : 0;
    progress.value = pct;
    progressLabel.textContent = l ? `${pct}% of today's limit used` : 'Used today';
    const text = l ? pendingText(l) : null;
    pending.textContent = text ?? '';
    pending.hidden = !text;
    if (l?.pending_raise) {
      pending.dataset.limit = l.pending_raise.daily_transfer_limit;
      pending.dataset.effectiveAt = l.pending_raise.effective_at;
    } else {
      delete pending.dataset.limit;
      delete pending.dataset.effectiveAt;
    }
  }
  render(null);
  return { el, render };
}

/** The change form under ids `${prefix}-new`, `-save`, `-error`, `-result`; `save` answers the new limits. */
export function limitForm(prefix: string, opts: {
  branch: boolean;
  explain: HTMLElement;
  current(): Limits | null;
  save(limit: string): Promise<Limits>;
  saved(l: Limits, outcome: { state: LimitOutcome; text: string }): void;
  number?(): string | undefined;
}): { el: HTMLFormElement; error: HTMLElement; result: HTMLElement; input: HTMLInputElement; reset(): void } {
  const input = h('input', { id: `${prefix}-new`, inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00', 'aria-describedby': `${prefix}-explain` });
  opts.explain.id = `${prefix}-explain`;
  const save = h('button', { id: `${prefix}-save`, type: 'submit', class: 'primary' }, opts.branch ? 'Set limit' : 'Change limit');
  const error = h('p', { id: `${prefix}-error`, class: 'error', role: 'alert', hidden: true });
  const result = h('p', { id: `${prefix}-result`, class: 'result', role: 'status', hidden: true });
  const el = h('form', { id: `${prefix}-form`, class: 'form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: input.id }, 'New daily limit'), input, opts.explain),
    error, result, h('div', { class: 'actions' }, save));

  el.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(error, null);
    delete error.dataset.code;
    setResult(result, null);
    const before = opts.current();
    if (!before) { showError(error, 'Choose an account first'); return; }
    const problem = newLimitProblem(input.value);
    if (problem) { showError(error, problem); input.focus(); return; }
    const limit = input.value.trim();
    void busy(save, async () => {
      try {
        const after = await opts.save(limit);
        const outcome = changeText(after, limit, opts.branch, opts.number?.());
        setResult(result, outcome.text, outcome.state, { 'data-limit': after.daily_transfer_limit });
        input.value = '';
        opts.saved(after, outcome);
      } catch (err) {
        if (isSessionLost(err)) return;
        showError(error, limitErrorText(err, before.bank_default, before.currency));
        error.dataset.code = toIpcError(err).code;
        input.focus();
      }
    });
  });

  return {
    el, error, result, input,
    reset() { showError(error, null); setResult(result, null); input.value = ''; },
  };
}

export function limitsView(store: AccountStore): View {
  const account = h('select', { id: 'limit-account' });
  const viewError = h('p', { id: 'limits-error', class: 'error', role: 'alert', hidden: true });
  const figures = limitFigures('limit');
  let limits: Limits | null = null;
  let token = 0;
  const explain = h('small', { class: 'hint' });
  const form = limitForm('limit', {
    branch: false,
    explain,
    current: () => limits,
    save: (limit) => api.limitsSet(account.value, limit),
    saved(l) { show(l); },
  });

  function explainFor(l: Limits | null) {
    const top = l ? formatMoney(l.bank_default, l.currency) : "the bank's default";
    explain.textContent = `A lower limit counts at once. A higher one, up to ${top}, counts 24 hours after you ask, `
      + 'and every owner of the account is told. Only your branch can set a limit above the bank\'s default.';
  }
  explainFor(null);

  const el = h('section', { 'aria-labelledby': 'limits-title' },
    h('h1', { id: 'limits-title' }, 'Daily limits'),
    h('p', { class: 'muted' }, 'Each account has a daily limit on what can leave it: transfers, withdrawals, batches and payments to other banks together.'),
    viewError,
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'limit-figures-title' },
      h('h2', { id: 'limit-figures-title' }, 'Today'),
      h('div', { class: 'field' }, h('label', { for: 'limit-account' }, 'Account'), account),
      figures.el),
    h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'limit-change-title' },
      h('h2', { id: 'limit-change-title' }, 'Change the limit'),
      form.el));

  function show(l: Limits | null) {
    limits = l;
    figures.render(l);
    explainFor(l);
    el.dataset.accountId = l?.account_id ?? '';
  }

  async function load() {
    const id = account.value;
    const mine = ++token;
    if (!id) { show(null); return; }
    try {
      const l = await api.limitsGet(id);
      if (mine !== token) return;
      show(l);
      showError(viewError, null);
    } catch (err) {
      if (mine !== token) return;
      show(null);
      showError(viewError, err, { not_found: 'No such account' });
    }
  }

  store.subscribe(() => {
    const before = account.value;
    fillSelect(account, store.options());
    if (account.value !== before) void load();
  });
  account.addEventListener('change', () => { form.reset(); void load(); });

  return {
    id: 'limits',
    label: 'Limits',
    el,
    show() {
      store.refresh().then(() => load(), (err) => showError(viewError, err));
    },
  };
}

