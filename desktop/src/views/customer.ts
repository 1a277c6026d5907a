// The customer's views, sharing one account store.
import type { Ctx, View } from '../shell';
import { AccountStore } from './store';
import { accountsView } from './accounts';
import { moveView } from './move';
import { batchView } from './batch';
import { historyView } from './history';
import { queueView } from './queue';
import { settingsView } from './settings';
import { payKeyView } from './paykey';
import { keysView } from './keys';

export function customerViews(ctx: Ctx): View[] {
  const store = new AccountStore();
  return [accountsView(store), moveView(store), payKeyView(store), keysView(store), batchView(store), historyView(store), queueView(ctx, store), settingsView(store)];
}
