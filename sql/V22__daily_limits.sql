-- Issue 18, part 3: a daily outgoing limit per account.
--
-- What an account may send in one day, counted in its holders' time zone,
-- enforced inside the movement's own transaction by one trigger on accounts
-- (sql/functions/count_daily_limit.sql): every path that debits an account or
-- places a hold on it adds the amount to `limit_used`, under the row lock it
-- holds already, so concurrent movements cannot pass the limit together.

-- The bank's default per currency (a branch admin may set any account above or below it).
CREATE TABLE limit_defaults (
    currency             text PRIMARY KEY CHECK (currency IN ('INR', 'USD', 'EUR')),
    daily_transfer_limit numeric(20, 2) NOT NULL CHECK (daily_transfer_limit >= 0)
);
INSERT INTO limit_defaults (currency, daily_transfer_limit) VALUES ('INR', 500000.00), ('USD', 10000.00), ('EUR', 10000.00);

ALTER TABLE accounts
    -- NULL: the bank's default for the account's currency.
    ADD COLUMN daily_limit numeric(20, 2) CHECK (daily_limit >= 0),
    -- A customer's raise waits 24 h (a stolen session must not lift the limit at once).
    ADD COLUMN daily_limit_raise numeric(20, 2) CHECK (daily_limit_raise >= 0),
    ADD COLUMN daily_limit_raise_at timestamptz,
    -- Who changed the limit last, and when (a reviewer must not be that admin: maker-checker).
    ADD COLUMN limit_changed_by uuid REFERENCES users (id),
    ADD COLUMN limit_changed_at timestamptz,
    ADD COLUMN limit_time_zone text NOT NULL DEFAULT 'UTC',
    -- The local day `limit_used` counts; a movement on a later day starts afresh.
    ADD COLUMN limit_day date,
    ADD COLUMN limit_used numeric(20, 2) NOT NULL DEFAULT 0 CHECK (limit_used >= 0),
    ADD CONSTRAINT raise_has_a_time CHECK ((daily_limit_raise IS NULL) = (daily_limit_raise_at IS NULL));

-- Accounts opened before this migration count in their first owner's time zone.
UPDATE accounts a SET limit_time_zone = s.time_zone
  FROM account_owners o JOIN notification_settings s ON s.user_id = o.user_id
 WHERE o.account_id = a.id AND s.time_zone IS NOT NULL;

GRANT SELECT ON limit_defaults TO flexibank_app;

-- The trigger's body is sql/functions/count_daily_limit.sql, applied after
-- the migrations; this placeholder lets the trigger exist until then.
CREATE FUNCTION count_daily_limit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER accounts_daily_limit BEFORE UPDATE OF limit_used ON accounts
    FOR EACH ROW WHEN (NEW.limit_used IS DISTINCT FROM OLD.limit_used)
    EXECUTE FUNCTION count_daily_limit();

-- A raised limit is a security notice to every owner.
ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered',
                  'payee.added', 'account.opened', 'account.owner_added', 'limit.raised')) NOT VALID;
ALTER TABLE notification_events VALIDATE CONSTRAINT notification_events_kind_check;
