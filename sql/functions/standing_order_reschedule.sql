-- The one home of standing_order_reschedule(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.standing_order_reschedule(p_order_id uuid)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
  o record;
  due record;
  ends_at timestamptz;
  last_key text;
  k int := 0;
BEGIN
  -- After a creation, an edit or a resumption: the next date is the first one
  -- still ahead and after every date that ran (a date never runs twice).
  SELECT * INTO o FROM standing_orders WHERE id = p_order_id FOR UPDATE;
  IF o.status IN ('cancelled', 'ended') THEN
    RETURN NULL;
  END IF;
  SELECT max(r.due_key) INTO last_key FROM standing_order_runs r WHERE r.order_id = p_order_id;
  ends_at := CASE WHEN o.end_on IS NOT NULL THEN (o.end_on + 1)::timestamp AT TIME ZONE o.time_zone END;
  LOOP
    SELECT * INTO due FROM standing_order_due(o.every, o.every_n, o.start_on, o.time_of_day, o.time_zone, o.anchor_at, k);
    EXIT WHEN due.due_at >= date_trunc('second', now()) AND (last_key IS NULL OR due.due_key > last_key);
    k := k + 1;
    IF k > 1000000 THEN
      RAISE EXCEPTION 'standing order %: no next date within a million occurrences', p_order_id;
    END IF;
  END LOOP;
  IF ends_at IS NOT NULL AND due.due_at >= ends_at THEN
    UPDATE standing_orders SET status = 'ended', next_k = k, next_due_at = NULL, updated_at = now() WHERE id = p_order_id;
    RETURN NULL;
  END IF;
  UPDATE standing_orders SET next_k = k, next_due_at = due.due_at, updated_at = now() WHERE id = p_order_id;
  RETURN due.due_at;
END
$function$
;
