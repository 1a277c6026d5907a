-- The one home of notify_user(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.notify_user(p_user_id uuid, p_kind text, p_critical boolean, p_payload jsonb)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
  r record;
  event_id uuid := uuid_v7();
  is_money boolean := p_kind IN ('money.debit', 'money.credit', 'balance.low');
  send_at timestamptz := now();
  local_min int;
BEGIN
  INSERT INTO notification_events (id, user_id, kind, critical, payload)
  VALUES (event_id, p_user_id, p_kind, p_critical, p_payload);

  -- Absent settings row = the defaults of notification_settings.
  SELECT u.phone, u.email,
         coalesce(s.sms_money, true) AS sms_money, coalesce(s.sms_security, true) AS sms_security,
         coalesce(s.email_money, false) AS email_money, coalesce(s.email_security, true) AS email_security,
         s.quiet_start_min, s.quiet_end_min, coalesce(s.time_zone, 'UTC') AS time_zone,
         EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.user_id = u.id AND w.active) AS has_hooks
    INTO r
    FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id
   WHERE u.id = p_user_id;

  IF NOT p_critical AND r.quiet_start_min IS NOT NULL AND r.quiet_end_min IS NOT NULL
     AND r.quiet_start_min <> r.quiet_end_min THEN
    local_min := extract(hour FROM now() AT TIME ZONE r.time_zone)::int * 60
               + extract(minute FROM now() AT TIME ZONE r.time_zone)::int;
    IF (r.quiet_start_min < r.quiet_end_min AND local_min >= r.quiet_start_min AND local_min < r.quiet_end_min)
       OR (r.quiet_start_min > r.quiet_end_min AND (local_min >= r.quiet_start_min OR local_min < r.quiet_end_min)) THEN
      send_at := now() + make_interval(mins => ((r.quiet_end_min - local_min + 1440) % 1440));
    END IF;
  END IF;

  IF r.phone IS NOT NULL AND r.phone <> ''
     AND ((is_money AND r.sms_money) OR (NOT is_money AND r.sms_security)) THEN
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination, next_attempt_at, critical)
    VALUES (event_id, p_user_id, 'sms', r.phone, send_at, p_critical);
  END IF;
  IF r.email IS NOT NULL AND r.email <> ''
     AND ((is_money AND r.email_money) OR (NOT is_money AND r.email_security)) THEN
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination, next_attempt_at, critical)
    VALUES (event_id, p_user_id, 'email', r.email, send_at, p_critical);
  END IF;
  IF r.has_hooks THEN
    -- Machines have no quiet hours.
    INSERT INTO notification_deliveries (event_id, user_id, channel, destination, critical)
    SELECT event_id, p_user_id, 'webhook', w.id::text, p_critical FROM webhook_endpoints w WHERE w.user_id = p_user_id AND w.active;
  END IF;
END
$function$
;
