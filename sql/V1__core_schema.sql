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
    -- A branch's cash vault for one currency is split into shards, so that
    -- concurrent deposits and withdrawals do not all update one hot row
    -- (under SERIALIZABLE, concurrent updates of a row abort instead of
    -- waiting). The vault's balance is the sum of its shards.
    vault_shard smallint CHECK (vault_shard BETWEEN 0 AND 63),
    CONSTRAINT customer_balance_non_negative CHECK (kind = 'vault' OR balance >= 0),
    CONSTRAINT vaults_have_shards CHECK ((kind = 'vault') = (vault_shard IS NOT NULL))
) WITH (fillfactor = 70);  -- room for HOT updates: a balance update adds no index entries
CREATE UNIQUE INDEX accounts_vault_shards ON accounts (branch_id, currency, vault_shard) WHERE kind = 'vault';
CREATE INDEX accounts_branch ON accounts (branch_id, number);

-- How many shards each vault has; see accounts.vault_shard.
CREATE FUNCTION vault_shard_count() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 8';

-- Opens the vault shards of a branch for a currency (idempotent).
CREATE FUNCTION ensure_vaults(p_branch_id uuid, p_currency text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO accounts (branch_id, kind, currency, vault_shard)
  SELECT p_branch_id, 'vault', p_currency, shard FROM generate_series(0, vault_shard_count() - 1) AS shard
  ON CONFLICT (branch_id, currency, vault_shard) WHERE kind = 'vault' DO NOTHING
$$;

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
    -- No foreign key to users: under SERIALIZABLE its check predicate-locks
    -- the (small) users table, and then every login, which writes a user row,
    -- would abort the movements in flight. move_money() sets it from the
    -- authenticated caller.
    created_by      uuid NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT transfer_not_to_self CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transfers_created ON transfers (created_at DESC, id DESC);
CREATE INDEX transfers_from ON transfers (from_account_id, created_at DESC);
CREATE INDEX transfers_to ON transfers (to_account_id, created_at DESC);

-- amount is signed: a credit is positive, a debit negative.
-- transfer_id has no foreign key on purpose: its check would read the newest
-- page of transfers_pkey (ids are time-ordered), the page every concurrent
-- movement inserts into, and SERIALIZABLE would abort most of them. Entries
-- and their transfer are written by one statement in one transaction, and
-- the invariant checks (server/src/ledger.rs) verify the pairing.
CREATE TABLE entries (
    id                      uuid PRIMARY KEY,
    transfer_id             uuid NOT NULL,
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
-- The primary key is a hash of (user, key), not the pair itself: keys are
-- often time-ordered (UUID v7), and SERIALIZABLE predicate-locks the index
-- page a lookup lands on, so time-ordered keys would make every concurrent
-- movement of a user conflict with every other on one hot page.
CREATE TABLE idempotency_keys (
    key_hash        bytea PRIMARY KEY,
    user_id         uuid NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    response_status int NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION idempotency_key_hash(p_user_id uuid, p_key text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT sha224(uuid_send(p_user_id) || convert_to(p_key, 'UTF8'))
$$;
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
