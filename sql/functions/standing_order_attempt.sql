-- The one home of standing_order_attempt(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.standing_order_attempt(p_order_id uuid, p_due_key text, p_attempt integer, p_retry_after_s integer, p_runner text, p_context jsonb)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
DECLARE
  o record;
  run record;
  moved jsonb;
  code text;
  detail text;
  retry_time timestamptz;
  reason text;
  held_review uuid;
  review_rules jsonb := p_context -> 'review';
  bank_id text := p_context ->> 'bank_id';
  run_key text := 'standing-order:' || p_order_id || ':' || p_due_key;
  placed jsonb;
BEGIN
  -- The caller holds the order's row lock and has written the run's row.
  SELECT * INTO o FROM standing_orders WHERE id = p_order_id;
  SELECT * INTO run FROM standing_order_runs WHERE order_id = p_order_id AND due_key = p_due_key;
  BEGIN
    -- The bank's rules look at each run as at any transfer or payment by key (review_reason):
    -- a flagged run waits for a reviewer, its amount held; the review's decision finishes it.
    IF review_rules IS NOT NULL THEN
      reason := review_reason(o.user_id, o.from_account_id, o.to_account_number, o.to_key_type, o.to_key_value, o.amount, review_rules);
    END IF;
    IF reason IS NOT NULL THEN
      held_review := hold_for_review(o.user_id, CASE WHEN o.to_key_type IS NULL THEN 'standing_order' ELSE 'interbank' END,
                                     o.from_account_id, o.to_account_number, o.to_key_type, o.to_key_value, o.amount, o.memo,
                                     reason, (review_rules ->> 'expire_after_h')::integer, o.id, p_due_key);
      UPDATE standing_order_runs SET status = 'held', attempts = p_attempt, review_id = held_review, refusal_code = NULL, retry_at = NULL, ran_at = now()
       WHERE order_id = p_order_id AND due_key = p_due_key;
      INSERT INTO audit_log (actor_role, branch_id, action, target, outcome, details, client_addr)
      SELECT 'system', r.branch_id, 'review.held', 'review:' || r.id, 'success',
             jsonb_build_object('order_id', o.id, 'due', p_due_key, 'amount', r.amount::text, 'reason', r.reason), p_runner
        FROM reviews r WHERE r.id = held_review;
      RETURN 'held';
    END IF;
    IF o.to_key_type IS NOT NULL THEN
      -- An inter-bank payment, placed as the customer's own are (interbank_place_many: the hold, the
      -- payment's row, the daily limit), idempotent by the run; the server sends it to the switch
      -- once this commits (server/src/scheduler.rs), and the switch decides it.
      IF bank_id IS NULL THEN
        PERFORM fb_fail('bank_unavailable', 'this bank is not a member of a consortium now');
      END IF;
      placed := (interbank_place_many(ARRAY[o.user_id], ARRAY[o.from_account_id], ARRAY[run_key],
                                      ARRAY[sha256(convert_to(run_key || ':' || o.amount::text, 'UTF8'))],
                                      ARRAY['E' || bank_id || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MI')
                                            || substr(md5(run_key || clock_timestamp()::text || random()::text), 1, 11)],
                                      ARRAY[o.amount], o.currency, ARRAY[o.to_key_type], ARRAY[o.to_key_value], ARRAY[o.memo],
                                      ARRAY[run_key], ARRAY[p_runner]))[1];
      IF placed ->> 'outcome' NOT IN ('placed', 'replay') THEN
        PERFORM fb_fail(placed ->> 'code', placed ->> 'detail');
      END IF;
      UPDATE standing_order_runs SET status = 'done', attempts = p_attempt, interbank_payment_id = (placed ->> 'id')::uuid,
                                     refusal_code = NULL, retry_at = NULL, ran_at = now()
       WHERE order_id = p_order_id AND due_key = p_due_key;
      RETURN 'done';
    END IF;
    -- As the customer: the order moves money only while they own the account and it may pay.
    moved := apply_movement(o.user_id, 'customer', o.user_id, NULL, 'transfer', o.from_account_id, o.to_account_number,
                            o.amount, o.memo, NULL, NULL, 'standing-order:' || o.id || ':' || p_due_key, p_runner);
    UPDATE standing_order_runs SET status = 'done', attempts = p_attempt, transfer_id = (moved ->> 'id')::uuid,
                                   refusal_code = NULL, retry_at = NULL, ran_at = now()
     WHERE order_id = p_order_id AND due_key = p_due_key;
    RETURN 'done';
  EXCEPTION WHEN SQLSTATE 'FB000' THEN
    GET STACKED DIAGNOSTICS code = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  END;
  -- Short of funds the first time: once more later that local day, if the day has room for it.
  retry_time := now() + make_interval(secs => p_retry_after_s);
  IF code = 'insufficient_funds' AND p_attempt = 1
     AND (retry_time AT TIME ZONE o.time_zone)::date = (run.due_at AT TIME ZONE o.time_zone)::date THEN
    UPDATE standing_order_runs SET status = 'retry', attempts = p_attempt, refusal_code = code, retry_at = retry_time, ran_at = now()
     WHERE order_id = p_order_id AND due_key = p_due_key;
    PERFORM notify_user(o.user_id, 'standing_order.refused', false,
                        jsonb_build_object('order_id', o.id, 'due', p_due_key, 'code', code, 'amount', o.amount::text,
                                           'currency', o.currency, 'retry_at', rfc3339(retry_time)));
    RETURN 'retry';
  END IF;
  UPDATE standing_order_runs SET status = 'skipped', attempts = p_attempt, refusal_code = code, retry_at = NULL, ran_at = now()
   WHERE order_id = p_order_id AND due_key = p_due_key;
  PERFORM notify_user(o.user_id, 'standing_order.skipped', false,
                      jsonb_build_object('order_id', o.id, 'due', p_due_key, 'code', code, 'detail', detail,
                                         'amount', o.amount::text, 'currency', o.currency));
  RETURN 'skipped';
END
$function$
;
