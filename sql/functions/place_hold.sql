-- The one home of place_hold(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.place_hold(p_account_id uuid, p_amount numeric, p_reference text)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
  acc record;
  existing record;
  new_id uuid;
BEGIN
  IF p_amount IS NULL OR p_amount <= 0 OR p_amount > 1000000000000 OR scale(p_amount) > 2 THEN
    PERFORM fb_fail('validation_failed', 'amount must be > 0, at most 1000000000000, with at most 2 decimals');
  END IF;
  -- The account first, then the hold: every path locks an account before
  -- anything else, so this cannot deadlock with a movement or a void.
  SELECT a.id, a.number, a.kind, a.currency, a.balance, a.held, a.status INTO acc
    FROM accounts a WHERE a.id = p_account_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM fb_fail('not_found', 'no such account');
  END IF;
  -- A repeat returns the first hold; the same reference for something else is refused.
  SELECT h.id, h.account_id, h.amount INTO existing FROM holds h WHERE h.reference = p_reference;
  IF FOUND THEN
    IF existing.account_id <> p_account_id OR existing.amount <> p_amount THEN
      PERFORM fb_fail('idempotency_key_reused', format('hold %s was placed for another account or amount', p_reference));
    END IF;
    RETURN existing.id;
  END IF;
  IF acc.kind IN ('vault', 'settlement', 'fx') THEN
    PERFORM fb_fail('not_found', 'no such account');
  END IF;
  IF acc.status <> 'active' THEN
    PERFORM fb_fail('account_inactive', format('account %s is %s', acc.number, acc.status));
  END IF;
  IF acc.balance - acc.held < p_amount THEN
    PERFORM fb_fail('insufficient_funds', format('account %s has %s %s available', acc.number, (acc.balance - acc.held)::numeric(20, 2), acc.currency));
  END IF;
  INSERT INTO holds (account_id, amount, reference) VALUES (p_account_id, p_amount, p_reference) RETURNING id INTO new_id;
  -- A hold counts against the daily limit when it is placed (count_daily_limit()).
  UPDATE accounts SET held = held + p_amount, limit_used = limit_used + p_amount WHERE id = p_account_id;
  RETURN new_id;
END
$function$
;
