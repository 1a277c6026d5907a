-- Notifications from a transactional outbox (issue 8).
--
-- Every event is written by a trigger in the same transaction as the change
-- it tells of (a ledger entry, a login, an MFA change, an account status), so
-- an event exists exactly when its change committed. One event row per
-- recipient is also the recipient's in-app notification. Each external
-- channel the recipient wants gets a delivery row, which the server's
-- dispatcher sends at least once, in order per recipient and channel.
--
-- `SET flexibank.notifications = 'off'` on a connection (the server's
-- `notifications.enabled = false`) writes no events: the benchmark's switch.

CREATE TABLE notification_events (
    id          uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id     uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('money.debit', 'money.credit', 'balance.low',
                                              'security.new_device', 'security.mfa_enrolled',
                                              'security.mfa_reset', 'account.status')),
    -- Security notices ignore quiet hours.
    critical    boolean NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX notification_events_user ON notification_events (user_id, id DESC);
CREATE INDEX notification_events_unread ON notification_events (user_id) WHERE read_at IS NULL;

CREATE TABLE notification_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    user_id         uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    destination     text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_queue ON notification_deliveries (user_id, channel, id) WHERE status = 'pending';
CREATE INDEX notification_deliveries_dead ON notification_deliveries (id DESC) WHERE status = 'dead';

-- Per customer: which channels get which events. Absent row = the defaults:
-- SMS for money and security events, no e-mail, no quiet hours.
CREATE TABLE notification_settings (
    user_id           uuid PRIMARY KEY,
    sms_money         boolean NOT NULL DEFAULT true,
    sms_security      boolean NOT NULL DEFAULT true,
    email_money       boolean NOT NULL DEFAULT false,
    email_security    boolean NOT NULL DEFAULT true,
    -- Local quiet hours [start, end) in minutes after midnight in time_zone;
    -- non-critical messages wait until they end.
    quiet_start_min   smallint CHECK (quiet_start_min BETWEEN 0 AND 1439),
    quiet_end_min     smallint CHECK (quiet_end_min BETWEEN 0 AND 1439),
    time_zone         text NOT NULL DEFAULT 'UTC',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A low-balance alert fires once when a debit takes the balance below the
-- threshold, and re-arms when the balance is back at or above it.
CREATE TABLE low_balance_alerts (
    account_id  uuid NOT NULL,
    user_id     uuid NOT NULL,
    threshold   numeric(20, 2) NOT NULL CHECK (threshold > 0),
    armed       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (account_id, user_id)
);

-- "••••0009": enough for the customer to know which account, never the number.
CREATE FUNCTION mask_account_number(p_number text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '••••' || right(p_number, 4) $$;

-- The event row, and a delivery per wanted external channel. Non-critical
-- deliveries created during the recipient's quiet hours wait for their end.
CREATE FUNCTION notify_user(p_user_id uuid, p_kind text, p_critical boolean, p_payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  s notification_settings%ROWTYPE;
  u record;
  event_id uuid := uuid_v7();
  is_money boolean := p_kind IN ('money.debit', 'money.credit', 'balance.low');
  send_at timestamptz := now();
  local_min int;
BEGIN
  INSERT INTO notification_events (id, user_id, kind, critical, payload)
  VALUES (event_id, p_user_id, p_kind, p_critical, p_payload);

  SELECT * INTO s FROM notification_settings WHERE user_id = p_user_id;
  IF NOT FOUND THEN
    s.sms_money := true; s.sms_security := true; s.email_money := false; s.email_security := true;
    s.time_zone := 'UTC';
  END IF;
  IF NOT p_critical AND s.quiet_start_min IS NOT NULL AND s.quiet_end_min IS NOT NULL
     AND s.quiet_start_min <> s.quiet_end_min THEN
    local_min := extract(hour FROM now() AT TIME ZONE s.time_zone)::int * 60
               + extract(minute FROM now() AT TIME ZONE s.time_zone)::int;
    IF (s.quiet_start_min < s.quiet_end_min AND local_min >= s.quiet_start_min AND local_min < s.quiet_end_min)
       OR (s.quiet_start_min > s.quiet_end_min AND (local_min >= s.quiet_start_min OR local_min < s.quiet_end_min)) THEN
      send_at := now() + make_interval(mins => ((s.quiet_end_min - local_min + 1440) % 1440));
    END IF;
  END IF;

  SELECT phone, email INTO u FROM users WHERE id = p_user_id;
  IF u.phone IS NOT NULL AND u.phone <> ''
     AND ((is_money AND s.sms_money) OR (NOT is_money AND s.sms_security)) THEN
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination, next_attempt_at)
    VALUES (event_id, p_user_id, 'sms', u.phone, send_at);
  END IF;
  IF u.email IS NOT NULL AND u.email <> ''
     AND ((is_money AND s.email_money) OR (NOT is_money AND s.email_security)) THEN
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination, next_attempt_at)
    VALUES (event_id, p_user_id, 'email', u.email, send_at);
  END IF;
END
$$;

-- One ledger entry = one side of a movement: its account's owners hear of it.
CREATE FUNCTION notify_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  acc record;
  counterparty text;
  owner record;
  alert record;
  is_debit boolean := NEW.amount < 0;
  payload jsonb;
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;
  SELECT number, currency, kind INTO acc FROM accounts WHERE id = NEW.account_id;
  IF acc.kind = 'vault' THEN
    RETURN NULL;
  END IF;
  SELECT CASE WHEN kind = 'vault' THEN NULL ELSE mask_account_number(number) END INTO counterparty
    FROM accounts WHERE id = NEW.counterparty_account_id;
  payload := jsonb_build_object(
    'transfer_id', NEW.transfer_id, 'entry_kind', NEW.kind, 'account_id', NEW.account_id,
    'account', mask_account_number(acc.number), 'counterparty', counterparty,
    'amount', abs(NEW.amount)::numeric(20, 2)::text, 'currency', acc.currency,
    'balance_after', NEW.balance_after::numeric(20, 2)::text);
  FOR owner IN SELECT user_id FROM account_owners WHERE account_id = NEW.account_id LOOP
    PERFORM notify_user(owner.user_id, CASE WHEN is_debit THEN 'money.debit' ELSE 'money.credit' END, false, payload);
  END LOOP;

  FOR alert IN SELECT * FROM low_balance_alerts WHERE account_id = NEW.account_id LOOP
    IF is_debit AND alert.armed AND NEW.balance_after < alert.threshold THEN
      UPDATE low_balance_alerts SET armed = false WHERE account_id = alert.account_id AND user_id = alert.user_id;
      PERFORM notify_user(alert.user_id, 'balance.low', false,
        payload || jsonb_build_object('threshold', alert.threshold::text));
    ELSIF NOT is_debit AND NOT alert.armed AND NEW.balance_after >= alert.threshold THEN
      UPDATE low_balance_alerts SET armed = true WHERE account_id = alert.account_id AND user_id = alert.user_id;
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER entries_notify AFTER INSERT ON entries
  FOR EACH ROW EXECUTE FUNCTION notify_entry();

-- A login from an address this user has not logged in from before.
CREATE FUNCTION notify_session() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = NEW.user_id
                    AND s.client_addr IS NOT DISTINCT FROM NEW.client_addr AND s.token_hash <> NEW.token_hash) THEN
    PERFORM notify_user(NEW.user_id, 'security.new_device', true,
      jsonb_build_object('client_addr', NEW.client_addr, 'at', rfc3339(NEW.created_at)));
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER sessions_notify AFTER INSERT ON sessions
  FOR EACH ROW EXECUTE FUNCTION notify_session();

CREATE FUNCTION notify_mfa_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;
  IF OLD.totp_enrolled_at IS NOT NULL AND NEW.totp_enrolled_at IS NULL THEN
    PERFORM notify_user(NEW.id, 'security.mfa_reset', true, '{}'::jsonb);
  ELSIF OLD.totp_enrolled_at IS NULL AND NEW.totp_enrolled_at IS NOT NULL THEN
    PERFORM notify_user(NEW.id, 'security.mfa_enrolled', true, '{}'::jsonb);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_mfa AFTER UPDATE OF totp_enrolled_at ON users
  FOR EACH ROW EXECUTE FUNCTION notify_mfa_change();

CREATE FUNCTION notify_account_status() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  owner record;
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' OR OLD.status = NEW.status THEN
    RETURN NULL;
  END IF;
  FOR owner IN SELECT user_id FROM account_owners WHERE account_id = NEW.id LOOP
    PERFORM notify_user(owner.user_id, 'account.status', true,
      jsonb_build_object('account_id', NEW.id, 'account', mask_account_number(NEW.number),
                         'from', OLD.status, 'to', NEW.status));
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER accounts_notify_status AFTER UPDATE OF status ON accounts
  FOR EACH ROW EXECUTE FUNCTION notify_account_status();

GRANT SELECT, INSERT, UPDATE ON notification_events, notification_deliveries, notification_settings TO flexibank_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON low_balance_alerts TO flexibank_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO flexibank_app;
