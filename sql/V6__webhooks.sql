-- Webhooks for business customers (issue 8): every event of the customer is
-- POSTed to each of their active endpoints, signed with the endpoint's
-- secret (stored sealed with the server's key, shown once at registration).

CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id     uuid NOT NULL REFERENCES users (id),
    url         text NOT NULL CHECK (url LIKE 'https://%' AND length(url) <= 2048),
    secret_enc  bytea NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id) WHERE active;

CREATE OR REPLACE FUNCTION notify_user(p_user_id uuid, p_kind text, p_critical boolean, p_payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  s notification_settings%ROWTYPE;
  u record;
  hook record;
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
  -- Machines have no quiet hours.
  FOR hook IN SELECT id FROM webhook_endpoints WHERE user_id = p_user_id AND active LOOP
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination)
    VALUES (event_id, p_user_id, 'webhook', hook.id::text);
  END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON webhook_endpoints TO flexibank_app;
