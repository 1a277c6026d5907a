-- The one home of interbank_place_many(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

-- Step 1 at the payer's bank for a group of payments in one transaction
-- (server/src/interbank/grouped.rs): for each, in the order given, what
-- place_hold() and the payment's row would do one by one. The payers'
-- accounts are locked first, in id order. A refusal is that payment's answer,
-- not an error: it writes nothing and the others go on. One answer per payment:
--   {"outcome": "placed", "id": <payment id>}
--   {"outcome": "replay", "id": <the first payment's id>}   (same customer, key and body)
--   {"outcome": "refused", "code": <problem code>, "detail": <text>}
-- The amounts were checked by the caller (positive, at most 1e12, 2 decimals).
CREATE OR REPLACE FUNCTION public.interbank_place_many(
  p_user_ids uuid[], p_account_ids uuid[], p_idempotency_keys text[], p_request_hashes bytea[],
  p_e2e_ids text[], p_amounts numeric[], p_currency text, p_key_types text[], p_key_values text[],
  p_memos text[], p_request_ids text[], p_client_addrs text[])
 RETURNS jsonb[]
 LANGUAGE plpgsql
AS $function$
DECLARE
  n int := cardinality(p_user_ids);
  answers jsonb[] := '{}';
  acc record;
  existing record;
  payment_id uuid;
  i int;
BEGIN
  IF n > 256 OR cardinality(p_account_ids) <> n OR cardinality(p_idempotency_keys) <> n OR cardinality(p_request_hashes) <> n
     OR cardinality(p_e2e_ids) <> n OR cardinality(p_amounts) <> n OR cardinality(p_key_types) <> n OR cardinality(p_key_values) <> n
     OR cardinality(p_memos) <> n OR cardinality(p_request_ids) <> n OR cardinality(p_client_addrs) <> n THEN
    RAISE EXCEPTION 'a hold group is at most 256 payments, with every field for each';
  END IF;
  PERFORM 1 FROM accounts a WHERE a.id = ANY(p_account_ids) ORDER BY a.id FOR UPDATE;
  FOR i IN 1 .. n LOOP
    SELECT ip.id, ip.request_hash INTO existing FROM interbank_payments ip
     WHERE ip.created_by = p_user_ids[i] AND ip.idempotency_key = p_idempotency_keys[i];
    IF FOUND THEN
      answers := answers || CASE WHEN existing.request_hash = p_request_hashes[i]
                                 THEN jsonb_build_object('outcome', 'replay', 'id', existing.id)
                                 ELSE jsonb_build_object('outcome', 'refused', 'code', 'idempotency_key_reused',
                                                         'detail', 'this Idempotency-Key was used for a different request') END;
      CONTINUE;
    END IF;
    SELECT a.id, a.number, a.kind, a.currency, a.balance, a.held, a.status, a.branch_id INTO acc FROM accounts a
     WHERE a.id = p_account_ids[i] AND a.kind NOT IN ('vault', 'settlement')
       AND EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = p_user_ids[i]);
    IF NOT FOUND THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'not_found', 'detail', 'no such account');
    ELSIF acc.currency <> p_currency THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'currency_mismatch',
                                               'detail', format('inter-bank payments are in %s; this account is %s', p_currency, acc.currency));
    ELSIF acc.status <> 'active' THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'account_inactive',
                                               'detail', format('account %s is %s', acc.number, acc.status));
    ELSIF acc.balance - acc.held < p_amounts[i] THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'insufficient_funds',
                                               'detail', format('account %s has %s %s available', acc.number, (acc.balance - acc.held)::numeric(20, 2), acc.currency));
    ELSE
      INSERT INTO holds (account_id, amount, reference) VALUES (acc.id, p_amounts[i], p_e2e_ids[i]);
      UPDATE accounts SET held = held + p_amounts[i] WHERE id = acc.id;
      INSERT INTO interbank_payments (e2e_id, direction, account_id, amount, currency, key_type, key_value, memo, status,
                                      created_by, idempotency_key, request_hash)
      VALUES (p_e2e_ids[i], 'out', acc.id, p_amounts[i], acc.currency, p_key_types[i], p_key_values[i], p_memos[i], 'sent',
              p_user_ids[i], p_idempotency_keys[i], p_request_hashes[i])
      RETURNING id INTO payment_id;
      INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
      VALUES (p_user_ids[i], 'customer', acc.branch_id, 'interbank.hold', 'payment:' || payment_id, p_request_ids[i], p_client_addrs[i], 'success',
              jsonb_build_object('e2e_id', p_e2e_ids[i], 'amount', p_amounts[i]::text));
      answers := answers || jsonb_build_object('outcome', 'placed', 'id', payment_id);
    END IF;
  END LOOP;
  RETURN answers;
END
$function$
;
