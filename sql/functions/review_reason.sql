-- The one home of review_reason(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).
--
-- The review rules (issue 18), in one place for every path that screens a
-- movement: the API's transfers and inter-bank payments (server/src/review.rs)
-- and standing-order runs (standing_order_attempt). `p_rules` is the server's
-- `[review]` configuration as JSON. Answers why the movement must wait for a
-- reviewer, or NULL.

CREATE OR REPLACE FUNCTION public.review_reason(p_user_id uuid, p_account_id uuid, p_to_number text, p_key_type text, p_key_value text, p_amount numeric, p_rules jsonb)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
  account_currency text;
  new_payee_over numeric;
  burst_from numeric;
  payee_added timestamptz;
  recent bigint;
  window_h integer := (p_rules ->> 'new_payee_window_h')::integer;
  burst_window_s integer := (p_rules ->> 'burst_window_s')::integer;
  burst_count integer := (p_rules ->> 'burst_count')::integer;
BEGIN
  SELECT a.currency INTO account_currency FROM accounts a WHERE a.id = p_account_id;
  IF NOT FOUND THEN
    -- No such account: the movement's own checks answer that.
    RETURN NULL;
  END IF;
  new_payee_over := (p_rules -> 'new_payee_amounts' ->> account_currency)::numeric;
  burst_from := (p_rules -> 'burst_min_amounts' ->> account_currency)::numeric;
  IF new_payee_over IS NOT NULL AND p_amount > new_payee_over THEN
    SELECT p.created_at INTO payee_added FROM payees p
     WHERE p.user_id = p_user_id
       AND ((p_to_number IS NOT NULL AND p.account_number = p_to_number)
         OR (p_key_type IS NOT NULL AND p.key_type = p_key_type AND p.key_value = p_key_value))
     ORDER BY p.created_at DESC LIMIT 1;
    IF payee_added > now() - make_interval(hours => window_h) THEN
      RETURN format('%s %s to a payee added less than %s h ago (more than %s %s)', p_amount, account_currency, window_h, new_payee_over, account_currency);
    END IF;
  END IF;
  IF burst_from IS NOT NULL AND p_amount >= burst_from THEN
    -- Transfers out and inter-bank payments out alike.
    SELECT (SELECT count(*) FROM entries e WHERE e.account_id = p_account_id AND e.kind = 'transfer_out'
               AND e.created_at > now() - make_interval(secs => burst_window_s))
         + (SELECT count(*) FROM interbank_payments ip WHERE ip.account_id = p_account_id AND ip.direction = 'out'
               AND ip.created_at > now() - make_interval(secs => burst_window_s))
      INTO recent;
    IF recent >= burst_count THEN
      RETURN format('%s %s after %s transfers in %s minutes (at most %s before a review)', p_amount, account_currency, recent, burst_window_s / 60, burst_count);
    END IF;
  END IF;
  RETURN NULL;
END
$function$
;
