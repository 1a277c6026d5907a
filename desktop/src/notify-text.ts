// Plain sentences for in-app notifications (toasts and the Notifications view), and which
// notifications a poll brought in. Pure: no DOM, no IPC.
import { formatMoney } from './money';
import { refusalWords } from './schedule';
import type { AppNotification } from './types';

type Payload = Record<string, unknown> | null | undefined;

function str(p: Payload, key: string): string {
  const v = p?.[key];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** "12.50 INR" from payload fields (the currency is the account's). */
function money(p: Payload, key: string): string {
  return formatMoney(str(p, key) || null, str(p, 'currency'));
}

/** An account as the payload names it (already masked), or a neutral stand-in. */
function account(p: Payload, key = 'account'): string {
  return str(p, key) || 'your account';
}

/** "account ••••0027", or "your account". */
function accountWords(p: Payload): string {
  const a = str(p, 'account');
  return a ? `account ${a}` : 'your account';
}

/** "127.0.0.1/32" -> "127.0.0.1" (a host address as Postgres may print it). */
function address(raw: string): string {
  return raw.replace(/\/(32|128)$/, '');
}

const pad = (n: number) => String(n).padStart(2, '0');

/** "2026-12-02 10:00" in local time, or the text as it came when it is no date. */
export function localMinute(iso: string): string {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const KEY_WORDS: Record<string, string> = { phone: 'phone', email: 'e-mail', national_id: 'national id', random: 'random' };

const STATUS_WORDS: Record<string, string> = { active: 'active', frozen: 'frozen', closed: 'closed' };

/** A short human sentence for one notification. */
export function notificationText(n: Pick<AppNotification, 'kind' | 'payload'>): string {
  const p = n.payload;
  switch (n.kind) {
    case 'money.debit': {
      const to = str(p, 'counterparty');
      return `${money(p, 'amount')} debited from ${account(p)}${to ? ` to ${to}` : ''} — balance ${money(p, 'balance_after')}`;
    }
    case 'money.credit': {
      const from = str(p, 'counterparty');
      return `${money(p, 'amount')} credited to ${account(p)}${from ? ` from ${from}` : ''} — balance ${money(p, 'balance_after')}`;
    }
    case 'balance.low':
      return `Balance of ${account(p)} fell below ${money(p, 'threshold')} — now ${money(p, 'balance_after')}`;
    case 'security.new_device': {
      const addr = address(str(p, 'client_addr'));
      return addr ? `New sign-in from ${addr}` : 'New sign-in to your account';
    }
    case 'security.mfa_enrolled':
      return 'A new authenticator app was set up for your sign-in';
    case 'security.mfa_reset':
      return 'Your two-step sign-in was reset by the bank';
    case 'account.status': {
      const to = str(p, 'to');
      const was = str(p, 'from');
      const word = STATUS_WORDS[to] ?? to;
      const acct = str(p, 'account');
      if (!word) return `The status of ${acct ? `account ${acct}` : 'your account'} changed`;
      return `${acct ? `Account ${acct}` : 'Your account'} is now ${word}${to === 'active' && was === 'frozen' ? ' again' : ''}`;
    }
    case 'payee.added': {
      const holder = str(p, 'holder');
      const acct = str(p, 'account');
      const who = [holder, acct && `account ${acct}`].filter(Boolean).join(', ');
      return `New payee ${str(p, 'nickname') || 'saved'}${who ? ` (${who})` : ''} was added to your account. Not you? Call us now.`;
    }
    case 'account.opened': {
      const kind = str(p, 'kind');
      const currency = str(p, 'currency');
      const joint = p?.joint === true ? 'joint ' : '';
      const number = str(p, 'account');
      return `Your new ${joint}${kind ? `${kind} ` : ''}account${number ? ` ${number}` : ''}${currency ? ` (${currency})` : ''} is open. Not expected? Call us now.`;
    }
    case 'account.owner_added': {
      const owner = str(p, 'owner');
      return `${owner || 'Someone'} is now an owner of ${accountWords(p)} and can spend from it. Not expected? Call us now.`;
    }
    case 'limit.raised': {
      const at = str(p, 'effective_at');
      const limit = str(p, 'limit');
      const to = limit ? ` rises to ${money(p, 'limit')}` : ' is being raised';
      return `The daily limit of ${accountWords(p)}${to}${at ? ` from ${localMinute(at)}` : ''}. Not you? Call us now.`;
    }
    case 'key.registered': {
      const type = str(p, 'key_type');
      const key = str(p, 'key');
      return `The ${KEY_WORDS[type] ?? type}${type ? ' ' : ''}key ${key || '(new)'} now receives payments to ${accountWords(p)}. Not you? Call us now.`;
    }
    case 'standing_order.refused': {
      const at = str(p, 'retry_at');
      return `Your standing order of ${money(p, 'amount')} due ${str(p, 'due') || 'today'} was refused: ${refusalWords(str(p, 'code'))}. `
        + (at ? `It is tried once more at ${localMinute(at)}.` : 'It is tried once more later today.');
    }
    case 'standing_order.skipped':
      return `Your standing order of ${money(p, 'amount')} due ${str(p, 'due') || 'today'} was not paid: ${refusalWords(str(p, 'code'))}. `
        + 'The next date runs as planned.';
    case 'interbank.aborted':
      return `Your payment of ${money(p, 'amount')}${str(p, 'to') ? ` to a ${str(p, 'to')}` : ''} at another bank was not made `
        + `(${refusalWords(str(p, 'reason'))}): nothing left your account.`;
    case 'review.held': {
      const to = str(p, 'to');
      return `Your transfer of ${money(p, 'amount')}${to ? ` to ${to}` : ''} is held for a check by the bank: it is sent once approved. `
        + 'You can cancel it in Reviews.';
    }
    case 'review.approved':
      return `Your held transfer of ${money(p, 'amount')} was approved and sent.`;
    case 'review.rejected': {
      const freed = 'nothing was sent, and the held amount is free again.';
      switch (str(p, 'status')) {
        case 'cancelled': return `You cancelled your held transfer of ${money(p, 'amount')}: ${freed}`;
        case 'expired': return `Your held transfer of ${money(p, 'amount')} was not decided in time: ${freed}`;
        default: return `Your held transfer of ${money(p, 'amount')} was refused by the bank: ${freed}`;
      }
    }
    default:
      return `Notification: ${n.kind}`;
  }
}

/** A short category for the list ("Money", "Security", "Account"). */
export function notificationCategory(kind: string): string {
  if (kind.startsWith('money.') || kind === 'balance.low' || kind.startsWith('standing_order.') || kind.startsWith('review.')
    || kind === 'interbank.aborted') return 'Money';
  if (kind.startsWith('security.') || kind.startsWith('payee.') || kind.startsWith('limit.') || kind.startsWith('key.')
    || kind === 'account.owner_added') return 'Security';
  if (kind.startsWith('account.')) return 'Account';
  return 'Other';
}

/**
 * The notifications of a poll not seen before, oldest first, and records every id as seen.
 * The first poll only records (what was there at sign-in is not news); already-read ones are
 * recorded but not returned.
 */
export function arrivals(seen: Set<string>, items: AppNotification[], first: boolean): AppNotification[] {
  const fresh: AppNotification[] = [];
  for (const n of items) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (!first && !n.read_at) fresh.push(n);
  }
  return fresh.reverse();
}
