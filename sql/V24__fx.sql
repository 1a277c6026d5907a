-- Issue 18, part 5: transfers between currencies.
--
-- Branch admins set rates; a customer takes a quote (valid 60 s, the target
-- amount rounded half-even to the target currency's minor unit) and spends it
-- once on a transfer. The transfer is two, one per currency, through the
-- branch's FX position account of each currency (kind 'fx', one per branch and
-- currency, allowed below zero like a vault): each currency's ledger still sums
-- to zero, and every transfer still has two entries of one currency.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN ('savings', 'current', 'business', 'vault', 'settlement', 'fx'));
ALTER TABLE accounts DROP CONSTRAINT customer_balance_non_negative;
ALTER TABLE accounts ADD CONSTRAINT customer_balance_non_negative CHECK (kind IN ('vault', 'settlement', 'fx') OR balance >= 0);
ALTER TABLE accounts DROP CONSTRAINT holds_within_balance;
ALTER TABLE accounts ADD CONSTRAINT holds_within_balance CHECK (held >= 0 AND (kind IN ('vault', 'settlement', 'fx') OR held <= balance));
CREATE UNIQUE INDEX accounts_fx_positions ON accounts (branch_id, currency) WHERE kind = 'fx';
ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN ('deposit', 'withdrawal', 'transfer', 'interbank', 'fx'));
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
  CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'interbank_out', 'interbank_in', 'settlement',
                  'fx_out', 'fx_in', 'fx_position'));

-- One rate per direction, set by a branch admin (the audit trail keeps every change).
CREATE TABLE fx_rates (
    from_currency text NOT NULL CHECK (from_currency IN ('INR', 'USD', 'EUR')),
    to_currency   text NOT NULL CHECK (to_currency IN ('INR', 'USD', 'EUR')),
    rate          numeric(20, 8) NOT NULL CHECK (rate > 0),
    set_by        uuid NOT NULL REFERENCES users (id),
    set_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (from_currency, to_currency),
    CHECK (from_currency <> to_currency)
);

CREATE TABLE fx_quotes (
    id              uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id         uuid NOT NULL REFERENCES users (id),
    from_account_id uuid NOT NULL REFERENCES accounts (id),
    to_account_id   uuid NOT NULL REFERENCES accounts (id),
    from_amount     numeric(20, 2) NOT NULL CHECK (from_amount > 0),
    to_amount       numeric(20, 2) NOT NULL CHECK (to_amount > 0),
    rate            numeric(20, 8) NOT NULL,
    from_currency   text NOT NULL,
    to_currency     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    -- Spent by this transfer (the first leg's id): a quote moves money once.
    used_by         uuid
);
CREATE INDEX fx_quotes_of_user ON fx_quotes (user_id, created_at);

GRANT SELECT, INSERT, UPDATE ON fx_rates TO flexibank_app;
GRANT SELECT, INSERT, UPDATE ON fx_quotes TO flexibank_app;
