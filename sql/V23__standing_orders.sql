-- Issue 18, part 2: standing orders.
--
-- An order pays a fixed amount on a schedule in its customer's time zone
-- (wall-clock time across daylight-saving changes; monthly on the start
-- date's day, the month's last day when shorter). Each due date runs at most
-- once: `standing_order_runs` is keyed by (order, due date), written in the
-- same transaction as the transfer it made, so that no retry, second server
-- process or failover can run a date twice; and `next_due_at` only moves past
-- a date in that transaction, so none is skipped silently (dates missed while
-- no server ran are run when one comes back). The scheduler is
-- server/src/scheduler.rs; the runs are sql/functions/run_standing_order.sql.
CREATE TABLE standing_orders (
    id                uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id           uuid NOT NULL REFERENCES users (id),
    from_account_id   uuid NOT NULL REFERENCES accounts (id),
    to_account_number text NOT NULL CHECK (length(to_account_number) BETWEEN 1 AND 34),
    amount            numeric(20, 2) NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    memo              text NOT NULL DEFAULT '' CHECK (length(memo) <= 140),
    -- 'second' exists for tests only (server config `standing_orders.allow_seconds`).
    every             text NOT NULL CHECK (every IN ('day', 'week', 'month', 'second')),
    every_n           integer NOT NULL CHECK (every_n BETWEEN 1 AND 366),
    time_of_day       time NOT NULL,
    time_zone         text NOT NULL,
    start_on          date NOT NULL,
    -- 'second' orders count from this instant; calendar orders from start_on at time_of_day.
    anchor_at         timestamptz NOT NULL,
    end_on            date,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled', 'ended')),
    -- The occurrence number of the next due date, and its instant (NULL once ended or cancelled).
    next_k            integer NOT NULL DEFAULT 0 CHECK (next_k >= 0),
    next_due_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ends_after_start CHECK (end_on IS NULL OR end_on >= start_on),
    CONSTRAINT due_while_live CHECK ((next_due_at IS NULL) = (status IN ('cancelled', 'ended')))
);
CREATE INDEX standing_orders_due ON standing_orders (next_due_at) WHERE status = 'active';
CREATE INDEX standing_orders_of_user ON standing_orders (user_id, created_at, id);

CREATE TABLE standing_order_runs (
    order_id     uuid NOT NULL REFERENCES standing_orders (id),
    -- The local due date ('YYYY-MM-DD'; a UTC instant for 'second' orders): one run per date, ever.
    due_key      text NOT NULL,
    due_at       timestamptz NOT NULL,
    -- 'running' only inside the transaction that runs it.
    status       text NOT NULL CHECK (status IN ('running', 'done', 'retry', 'skipped')),
    attempts     integer NOT NULL DEFAULT 1 CHECK (attempts BETWEEN 1 AND 2),
    transfer_id  uuid REFERENCES transfers (id),
    refusal_code text,
    retry_at     timestamptz,
    ran_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, due_key),
    CONSTRAINT outcome_matches_status CHECK (
        (status = 'running' AND transfer_id IS NULL AND refusal_code IS NULL AND retry_at IS NULL)
     OR (status = 'done' AND transfer_id IS NOT NULL AND refusal_code IS NULL AND retry_at IS NULL)
     OR (status = 'retry' AND transfer_id IS NULL AND refusal_code IS NOT NULL AND retry_at IS NOT NULL)
     OR (status = 'skipped' AND transfer_id IS NULL AND refusal_code IS NOT NULL AND retry_at IS NULL))
);
CREATE INDEX standing_order_runs_retry ON standing_order_runs (retry_at) WHERE status = 'retry';

GRANT SELECT, INSERT, UPDATE ON standing_orders, standing_order_runs TO flexibank_app;

-- A run refused, to be retried later that day; a run skipped.
ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered',
                  'payee.added', 'account.opened', 'account.owner_added', 'limit.raised',
                  'standing_order.refused', 'standing_order.skipped')) NOT VALID;
ALTER TABLE notification_events VALIDATE CONSTRAINT notification_events_kind_check;
