-- The one home of hold_for_review(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).
--
-- A movement the rules flagged (review_reason) waits for a reviewer: the payer's
-- account is checked as the movement itself would check it, its amount is held
-- (place_hold: status, available funds, the daily limit), the review recorded
-- and the customer told. `p_kind`: 'transfer' and 'standing_order' pay an
-- account number of this bank, 'interbank' a key. Answers the review's id.

CREATE OR REPLACE FUNCTION public.hold_for_review(p_user_id uuid, p_kind text, p_account_id uuid, p_to_number text, p_key_type text, p_key_value text, p_amount numeric, p_memo text, p_reason text, p_expire_after_h integer, p_order_id uuid, p_due_key text)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
  payer record;
  payee_currency text;
  review_id uuid := uuid_v7();
BEGIN
  SELECT a.branch_id, a.currency, a.number INTO payer
    FROM accounts a JOIN account_owners o ON o.account_id = a.id AND o.user_id = p_user_id
   WHERE a.id = p_account_id AND a.kind NOT IN ('vault', 'settlement', 'fx');
  IF NOT FOUND THEN
    PERFORM fb_fail('not_found', 'no such account');
  END IF;
  IF p_kind = 'interbank' THEN
    IF p_key_type IS NULL OR p_key_value IS NULL OR p_to_number IS NOT NULL THEN
      RAISE EXCEPTION 'an inter-bank review names a key, not an account number';
    END IF;
  ELSE
    SELECT a.currency INTO payee_currency FROM accounts a WHERE a.number = p_to_number AND a.kind NOT IN ('vault', 'settlement', 'fx');
    IF NOT FOUND THEN
      PERFORM fb_fail('not_found', format('no account with number %s', p_to_number));
    END IF;
    IF payee_currency <> payer.currency THEN
      PERFORM fb_fail('currency_mismatch', format('%s account cannot pay a %s account', payer.currency, payee_currency));
    END IF;
    IF payer.number = p_to_number THEN
      PERFORM fb_fail('same_account', 'cannot transfer an account to itself');
    END IF;
  END IF;
  PERFORM place_hold(p_account_id, p_amount, 'review:' || review_id);
  INSERT INTO reviews (id, kind, user_id, branch_id, from_account_id, to_account_number, to_key_type, to_key_value,
                       amount, currency, memo, reason, expires_at, order_id, due_key)
  VALUES (review_id, p_kind, p_user_id, payer.branch_id, p_account_id, p_to_number, p_key_type, p_key_value,
          p_amount, payer.currency, coalesce(p_memo, ''), p_reason, now() + make_interval(hours => p_expire_after_h), p_order_id, p_due_key);
  PERFORM notify_user(p_user_id, 'review.held', false,
                      jsonb_build_object('review_id', review_id::text, 'amount', p_amount::text, 'currency', payer.currency,
                                         'to', CASE WHEN p_to_number IS NOT NULL THEN 'a/c ' || mask_account_number(p_to_number)
                                                    ELSE p_key_type || ' key' END));
  RETURN review_id;
END
$function$
;
