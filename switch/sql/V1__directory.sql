-- The switch's own database: the consortium's banks and the key directory.

-- A member bank. The liquidity fields are for the settlement that follows
-- (two-phase commit): money the bank prefunded at the switch, its net
-- position, and the cap on its net debit. Nothing moves them yet.
CREATE TABLE banks (
    id            text PRIMARY KEY CHECK (id ~ '^[0-9]{8}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 140),
    prefunded     numeric(20,2) NOT NULL DEFAULT 0 CHECK (prefunded >= 0),
    position      numeric(20,2) NOT NULL DEFAULT 0,
    net_debit_cap numeric(20,2) NOT NULL DEFAULT 0 CHECK (net_debit_cap >= 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per account that holds (or held) a key. A registration locks its
-- account's row before it counts that account's keys, so two registrations
-- for one account cannot both pass the limit.
CREATE TABLE key_accounts (
    bank_id        text NOT NULL REFERENCES banks (id),
    account_number text NOT NULL CHECK (length(account_number) BETWEEN 1 AND 34),
    PRIMARY KEY (bank_id, account_number)
);

-- One key, one account in the whole consortium: the primary key.
CREATE TABLE keys (
    type           text NOT NULL CHECK (type IN ('phone', 'email', 'national_id', 'random')),
    value          text NOT NULL CHECK (length(value) BETWEEN 1 AND 254),
    bank_id        text NOT NULL REFERENCES banks (id),
    account_number text NOT NULL,
    account_kind   text NOT NULL CHECK (account_kind IN ('savings', 'current', 'business')),
    holder_name    text NOT NULL CHECK (length(holder_name) BETWEEN 1 AND 140),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, value),
    FOREIGN KEY (bank_id, account_number) REFERENCES key_accounts (bank_id, account_number)
);
CREATE INDEX keys_by_account ON keys (bank_id, account_number);
