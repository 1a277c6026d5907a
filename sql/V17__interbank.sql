-- Inter-bank payments at a bank (issue 16, docs/consortium.md): the bank's
-- settlement account with the switch, the payments it sent and received,
-- and the alias keys its customers registered in the consortium directory.

-- The settlement account is the bank's claim on (or debt to) the switch, an
-- internal account like the vault: it may go negative, no customer owns it,
-- and its balance is always minus the bank's position at the switch.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN ('savings', 'current', 'business', 'vault', 'settlement'));
ALTER TABLE accounts DROP CONSTRAINT customer_balance_non_negative;
ALTER TABLE accounts ADD CONSTRAINT customer_balance_non_negative CHECK (kind IN ('vault', 'settlement') OR balance >= 0);
ALTER TABLE accounts DROP CONSTRAINT holds_within_balance;
ALTER TABLE accounts ADD CONSTRAINT holds_within_balance CHECK (held >= 0 AND (kind IN ('vault', 'settlement') OR held <= balance));
-- One per currency: the positions at the switch are per currency.
CREATE UNIQUE INDEX accounts_one_settlement ON accounts (currency) WHERE kind = 'settlement';

ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('deposit', 'withdrawal', 'transfer', 'interbank'));
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
-- 'settlement' is the settlement account's side of an inter-bank payment.
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
  CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'interbank_out', 'interbank_in', 'settlement'));

-- One row per payment this bank takes part in, by its consortium-wide e2e_id.
--   out (this bank pays): sent (the hold placed; the switch may have the
--       payment from now on, so only its decision ends it, except when the
--       connection to it failed: nothing was sent, and the bank aborts alone) -> committed | aborted
--   in (this bank is paid): prepared (the account checked, a yes voted: a pending credit) -> committed | aborted
-- The hold of an outgoing payment is holds.reference = e2e_id.
CREATE TABLE interbank_payments (
    id                     uuid PRIMARY KEY DEFAULT uuid_v7(),
    e2e_id                 text NOT NULL UNIQUE CHECK (e2e_id ~ '^E[0-9]{8}[0-9]{12}[A-Za-z0-9]{11}$'),
    direction              text NOT NULL CHECK (direction IN ('out', 'in')),
    account_id             uuid NOT NULL REFERENCES accounts (id),
    amount                 numeric(20, 2) NOT NULL CHECK (amount > 0 AND amount <= 1000000000000),
    currency               text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The other bank: for an outgoing payment known once the switch answers.
    counterparty_bank_id   text CHECK (counterparty_bank_id ~ '^[0-9]{8}$'),
    counterparty_bank_name text CHECK (length(counterparty_bank_name) BETWEEN 1 AND 200),
    -- out: the key paid, and the payee as the switch named it (masked only)
    key_type               text CHECK (key_type IN ('phone', 'email', 'national_id', 'random')),
    key_value              text CHECK (length(key_value) <= 254),
    holder_name_masked     text CHECK (length(holder_name_masked) <= 200),
    account_number_masked  text CHECK (length(account_number_masked) <= 64),
    memo                   text NOT NULL DEFAULT '' CHECK (length(memo) <= 140),
    status                 text NOT NULL CHECK (status IN ('sent', 'prepared', 'committed', 'aborted')),
    reason                 text CHECK (reason ~ '^[a-z][a-z_]{0,63}$'),
    transfer_id            uuid,
    balance_after          numeric(20, 2),
    -- out: who asked, with the Idempotency-Key and request hash of the asking (kept as long as the payment)
    created_by             uuid REFERENCES users (id),
    idempotency_key        text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash           bytea,
    created_at             timestamptz NOT NULL DEFAULT now(),
    decided_at             timestamptz,
    -- out: when the switch was told this bank applied the decision
    acked_at               timestamptz,
    CONSTRAINT interbank_direction_states CHECK (
        (direction = 'out' AND status IN ('sent', 'committed', 'aborted') AND created_by IS NOT NULL AND idempotency_key IS NOT NULL
            AND request_hash IS NOT NULL AND key_type IS NOT NULL AND key_value IS NOT NULL)
        OR (direction = 'in' AND status IN ('prepared', 'committed', 'aborted') AND counterparty_bank_id IS NOT NULL)),
    CONSTRAINT interbank_decided CHECK ((status IN ('committed', 'aborted')) = (decided_at IS NOT NULL)),
    CONSTRAINT interbank_posted_when_committed CHECK ((status = 'committed') = (transfer_id IS NOT NULL)),
    CONSTRAINT interbank_reason_when_aborted CHECK ((status = 'aborted') = (reason IS NOT NULL)),
    UNIQUE (created_by, idempotency_key)
);
-- The resolver: payments whose decision this bank has not applied yet.
CREATE INDEX interbank_undecided ON interbank_payments (created_at) WHERE status IN ('sent', 'prepared');
CREATE INDEX interbank_by_creator ON interbank_payments (created_by, created_at DESC, id DESC) WHERE direction = 'out';
CREATE INDEX interbank_all ON interbank_payments (created_at DESC, id DESC);
CREATE INDEX interbank_by_transfer ON interbank_payments (transfer_id) WHERE transfer_id IS NOT NULL;

-- A customer's alias keys. The consortium's directory (at the switch) is the
-- authority on who holds a key; this is the bank's record of which of its
-- accounts registered which key, and of a phone's or e-mail's one-time code.
CREATE TABLE payment_keys (
    id              uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id         uuid NOT NULL REFERENCES users (id),
    account_id      uuid NOT NULL REFERENCES accounts (id),
    type            text NOT NULL CHECK (type IN ('phone', 'email', 'national_id', 'random')),
    value           text NOT NULL CHECK (length(value) BETWEEN 1 AND 254),
    status          text NOT NULL CHECK (status IN ('pending_verification', 'active')),
    -- SHA-256 of the one-time code; absent once verified
    code_hash       bytea,
    code_expires_at timestamptz,
    code_attempts   int NOT NULL DEFAULT 0 CHECK (code_attempts >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pending_has_code CHECK ((status = 'pending_verification') = (code_hash IS NOT NULL)),
    UNIQUE (type, value)
);
CREATE INDEX payment_keys_by_account ON payment_keys (account_id);
CREATE INDEX payment_keys_by_user ON payment_keys (user_id, created_at);

GRANT SELECT, INSERT, UPDATE ON interbank_payments TO flexibank_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON payment_keys TO flexibank_app;

-- A phone's or e-mail's one-time code goes to that phone or address only
-- (never in-app, never to a webhook: whoever reads it there has not proved
-- they hold the phone); registering a key is a security notice.
ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered'));
