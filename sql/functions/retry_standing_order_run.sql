-- The one home of retry_standing_order_run(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.retry_standing_order_run(p_order_id uuid, p_due_key text, p_retry_after_s integer, p_runner text, p_context jsonb)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
DECLARE
  o record;
  run record;
BEGIN
  SELECT * INTO o FROM standing_orders WHERE id = p_order_id FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT * INTO run FROM standing_order_runs WHERE order_id = p_order_id AND due_key = p_due_key FOR UPDATE;
  IF NOT FOUND OR run.status <> 'retry' OR run.retry_at > now() THEN
    RETURN NULL;
  END IF;
  IF o.status <> 'active' THEN
    -- Paused or cancelled since: the customer stopped it; the retry does not run.
    UPDATE standing_order_runs SET status = 'skipped', refusal_code = 'order_' || o.status, retry_at = NULL, ran_at = now()
     WHERE order_id = p_order_id AND due_key = p_due_key;
    RETURN 'skipped';
  END IF;
  RETURN standing_order_attempt(p_order_id, p_due_key, 2, p_retry_after_s, p_runner, p_context);
END
$function$
;
