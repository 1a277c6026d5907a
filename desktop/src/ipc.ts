// Typed wrappers around the Tauri commands (docs/desktop-commands.md). The web view never
// talks HTTP and never sees the session token.
import { invoke } from '@tauri-apps/api/core';
import type {
  AccountLookup, AliasKey, DirectoryEntry, NewPayee, Payee, InterbankPayment, InterbankPosition, KeyType,
  Account, AppInfo, AuditRow, BatchItem, BatchPreview, BranchTransfer, ClusterState, Customer,
  Entry, EntryKind, Limits, LoginAnswer, MfaAnswer, NewCustomer, NotificationPage, NotificationSettings, Page,
  QueueItem, Transfer, TransferAnswer, TransferRequest, User,
  FxQuote, FxRate, FxTransfer, NewStandingOrder, OrderChange, OrderRun, SavedStatement, StandingOrder,
  Review, ReviewFilter,
} from './types';

export type ErrorKind = 'problem' | 'unreachable' | 'invalid' | 'internal';

/** The one error object every failed command rejects with. */
export class IpcError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly retryAfterS: number | null,
  ) {
    super(detail || code);
    this.name = 'IpcError';
  }
}

export function toIpcError(raw: unknown): IpcError {
  if (raw instanceof IpcError) return raw;
  if (raw && typeof raw === 'object' && 'code' in raw) {
    const o = raw as Record<string, unknown>;
    const kind = (['problem', 'unreachable', 'invalid'] as const).find((k) => k === o.kind) ?? 'internal';
    const retry = typeof o.retry_after_s === 'number' ? o.retry_after_s : null;
    return new IpcError(kind, Number(o.status) || 0, String(o.code), String(o.detail ?? ''), retry);
  }
  // Tauri itself rejects with a string (unknown command, bad arguments, no bridge in a browser).
  const text = raw instanceof Error ? raw.message : String(raw);
  return new IpcError('internal', 0, 'internal', text, null);
}

// Commands that are part of signing in: their `unauthenticated` does not mean "session lost".
const SESSION_COMMANDS = new Set(['login', 'verify_mfa', 'current_user', 'logout', 'app_info']);
let sessionLostHandler: ((command: string) => void) | null = null;

/** Called (once per failure) when a command fails with `unauthenticated`. */
export function onSessionLost(handler: (command: string) => void): void {
  sessionLostHandler = handler;
}

export async function call<T>(name: string, req?: object): Promise<T> {
  try {
    return req === undefined ? await invoke<T>(name) : await invoke<T>(name, { req });
  } catch (raw) {
    const err = toIpcError(raw);
    if (err.code === 'unauthenticated' && !SESSION_COMMANDS.has(name)) sessionLostHandler?.(name);
    throw err;
  }
}

// Optional fields are left out rather than sent as empty strings.
function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') out[k] = v;
  return out as T;
}

export interface HistoryFilter { account_id: string; from?: string; to?: string; kind?: EntryKind }

export const api = {
  appInfo: () => call<AppInfo>('app_info'),
  login: (username: string, password: string, bank_id?: string) =>
    call<LoginAnswer>('login', compact({ username, password, bank_id })),
  verifyCode: (code: string) => call<MfaAnswer>('verify_mfa', { code }),
  verifyRecovery: (recovery_code: string) => call<MfaAnswer>('verify_mfa', { recovery_code }),
  currentUser: () => call<User | null>('current_user'),
  logout: () => call<null>('logout'),

  me: () => call<{ user: User; accounts: Account[] }>('me'),
  account: (account_id: string) => call<Account>('account', { account_id }),
  transactions: (f: HistoryFilter & { limit?: number; cursor?: string | null }) =>
    call<Page<Entry>>('transactions', compact(f)),
  exportTransactions: (f: HistoryFilter) => call<{ path: string; rows: number }>('export_transactions', compact(f)),
  deposit: (account_id: string, amount: string, memo: string) => call<Transfer>('deposit', { account_id, amount, memo }),
  withdraw: (account_id: string, amount: string, memo: string) => call<Transfer>('withdraw', { account_id, amount, memo }),
  transfer: (r: TransferRequest) => call<TransferAnswer>('transfer', r),
  previewBatch: (csv: string, accounts: Account[]) => call<BatchPreview>('preview_batch', { csv, accounts }),
  submitBatch: (items: BatchItem[]) => call<{ transfers: Transfer[] }>('submit_batch', { items }),

  queueList: () => call<QueueItem[]>('queue_list'),
  queueCancel: (id: string) => call<QueueItem>('queue_cancel', { id }),
  queueClearFinished: () => call<QueueItem[]>('queue_clear_finished'),

  adminCustomers: (q: { query?: string; cursor?: string | null; limit?: number }) =>
    call<Page<Customer>>('admin_customers', compact(q)),
  adminCreateCustomer: (c: NewCustomer) => call<User>('admin_create_customer', c),
  adminOpenAccount: (owner_ids: string[], kind: string, currency: string) =>
    call<Account>('admin_open_account', { owner_ids, kind, currency }),
  adminAccountAction: (account_id: string, action: 'freeze' | 'unfreeze' | 'close') =>
    call<Account>('admin_account_action', { account_id, action }),
  adminTeller: (kind: 'deposit' | 'withdrawal', account_id: string, amount: string, memo: string) =>
    call<Transfer>('admin_teller', { kind, account_id, amount, memo }),
  adminAccounts: (q: { query?: string; status?: string; cursor?: string | null; limit?: number }) =>
    call<Page<Account>>('admin_accounts', compact(q)),
  adminTransactions: (q: { account_id?: string; from?: string; to?: string; cursor?: string | null }) =>
    call<Page<BranchTransfer>>('admin_transactions', compact(q)),
  adminAudit: (q: { actor?: string; action?: string; from?: string; to?: string; cursor?: string | null }) =>
    call<Page<AuditRow>>('admin_audit', compact(q)),
  adminResetMfa: (user_id: string) => call<null>('admin_reset_mfa', { user_id }),

  notifications: (q: { cursor?: string | null; unread_only?: boolean; limit?: number }) =>
    call<NotificationPage>('notifications', compact({ ...q, unread_only: q.unread_only || undefined })),
  markNotificationsRead: (ids: string[]) => call<{ unread_count: number }>('notifications_mark_read', { ids }),
  markAllNotificationsRead: () => call<{ unread_count: number }>('notifications_mark_read', { all: true }),
  notificationSettings: () => call<NotificationSettings>('notification_settings'),
  saveNotificationSettings: (s: NotificationSettings) => call<NotificationSettings>('save_notification_settings', s),

  directoryLookup: (type: KeyType, value: string) => call<DirectoryEntry>('directory_lookup', { type, value }),
  /** The Payment, or (202 `held_for_review`) the Review when the bank holds it for a check. */
  interbankPay: (r: { from_account_id: string; key_type: KeyType; key_value: string; amount: string; memo: string; idempotency_key: string }) =>
    call<InterbankPayment | Review>('interbank_pay', r),
  interbankPayment: (id: string) => call<InterbankPayment>('interbank_payment', { id }),
  interbankPayments: (cursor?: string | null) => call<Page<InterbankPayment>>('interbank_payments', compact({ cursor })),
  keysList: () => call<{ items: AliasKey[] }>('keys_list'),
  keyRegister: (account_id: string, type: KeyType, value?: string) =>
    call<AliasKey>('key_register', type === 'random' ? { account_id, type } : { account_id, type, value }),
  keyVerify: (id: string, code: string) => call<AliasKey>('key_verify', { id, code }),
  keyDelete: (id: string) => call<null>('key_delete', { id }),
  accountLookup: (number: string) => call<AccountLookup>('account_lookup', { number }),
  payeesList: () => call<{ items: Payee[] }>('payees_list'),
  payeeAdd: (p: NewPayee) => call<Payee>('payee_add', p),
  payeeDelete: (id: string) => call<null>('payee_delete', { id }),
  limitsGet: (account_id: string) => call<Limits>('limits_get', { account_id }),
  limitsSet: (account_id: string, daily_transfer_limit: string) => call<Limits>('limits_set', { account_id, daily_transfer_limit }),
  adminAddOwner: (account_id: string, user_id: string) => call<Account>('admin_add_owner', { account_id, user_id }),
  standingOrders: () => call<{ items: StandingOrder[] }>('standing_orders_list'),
  standingOrderCreate: (o: NewStandingOrder) => call<StandingOrder>('standing_order_create', o),
  standingOrderPause: (id: string, paused: boolean) => call<StandingOrder>('standing_order_pause', { id, paused }),
  standingOrderUpdate: (id: string, change: OrderChange) => call<StandingOrder>('standing_order_update', { id, ...change }),
  standingOrderCancel: (id: string) => call<null>('standing_order_cancel', { id }),
  standingOrderRuns: (id: string) => call<{ items: OrderRun[] }>('standing_order_runs', { id }),
  fxRates: () => call<{ rates: FxRate[] }>('fx_rates'),
  fxQuote: (from_account_id: string, to_account_number: string, amount: string) =>
    call<FxQuote>('fx_quote', { from_account_id, to_account_number, amount }),
  fxExchange: (r: { quote_id: string; from_account_id: string; to_account_number: string; amount: string; memo: string; idempotency_key: string }) =>
    call<FxTransfer>('fx_exchange', r),
  adminFxRatesSet: (rates: { from: string; to: string; rate: string }[]) => call<{ rates: FxRate[] }>('admin_fx_rates_set', { rates }),
  reviewsList: () => call<{ items: Review[] }>('reviews_list'),
  reviewCancel: (id: string) => call<Review>('review_cancel', { id }),
  adminReviews: (status: ReviewFilter) => call<{ items: Review[] }>('admin_reviews', { status }),
  adminReviewDecide: (id: string, decision: 'approve' | 'reject') => call<Review>('admin_review_decide', { id, decision }),
  statementDownload: (account_id: string, month: string) => call<SavedStatement>('statement_download', { account_id, month }),
  adminInterbankPosition: () => call<InterbankPosition>('admin_interbank_position'),
  adminInterbankPayments: (cursor?: string | null) => call<Page<InterbankPayment>>('admin_interbank_payments', compact({ cursor })),

  dbaCluster: () => call<ClusterState>('dba_cluster'),
  dbaPromote: (node: string, force = false) => call<ClusterState>('dba_promote', { node, force }),
  dbaAudit: (cursor?: string | null) => call<Page<AuditRow>>('dba_audit', compact({ cursor })),
};
