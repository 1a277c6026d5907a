// The customer's views, sharing one account store and one store of saved payees.
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
import { PayeeStore, payeesView } from './payees';
import { limitsView } from './limits';
import { standingOrdersView } from './standing-orders';
import { exchangeView } from './exchange';
import { reviewsView } from './reviews';

export function customerViews(ctx: Ctx): View[] {
  const store = new AccountStore();
  const payees = new PayeeStore();
  // Loaded at sign-in, so saved payees can be confirmed and paid if the server goes away later.
  payees.refresh().catch(() => undefined);
  const move = moveView(store, payees);
  const payKey = payKeyView(store, payees);
  const payeeList = payeesView(payees, {
    pay(p) {
      if (p.account_number) { ctx.navigate(move.id); move.choosePayee(p.id); } else { ctx.navigate(payKey.id); payKey.chooseKeyPayee(p.id); }
    },
  });
  return [
    accountsView(store), move, payKey, payeeList, reviewsView(ctx, store), standingOrdersView(ctx, store, payees), exchangeView(store), limitsView(store), keysView(store),
    batchView(store), historyView(store), queueView(ctx, store), settingsView(store),
  ];
}
