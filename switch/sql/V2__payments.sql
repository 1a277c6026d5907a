-- Payments between member banks, and the liquidity they reserve (two-phase
-- commit, docs/consortium.md). The switch's decision is durable here before
-- any bank hears of it; these constraints hold the invariants a row can.

-- Liquidity reserved for undecided outgoing payments: released when the
-- payment is decided (committed: the position moves instead; aborted: gone).
ALTER TABLE banks ADD COLUMN pending_out numeric(20,2) NOT NULL DEFAULT 0 CHECK (pending_out >= 0);
-- No bank's reservations (and so, after they commit, its net debit) go past
-- what it prefunded plus its cap: `fund` cannot lower either below what is in use.
ALTER TABLE banks ADD CONSTRAINT banks_liquidity_covers_reservations CHECK (prefunded + position + net_debit_cap - pending_out >= 0);

-- 'prepared' is for the networked version (the payee's yes recorded apart
-- from the decision); this version decides on the yes itself, INITIATED ->
-- COMMITTED, and treats 'prepared' as undecided everywhere it looks.
CREATE TABLE payments (
    -- E + the payer bank's id + yyyymmddHHMM + 11 of its own characters: a bank names only its own payments.
    e2e_id               text PRIMARY KEY CHECK (e2e_id ~ '^E[0-9]{8}[0-9]{12}[A-Za-z0-9]{11}$'),
    payer_bank           text NOT NULL REFERENCES banks (id),
    payee_bank           text NOT NULL REFERENCES banks (id),
    -- The key as the payer sent it (normalized): a repeat with another key is another payment.
    payee_key_type       text NOT NULL CHECK (payee_key_type IN ('phone', 'email', 'national_id', 'random')),
    payee_key_value      text NOT NULL CHECK (length(payee_key_value) BETWEEN 1 AND 254),
    payee_account_number text NOT NULL CHECK (length(payee_account_number) BETWEEN 1 AND 34),
    amount               numeric(20,2) NOT NULL CHECK (amount > 0),
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status               text NOT NULL CHECK (status IN ('initiated', 'prepared', 'committed', 'aborted')),
    reason               text CHECK (reason ~ '^[a-z][a-z_]{0,63}$'),
    deadline             timestamptz NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    decided_at           timestamptz,
    payer_acked_at       timestamptz,
    payee_acked_at       timestamptz,
    CHECK (substr(e2e_id, 2, 8) = payer_bank),
    -- An on-us payment is not the switch's business.
    CHECK (payer_bank <> payee_bank),
    CHECK (deadline > created_at),
    -- Decided exactly when committed or aborted; a reason exactly when aborted.
    CHECK ((status IN ('committed', 'aborted')) = (decided_at IS NOT NULL)),
    CHECK ((status = 'aborted') = (reason IS NOT NULL)),
    CHECK (decided_at >= created_at),
    -- A bank acknowledges a decision, so only after there is one.
    CHECK (payer_acked_at IS NULL OR payer_acked_at >= decided_at),
    CHECK (payee_acked_at IS NULL OR payee_acked_at >= decided_at)
);
-- The expiry sweep, and the per-bank sum of reservations.
CREATE INDEX payments_undecided ON payments (deadline) WHERE status IN ('initiated', 'prepared');
CREATE INDEX payments_undecided_by_payer ON payments (payer_bank) WHERE status IN ('initiated', 'prepared');
-- The re-sender of phase two.
CREATE INDEX payments_unacknowledged ON payments (decided_at) WHERE decided_at IS NOT NULL AND (payer_acked_at IS NULL OR payee_acked_at IS NULL);
