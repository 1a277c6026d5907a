// Shapes passed through unchanged from the server (see shared/API.md and docs/desktop-commands.md).

export type Role = 'customer' | 'branch_admin' | 'dba';

export interface User {
  id: string;
  username: string;
  full_name: string;
  role: Role;
  branch_id: string | null;
}

export interface Enrollment {
  secret_base32: string;
  otpauth_uri: string;
  qr_png_base64: string;
}

export type LoginAnswer = { next: 'totp' } | { next: 'enroll'; enrollment: Enrollment };

export interface MfaAnswer {
  user: User;
  expires_at: string;
  recovery_codes?: string[] | null;
}

export interface BankChoice {
  /** Empty for the single bank of FLEXIBANK_SERVER_URL. */
  bank_id: string;
  name: string;
  server_url: string;
}

export interface AppInfo {
  server_url: string;
  ca_cert: string;
  data_dir: string;
  version: string;
  /** The configured banks (a consortium: several; the login screen picks one). */
  banks?: BankChoice[];
  /** The chosen bank. */
  bank_id?: string | null;
  bank_name?: string | null;
  config_error?: string | null;
}

export type AccountKind = 'savings' | 'current' | 'business';
export type AccountStatus = 'active' | 'frozen' | 'closed';

export interface Account {
  id: string;
  number: string;
  branch_id: string;
  kind: AccountKind;
  currency: string;
  balance: string;
  /** The balance less money on hold; absent from servers before holds. */
  available_balance?: string;
  status: AccountStatus;
  owners: { id: string; full_name: string }[];
  opened_at: string;
}

export type EntryKind = 'deposit' | 'withdrawal' | 'transfer_in' | 'transfer_out' | 'interbank_out' | 'interbank_in' | 'fx_out' | 'fx_in';

export interface Entry {
  id: string;
  transfer_id: string;
  kind: EntryKind;
  amount: string;
  balance_after: string;
  counterparty_account_number: string | null;
  /** Inter-bank entries: the other bank's id ("00000002"). */
  counterparty_bank_id?: string | null;
  memo: string;
  created_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Transfer {
  id: string;
  kind: string;
  from_account_id: string;
  to_account_id: string;
  amount: string;
  currency: string;
  memo: string;
  status: string;
  created_at: string;
  balance_after: string;
}

export interface TransferRequest {
  from_account_id: string;
  to_account_number: string;
  amount: string;
  currency: string;
  memo: string;
}

/** `held`: the server took it and holds it for a check by the bank (`review`); it is not sent again. */
export type QueueStatus = 'pending' | 'applied' | 'held' | 'failed' | 'cancelled';

export interface QueueItem {
  id: string;
  idempotency_key: string;
  request: TransferRequest;
  status: QueueStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  transfer: Transfer | null;
  /** The Review when the server held the transfer (`held`); absent from older queue files. */
  review?: Review | null;
  created_at: string;
}

export type TransferAnswer =
  | { outcome: 'committed'; transfer: Transfer }
  /** 202: held for a check by the bank. Nothing moved; the amount is held (available balance). */
  | { outcome: 'held'; review: Review }
  | { outcome: 'queued'; item: QueueItem };

export interface BatchRow {
  line: number;
  from_account_id: string | null;
  from_account_number: string;
  to_account_number: string;
  amount: string;
  currency: string | null;
  memo: string;
  error: string | null;
}

export interface BatchPreview {
  rows: BatchRow[];
  valid: boolean;
  totals: { currency: string; amount: string }[];
}

export interface BatchItem {
  from_account_id: string;
  to_account_number: string;
  amount: string;
  memo: string;
}

export interface Customer {
  id: string;
  username: string;
  full_name: string;
  role: string;
  branch_id: string | null;
  national_id: string | null;
  phone: string | null;
  email: string | null;
  created_at: string;
  accounts: Account[];
}

export interface NewCustomer {
  username: string;
  full_name: string;
  national_id: string;
  phone: string;
  email: string;
  password: string;
}

export interface BranchTransfer {
  id: string;
  kind: string;
  from_account_id: string;
  from_account_number: string;
  to_account_id: string;
  to_account_number: string;
  amount: string;
  currency: string;
  memo: string;
  created_by: string;
  created_at: string;
}

export interface AuditRow {
  id: number;
  at: string;
  actor_id: string | null;
  actor_role: string | null;
  branch_id: string | null;
  action: string;
  target: string | null;
  request_id: string | null;
  client_addr: string | null;
  outcome: string;
  details: unknown;
}

export interface ClusterNode {
  name: string;
  role: string;
  timeline: number | null;
  lsn: string | null;
  replay_lag_bytes: number | null;
  replay_lag_seconds: number | null;
  sync_state: string | null;
  /** Bytes of WAL past the fork (role `diverged`): a rejoin discards them. */
  diverged_bytes?: number | null;
}

export interface ClusterState {
  sync_mode: string;
  nodes: ClusterNode[];
  pool: { size: number; available: number; waiting: number };
  failovers?: number | null;
  /** `blocked` while the primary is lost and no standby is provably up to date. */
  failover?: { state: 'ok' | 'blocked'; reason: string | null };
}

// ---- Notifications (docs/desktop-commands.md, "Notifications (every role)")

export type NotificationKind =
  | 'money.debit' | 'money.credit' | 'balance.low'
  | 'security.new_device' | 'security.mfa_enrolled' | 'security.mfa_reset'
  | 'account.status'
  | 'payee.added' | 'account.opened' | 'account.owner_added' | 'limit.raised' | 'key.registered'
  | 'standing_order.refused' | 'standing_order.skipped'
  | 'review.held' | 'review.approved' | 'review.rejected';

/** `payload` of money.debit / money.credit (balance.low adds `threshold`). */
export interface MoneyPayload {
  transfer_id: string;
  entry_kind: EntryKind;
  account_id: string;
  /** Masked: "••••0009". */
  account: string;
  /** Masked, or null for cash. */
  counterparty: string | null;
  amount: string;
  currency: string;
  balance_after: string;
  threshold?: string;
}

export interface AccountStatusPayload { account_id: string; account: string; from: AccountStatus; to: AccountStatus }
export interface NewDevicePayload { client_addr: string | null; at: string }

/** One in-app notification (named so as not to clash with the DOM's `Notification`). */
export interface AppNotification {
  id: string;
  /** One of NotificationKind; a newer server may send kinds this app does not know yet. */
  kind: NotificationKind | (string & {});
  critical: boolean;
  payload: Record<string, unknown> | null;
  created_at: string;
  read_at: string | null;
}

export interface NotificationPage extends Page<AppNotification> {
  unread_count: number;
}

export interface QuietHours {
  /** "22:00" local time in `time_zone`. */
  start: string;
  end: string;
}

export interface LowBalanceAlert {
  account_id: string;
  /** An amount string in the account's currency. */
  threshold: string;
}

export interface NotificationSettings {
  sms_money: boolean;
  sms_security: boolean;
  email_money: boolean;
  email_security: boolean;
  quiet_hours: QuietHours | null;
  time_zone: string;
  low_balance_alerts: LowBalanceAlert[];
}

// ---- Inter-bank (shared/API.md, "Inter-bank payments")

export type KeyType = 'phone' | 'email' | 'national_id' | 'random';

/** Whom a key pays, masked: shown before anything is sent. */
export interface DirectoryEntry {
  bank_id: string;
  bank_name: string;
  holder_name_masked: string;
  account_number_masked: string;
}

export type PaymentStatus = 'pending' | 'committed' | 'aborted';

export interface InterbankPayment {
  id: string;
  e2e_id: string;
  status: PaymentStatus;
  from_account_id: string;
  amount: string;
  currency: string;
  payee: DirectoryEntry;
  memo: string;
  created_at: string;
  balance_after: string | null;
  reason: string | null;
}

export type KeyStatus = 'active' | 'pending_verification' | (string & {});

export interface AliasKey {
  id: string;
  type: KeyType;
  value: string;
  account_id: string;
  status: KeyStatus;
  created_at: string;
}

export interface InterbankPosition {
  bank_id: string;
  prefunded: string;
  position: string;
  net_debit_cap: string;
  pending_out: string;
}

// ---- Payees and confirmation of payee (issue 18)

/** Whom an account number of this bank pays, masked: shown before a transfer is sent. */
export interface AccountLookup {
  /** The consortium bank id; null when this bank is not in a consortium. */
  bank_id: string | null;
  bank_name: string | null;
  /** "B•• M••••": each word's first letter, then one • per other character; joint holders joined by " & ". */
  holder_name_masked: string;
  /** "••••0027". */
  account_number_masked: string;
}

/** A saved payee: an account number of this bank or a key at any bank (exactly one is set). */
export interface Payee extends AccountLookup {
  id: string;
  nickname: string;
  account_number: string | null;
  key: { type: KeyType; value: string } | null;
  created_at: string;
}

export type NewPayee =
  | { account_number: string; nickname: string }
  | { key: { type: KeyType; value: string }; nickname: string };

// ---- Daily limits (issue 18)

/** A customer's raise: it counts from `effective_at` (24 h after it was asked for). */
export interface PendingRaise {
  daily_transfer_limit: string;
  effective_at: string;
}

/** An account's daily outgoing limit, as `GET /v1/accounts/{id}/limits` answers. */
export interface Limits {
  account_id: string;
  currency: string;
  /** What may leave the account in one day, now. */
  daily_transfer_limit: string;
  /** The bank's default for the currency: a customer may raise theirs up to it. */
  bank_default: string;
  /** Sent (and held for payments not yet decided) today, days counted in `time_zone`. */
  used_today: string;
  time_zone: string;
  pending_raise: PendingRaise | null;
}

// ---- Standing orders (issue 18)

/** `second` only for orders a test made through the API (the app offers day, week and month). */
export type Every = 'day' | 'week' | 'month' | 'second';

export interface Schedule {
  every: Every;
  interval: number;
  /** Local time "HH:MM" in the order's `time_zone`. */
  time: string;
}

export type OrderStatus = 'active' | 'paused' | 'cancelled' | 'ended';

/** Whom an order pays: an account number of this bank, or a key at another bank of the consortium (paid in INR). */
export type OrderTarget = { account_number: string; key?: undefined } | { key: { type: KeyType; value: string }; account_number?: undefined };

export interface StandingOrder {
  id: string;
  from_account_id: string;
  to: OrderTarget;
  amount: string;
  currency: string;
  memo: string;
  schedule: Schedule;
  /** "YYYY-MM-DD": the first date; monthly orders run on its day of the month. */
  start_at: string;
  end_at: string | null;
  /** The customer's time zone when the order was set up: its dates and times are in it. */
  time_zone: string;
  status: OrderStatus;
  /** null once cancelled or ended. */
  next_run_at: string | null;
  created_at: string;
}

export interface NewStandingOrder {
  from_account_id: string;
  /** Exactly one of the account number (of this bank) and the key (at another bank). */
  to_account_number?: string;
  to_key?: { type: KeyType; value: string };
  amount: string;
  memo: string;
  every: Every;
  interval: number;
  time: string;
  start_at: string;
  end_at: string | null;
  /** One per confirmed creation, sent again on a retry of it. */
  idempotency_key: string;
}

/** What `standing_order_update` changes: only what is given (the schedule as a whole). */
export interface OrderChange {
  amount?: string;
  memo?: string;
  schedule?: Schedule;
}

/** `held`: the bank's rules held this run for a reviewer (`review_id`); it is paid once approved. */
export type RunStatus = 'done' | 'retry' | 'skipped' | 'held';

/** One due date of an order and what became of it. */
export interface OrderRun {
  /** "YYYY-MM-DD" (an instant for test schedules in seconds). */
  due: string;
  due_at: string;
  status: RunStatus;
  attempts: number;
  /** The transfer a done run of an order to an account number made. */
  transfer_id: string | null;
  /**
   * The inter-bank payment a done run of an order to a key placed (its outcome is the switch's:
   * `interbank_payment`); null otherwise, absent from older servers.
   */
  interbank_payment_id?: string | null;
  /** Why it was refused (retry, skipped): `insufficient_funds`, `limit_exceeded`, `order_paused`, `review_rejected` … */
  refusal_code: string | null;
  retry_at: string | null;
  ran_at: string;
  /** The review of a run the bank held (`held`, and a skipped one a review ended); absent from older servers. */
  review_id?: string | null;
}

// ---- Exchange between currencies (issue 18)

export interface FxRate {
  from: string;
  to: string;
  /** How much `to` one unit of `from` buys: a decimal string with 8 decimals. */
  rate: string;
  set_at: string;
}

export interface FxQuote {
  id: string;
  rate: string;
  from_amount: string;
  from_currency: string;
  to_amount: string;
  to_currency: string;
  expires_at: string;
}

/** A transfer between currencies: the leg that left the account, with what arrived. */
export interface FxTransfer extends Transfer {
  to_amount: string;
  to_currency: string;
  rate: string;
  quote_id: string;
}

// ---- Review of unusual movements (issue 18)

/** `held_for_review` while it waits; how it ended once decided. */
export type ReviewStatus = 'held_for_review' | 'approved' | 'rejected' | 'cancelled' | 'expired';

/** What was held: a transfer, a payment by key to another bank, or a standing order's run. */
export type ReviewKind = 'transfer' | 'interbank' | 'standing_order';

/**
 * A movement the bank held for a check: the 202 of `POST /v1/transfers` and `POST
 * /v1/interbank/payments`, and the items of the review lists. The fields marked optional are
 * absent from servers before inter-bank and standing-order reviews.
 */
export interface Review {
  id: string;
  /** In the 202 answers only (the same as `id`). */
  review_id?: string;
  /** Absent: a transfer (the only kind older servers held). */
  kind?: ReviewKind;
  status: ReviewStatus;
  from_account_id: string;
  /** The paying account's number. */
  from_account_number?: string;
  /** The payee's full account number (the customer typed or saved it; the branch sees it); null when paid by key. */
  to_account_number: string | null;
  /** The key paid at another bank (inter-bank), else null. */
  to_key?: { type: KeyType; value: string } | null;
  /** The order whose run this is (`standing_order`), else null. */
  standing_order_id?: string | null;
  /** The payment an approved inter-bank review became, else null. */
  interbank_payment_id?: string | null;
  amount: string;
  currency: string;
  memo: string;
  /** Why it was held, as the server words it (see reviews.ts `reasonWords`). */
  reason: string;
  created_at: string;
  /** Undecided by then, it expires and the hold is released. */
  expires_at: string;
  decided_at: string | null;
  /** The transfer an approval made. */
  transfer_id: string | null;
}

/** The branch's review queue filter: `pending` is the server's default. */
export type ReviewFilter = 'pending' | 'approved' | 'rejected' | 'cancelled' | 'expired' | 'all';

// ---- Statements

export interface SavedStatement {
  path: string;
  file_name: string;
  bytes: number;
  month: string;
}
