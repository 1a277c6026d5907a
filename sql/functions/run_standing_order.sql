-- The one home of run_standing_order(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.run_standing_order(p_order_id uuid, p_retry_after_s integer, p_max_runs integer, p_runner text, p_context jsonb)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
  o record;
  due record;
  ends_at timestamptz;
  runs int := 0;
  first_run boolean;
BEGIN
  -- Another process running this order now: it is theirs.
  SELECT * INTO o FROM standing_orders WHERE id = p_order_id FOR UPDATE SKIP LOCKED;
  IF NOT FOUND OR o.status <> 'active' OR o.next_due_at > now() THEN
    RETURN 0;
  END IF;
  ends_at := CASE WHEN o.end_on IS NOT NULL THEN (o.end_on + 1)::timestamp AT TIME ZONE o.time_zone END;
  -- Every date due by now, oldest first: the ones missed while no server ran too.
  WHILE o.next_due_at IS NOT NULL AND o.next_due_at <= now() AND runs < p_max_runs LOOP
    SELECT * INTO due FROM standing_order_due(o.every, o.every_n, o.start_on, o.time_of_day, o.time_zone, o.anchor_at, o.next_k);
    INSERT INTO standing_order_runs (order_id, due_key, due_at, status)
    VALUES (o.id, due.due_key, due.due_at, 'running')
    ON CONFLICT (order_id, due_key) DO NOTHING;
    first_run := FOUND;
    IF first_run THEN
      PERFORM standing_order_attempt(o.id, due.due_key, 1, p_retry_after_s, p_runner, p_context);
      runs := runs + 1;
    END IF;
    o.next_k := o.next_k + 1;
    SELECT * INTO due FROM standing_order_due(o.every, o.every_n, o.start_on, o.time_of_day, o.time_zone, o.anchor_at, o.next_k);
    IF ends_at IS NOT NULL AND due.due_at >= ends_at THEN
      o.status := 'ended';
      o.next_due_at := NULL;
    ELSE
      o.next_due_at := due.due_at;
    END IF;
  END LOOP;
  UPDATE standing_orders SET next_k = o.next_k, next_due_at = o.next_due_at, status = o.status, updated_at = now() WHERE id = o.id;
  RETURN runs;
END
$function$
;
