// The signed-in customer's accounts, shared by every customer view.
import { api } from '../ipc';
import { formatMoney } from '../money';
import type { Account } from '../types';

export const MAX_MEMO = 140;

export function accountLabel(a: Account): string {
  const status = a.status === 'active' ? '' : ` (${a.status})`;
  return `${a.number} · ${formatMoney(a.balance, a.currency)}${status}`;
}

export class AccountStore {
  list: Account[] = [];
  loaded = false;
  private listeners = new Set<(list: Account[]) => void>();
  private inflight: Promise<Account[]> | null = null;

  subscribe(fn: (list: Account[]) => void): void {
    this.listeners.add(fn);
    if (this.loaded) fn(this.list);
  }

  /** Reloads the accounts (`me`); concurrent callers share one request. */
  refresh(): Promise<Account[]> {
    if (!this.inflight) {
      this.inflight = api.me()
        .then((me) => {
          this.list = me.accounts;
          this.loaded = true;
          for (const fn of this.listeners) fn(this.list);
          return this.list;
        })
        .finally(() => { this.inflight = null; });
    }
    return this.inflight;
  }

  byId(id: string): Account | undefined {
    return this.list.find((a) => a.id === id);
  }

  options(): { value: string; label: string }[] {
    return this.list.map((a) => ({ value: a.id, label: accountLabel(a) }));
  }
}
