// The branch admin's views.
import type { Ctx, View } from '../shell';
import { customersView } from './admin-customers';
import { adminAccountsView } from './admin-accounts';
import { tellerView } from './admin-teller';
import { auditView, branchTransactionsView } from './admin-lists';
import { adminInterbankView } from './admin-interbank';
import { adminFxView } from './exchange';
import { adminReviewsView } from './admin-reviews';

export function adminViews(ctx: Ctx): View[] {
  return [customersView(), adminAccountsView(), tellerView(), adminReviewsView(ctx), branchTransactionsView(), adminFxView(), adminInterbankView(), auditView()];
}
