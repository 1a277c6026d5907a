-- Holds (issue 16): money set aside on an account for a movement that is
-- decided elsewhere (an inter-bank payment between its two phases). A hold
-- lowers what the account can spend (`balance - held`, the
-- `available_balance` of the API) but not its balance; it ends posted (the
-- movement happened) or voided (it did not). Functions: sql/functions/
-- place_hold.sql and void_hold.sql.
ALTER TABLE accounts ADD COLUMN held numeric(20, 2) NOT NULL DEFAULT 0;
-- The database's own assert: no movement spends held money, whatever path
-- it takes (every path also checks it first, for a clear refusal).
ALTER TABLE accounts ADD CONSTRAINT holds_within_balance CHECK (held >= 0 AND (kind = 'vault' OR held <= balance));

CREATE TABLE holds (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount     numeric(20, 2) NOT NULL CHECK (amount > 0),
    -- What the hold is for, unique: placing it again is a repeat, not a second hold.
    reference  text NOT NULL UNIQUE CHECK (length(reference) BETWEEN 1 AND 64),
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'posted', 'voided')),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    CONSTRAINT decided_when_not_active CHECK ((status = 'active') = (decided_at IS NULL))
);
CREATE INDEX holds_active_by_account ON holds (account_id) WHERE status = 'active';

GRANT SELECT, INSERT, UPDATE ON holds TO flexibank_app;
