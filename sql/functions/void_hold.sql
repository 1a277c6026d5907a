-- The one home of void_hold(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.void_hold(p_reference text)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
  h record;
BEGIN
  SELECT hd.id, hd.account_id, hd.amount, hd.status INTO h FROM holds hd WHERE hd.reference = p_reference;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  -- The account first, as everywhere (see place_hold), then the hold again under it.
  PERFORM 1 FROM accounts a WHERE a.id = h.account_id FOR UPDATE;
  SELECT hd.id, hd.account_id, hd.amount, hd.status, hd.created_at INTO h FROM holds hd WHERE hd.id = h.id FOR UPDATE;
  IF h.status = 'voided' THEN
    RETURN true;
  END IF;
  IF h.status = 'posted' THEN
    RAISE EXCEPTION 'hold % was posted; a posted hold is never voided', p_reference;
  END IF;
  UPDATE holds SET status = 'voided', decided_at = now() WHERE id = h.id;
  -- A hold placed today gives its share of the daily limit back.
  UPDATE accounts
     SET held = held - h.amount,
         limit_used = limit_used - CASE WHEN (h.created_at AT TIME ZONE limit_time_zone)::date = (now() AT TIME ZONE limit_time_zone)::date
                                        THEN h.amount ELSE 0 END
   WHERE id = h.account_id;
  RETURN true;
END
$function$
;
