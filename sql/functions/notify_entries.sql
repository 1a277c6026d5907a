-- The one home of notify_entries(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.notify_entries()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  moved record;
  alert record;
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;

  -- One event per owner of each customer account, in the entries' order; a
  -- delivery per channel each owner wants (money events respect quiet hours,
  -- webhooks do not).
  WITH events AS (
      SELECT uuid_v7() AS id, o.user_id,
             CASE WHEN e.amount < 0 THEN 'money.debit' ELSE 'money.credit' END AS kind,
             jsonb_build_object(
               'transfer_id', e.transfer_id, 'entry_kind', e.kind, 'account_id', e.account_id,
               'account', mask_account_number(a.number),
               'counterparty', CASE WHEN c.kind IN ('vault', 'settlement', 'fx') THEN NULL ELSE mask_account_number(c.number) END,
               'amount', abs(e.amount)::numeric(20, 2)::text, 'currency', a.currency,
               'balance_after', e.balance_after::numeric(20, 2)::text) AS payload,
             row_number() OVER (ORDER BY e.created_at, e.id, o.user_id) AS position
        FROM new_entries e
        JOIN accounts a ON a.id = e.account_id AND a.kind <> 'vault'
        JOIN account_owners o ON o.account_id = e.account_id
        LEFT JOIN accounts c ON c.id = e.counterparty_account_id
  ), new_events AS (
      INSERT INTO notification_events (id, user_id, kind, critical, payload)
      SELECT id, user_id, kind, false, payload FROM events ORDER BY position
  )
  INSERT INTO notification_deliveries (event_id, user_id, channel, destination, next_attempt_at)
  SELECT ev.id, ev.user_id, ch.channel, ch.destination, ch.send_at
    FROM events ev
    JOIN users u ON u.id = ev.user_id
    LEFT JOIN notification_settings s ON s.user_id = u.id
    CROSS JOIN LATERAL (
        SELECT 1 AS rank, 'sms' AS channel, u.phone AS destination,
               quiet_hours_send_at(s.quiet_start_min, s.quiet_end_min, coalesce(s.time_zone, 'UTC')) AS send_at
         WHERE u.phone IS NOT NULL AND u.phone <> '' AND coalesce(s.sms_money, true)
        UNION ALL
        SELECT 2, 'email', u.email, quiet_hours_send_at(s.quiet_start_min, s.quiet_end_min, coalesce(s.time_zone, 'UTC'))
         WHERE u.email IS NOT NULL AND u.email <> '' AND coalesce(s.email_money, false)
        UNION ALL
        SELECT 3, 'webhook', w.id::text, now() FROM webhook_endpoints w WHERE w.user_id = u.id AND w.active
    ) ch
   ORDER BY ev.position, ch.rank;

  -- Low-balance alerts, entry by entry in order (an alert fires once, and
  -- re-arms when the balance is back): only entries of accounts with alerts.
  FOR moved IN
    SELECT n.*, a.number, a.currency,
           (SELECT CASE WHEN c.kind IN ('vault', 'settlement', 'fx') THEN NULL ELSE mask_account_number(c.number) END
              FROM accounts c WHERE c.id = n.counterparty_account_id) AS counterparty
      FROM new_entries n JOIN accounts a ON a.id = n.account_id
     WHERE n.account_id IN (SELECT account_id FROM low_balance_alerts)
     ORDER BY n.created_at, n.id
  LOOP
    FOR alert IN SELECT * FROM low_balance_alerts WHERE account_id = moved.account_id ORDER BY user_id LOOP
      IF moved.amount < 0 AND alert.armed AND moved.balance_after < alert.threshold THEN
        UPDATE low_balance_alerts SET armed = false WHERE account_id = alert.account_id AND user_id = alert.user_id;
        PERFORM notify_user(alert.user_id, 'balance.low', false, jsonb_build_object(
          'transfer_id', moved.transfer_id, 'entry_kind', moved.kind, 'account_id', moved.account_id,
          'account', mask_account_number(moved.number), 'counterparty', moved.counterparty,
          'amount', abs(moved.amount)::numeric(20, 2)::text, 'currency', moved.currency,
          'balance_after', moved.balance_after::numeric(20, 2)::text, 'threshold', alert.threshold::text));
      ELSIF moved.amount > 0 AND NOT alert.armed AND moved.balance_after >= alert.threshold THEN
        UPDATE low_balance_alerts SET armed = true WHERE account_id = alert.account_id AND user_id = alert.user_id;
      END IF;
    END LOOP;
  END LOOP;
  RETURN NULL;
END
$function$
;
