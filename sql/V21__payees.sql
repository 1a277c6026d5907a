-- Issue 18, part 1: saved payees and confirmation of payee.
--
-- A payee is one customer's saved recipient: an account of this bank (by
-- number) or a key at any bank of the consortium. What the customer was shown
-- when saving it (the holder's masked name, the masked number, the bank) is
-- kept, so that a transfer to a saved payee can be confirmed even offline.
CREATE TABLE payees (
    id                    uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id               uuid NOT NULL REFERENCES users (id),
    nickname              text NOT NULL CHECK (length(nickname) BETWEEN 1 AND 64),
    account_number        text CHECK (length(account_number) <= 34),
    key_type              text CHECK (key_type IN ('phone', 'email', 'national_id', 'random')),
    key_value             text CHECK (length(key_value) <= 254),
    bank_id               text,
    bank_name             text,
    holder_name_masked    text NOT NULL,
    account_number_masked text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    -- Who saved it (the customer, or a branch admin for them): review's maker-checker
    -- rule keeps that person from approving a payment to it.
    created_by            uuid NOT NULL REFERENCES users (id),
    CONSTRAINT payee_is_an_account_or_a_key
        CHECK ((account_number IS NULL) <> (key_type IS NULL) AND (key_type IS NULL) = (key_value IS NULL))
);
CREATE UNIQUE INDEX payees_by_account ON payees (user_id, account_number) WHERE account_number IS NOT NULL;
CREATE UNIQUE INDEX payees_by_key ON payees (user_id, key_type, key_value) WHERE key_type IS NOT NULL;
CREATE INDEX payees_of_user ON payees (user_id, created_at, id);

-- Fixed-window counters for actions limited per user across every server
-- process (an in-memory limiter would give each process its own allowance):
-- account look-ups, which reveal a holder's masked name.
CREATE TABLE rate_windows (
    user_id    uuid NOT NULL REFERENCES users (id),
    action     text NOT NULL,
    started_at timestamptz NOT NULL,
    used       integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, action)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON payees TO flexibank_app;
GRANT SELECT, INSERT, UPDATE ON rate_windows TO flexibank_app;

-- The notices of this part: a payee added (security), an account opened in a
-- customer's name, an owner added to their account.
ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered',
                  'payee.added', 'account.opened', 'account.owner_added')) NOT VALID;
ALTER TABLE notification_events VALIDATE CONSTRAINT notification_events_kind_check;
