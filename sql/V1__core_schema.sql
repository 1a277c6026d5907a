-- FlexiBank core schema: branches, users, accounts, the double-entry ledger,
-- idempotency keys, sessions and the append-only audit log.
--
-- Invariants kept here (and asserted again by the tests):
--   * per currency, the balances of all accounts sum to zero: every transfer
--     writes exactly two entries, -amount and +amount, in one transaction;
--     cash moves against the branch's vault account, whose balance is the
--     negative of the cash the bank holds for its customers;
--   * a customer account's balance never goes below zero (CHECK);
--   * an account's balance equals the sum of its entries;
--   * audit rows are never updated or deleted (trigger + grants).

-- UUID v7 (time-ordered) ids: PostgreSQL 15 has only v4, so overlay the
-- millisecond Unix timestamp on a random v4 and flip the version bits to 0111.
CREATE FUNCTION uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1), 'hex')::uuid
$$;

-- RFC 3339 UTC with microseconds, independent of the session's TimeZone.
CREATE FUNCTION rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE TABLE branches (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    code       text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9]{2,12}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT uuid_v7(),
    username      text NOT NULL CHECK (username ~ '^[a-z0-9._-]{3,64}$'),
    full_name     text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('customer', 'branch_admin', 'dba')),
    branch_id     uuid REFERENCES branches (id),
    national_id   text CHECK (length(national_id) <= 64),
    phone         text CHECK (length(phone) <= 32),
    email         text CHECK (length(email) <= 254),
    password_hash text NOT NULL,
    -- TOTP secret, encrypted by the server (the key never reaches the database).
    totp_secret_enc   bytea,
    totp_enrolled_at  timestamptz,
    -- Highest RFC 6238 time step ever accepted: a code at or below it is a replay.
    totp_last_step    bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    -- A DBA serves every branch; everyone else belongs to exactly one.
    CONSTRAINT branch_matches_role CHECK ((role = 'dba') = (branch_id IS NULL))
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE INDEX users_branch_role ON users (branch_id, role, username);

-- Failed login attempts per username, whether or not that user exists, so that
-- lockout behaves identically for unknown usernames (no enumeration).
CREATE TABLE login_throttle (
    username        text PRIMARY KEY,
    failed_attempts int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Step two of login: a single-use token that lives five minutes.
CREATE TABLE mfa_challenges (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    purpose    text NOT NULL CHECK (purpose IN ('totp', 'enroll')),
    -- For enrollment, the freshly made secret (encrypted) awaiting its first code.
    pending_secret_enc bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE TABLE recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id),
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    client_addr  text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE SEQUENCE account_number_seq START 1000000001;

CREATE TABLE accounts (
    id        uuid PRIMARY KEY DEFAULT uuid_v7(),
    number    text NOT NULL UNIQUE DEFAULT nextval('account_number_seq')::text,
    branch_id uuid NOT NULL REFERENCES branches (id),
    kind      text NOT NULL CHECK (kind IN ('savings', 'current', 'business', 'vault')),
    currency  text NOT NULL CHECK (currency IN ('INR', 'USD', 'EUR')),
    balance   numeric(20, 2) NOT NULL DEFAULT 0,
    status    text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    CONSTRAINT customer_balance_non_negative CHECK (kind = 'vault' OR balance >= 0)
);
-- One cash vault per branch and currency.
CREATE UNIQUE INDEX accounts_one_vault ON accounts (branch_id, currency) WHERE kind = 'vault';
CREATE INDEX accounts_branch ON accounts (branch_id, number);

CREATE TABLE account_owners (
    account_id uuid NOT NULL REFERENCES accounts (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX account_owners_user ON account_owners (user_id, account_id);

CREATE TABLE transfers (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer')),
    from_account_id uuid NOT NULL REFERENCES accounts (id),
    to_account_id   uuid NOT NULL REFERENCES accounts (id),
    amount          numeric(20, 2) NOT NULL CHECK (amount > 0 AND amount <= 1000000000000),
    currency        text NOT NULL,
    memo            text NOT NULL DEFAULT '' CHECK (length(memo) <= 140),
    batch_id        uuid,
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    CONSTRAINT transfer_not_to_self CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transfers_created ON transfers (created_at DESC, id DESC);
CREATE INDEX transfers_from ON transfers (from_account_id, created_at DESC);
CREATE INDEX transfers_to ON transfers (to_account_id, created_at DESC);

-- amount is signed: a credit is positive, a debit negative.
CREATE TABLE entries (
    id                      uuid PRIMARY KEY,
    transfer_id             uuid NOT NULL REFERENCES transfers (id),
    account_id              uuid NOT NULL REFERENCES accounts (id),
    kind                    text NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out')),
    amount                  numeric(20, 2) NOT NULL CHECK (amount <> 0),
    balance_after           numeric(20, 2) NOT NULL,
    counterparty_account_id uuid NOT NULL REFERENCES accounts (id),
    memo                    text NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL
);
CREATE INDEX entries_account_history ON entries (account_id, created_at DESC, id DESC);
CREATE INDEX entries_transfer ON entries (transfer_id);

-- A key is scoped to the user who sent it and lives 24 hours.
CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    response_status int NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    actor_role  text,
    -- The branch whose trail this row belongs to (NULL: bank-wide, e.g. a DBA action).
    branch_id   uuid,
    action      text NOT NULL,
    target      text,
    request_id  text,
    client_addr text,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_branch ON audit_log (branch_id, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
