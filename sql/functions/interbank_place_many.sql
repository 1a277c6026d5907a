-- The one home of interbank_place_many(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

-- Step 1 at the payer's bank for a group of payments in one transaction
-- (server/src/interbank/grouped.rs): for each, in the order given, what
-- place_hold() and the payment's row would do one by one. The payers'
-- accounts are locked first, in id order. A refusal is that payment's answer,
-- not an error: it writes nothing and the others go on. The loop only reads
-- and decides (each account's figure as the earlier holds of the group left
-- it); the holds, the accounts' held amounts, the payments and their audit
-- rows are then one statement each: PostgreSQL prepares a table's CHECK
-- constraints once per statement, so a statement per payment cost more than
-- the payment itself. One answer per payment:
--   {"outcome": "placed", "id": <payment id>}
--   {"outcome": "replay", "id": <the first payment's id>}   (same customer, key and body)
--   {"outcome": "refused", "code": <problem code>, "detail": <text>}
-- The amounts were checked by the caller (positive, at most 1e12, 2 decimals).
CREATE OR REPLACE FUNCTION public.interbank_place_many(p_user_ids uuid[], p_account_ids uuid[], p_idempotency_keys text[], p_request_hashes bytea[], p_e2e_ids text[], p_amounts numeric[], p_currency text, p_key_types text[], p_key_values text[], p_memos text[], p_request_ids text[], p_client_addrs text[])
 RETURNS jsonb[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  n int := cardinality(p_user_ids);
  answers jsonb[] := '{}';
  acc record;
  existing record;
  earlier int;
  held_before numeric;
  owned boolean;
  i int;
  -- Placed by this group: the rows written after the loop.
  new_ids uuid[] := '{}'; new_items int[] := '{}'; new_branches uuid[] := '{}'; new_currencies text[] := '{}';
  -- Per account touched: the amount this group holds on it.
  held_accounts uuid[] := '{}'; held_amounts numeric[] := '{}';
BEGIN
  IF n > 256 OR cardinality(p_account_ids) <> n OR cardinality(p_idempotency_keys) <> n OR cardinality(p_request_hashes) <> n
     OR cardinality(p_e2e_ids) <> n OR cardinality(p_amounts) <> n OR cardinality(p_key_types) <> n OR cardinality(p_key_values) <> n
     OR cardinality(p_memos) <> n OR cardinality(p_request_ids) <> n OR cardinality(p_client_addrs) <> n THEN
    RAISE EXCEPTION 'a hold group is at most 256 payments, with every field for each';
  END IF;
  PERFORM 1 FROM accounts a WHERE a.id = ANY(p_account_ids) ORDER BY a.id FOR UPDATE;
  FOR i IN 1 .. n LOOP
    -- A repeat of an earlier request of this group, or of one stored before.
    earlier := NULL;
    FOR j IN 1 .. cardinality(new_items) LOOP
      IF p_user_ids[new_items[j]] = p_user_ids[i] AND p_idempotency_keys[new_items[j]] = p_idempotency_keys[i] THEN
        earlier := j;
      END IF;
    END LOOP;
    IF earlier IS NOT NULL THEN
      answers := answers || CASE WHEN p_request_hashes[new_items[earlier]] = p_request_hashes[i]
                                 THEN jsonb_build_object('outcome', 'replay', 'id', new_ids[earlier])
                                 ELSE jsonb_build_object('outcome', 'refused', 'code', 'idempotency_key_reused',
                                                         'detail', 'this Idempotency-Key was used for a different request') END;
      CONTINUE;
    END IF;
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
     WHERE a.id = p_account_ids[i] AND a.kind NOT IN ('vault', 'settlement', 'fx')
       AND EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = p_user_ids[i]);
    owned := FOUND;
    earlier := array_position(held_accounts, p_account_ids[i]);
    held_before := coalesce(held_amounts[earlier], 0);
    IF NOT owned THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'not_found', 'detail', 'no such account');
    ELSIF acc.currency <> p_currency THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'currency_mismatch',
                                               'detail', format('inter-bank payments are in %s; this account is %s', p_currency, acc.currency));
    ELSIF acc.status <> 'active' THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'account_inactive',
                                               'detail', format('account %s is %s', acc.number, acc.status));
    ELSIF acc.balance - acc.held - held_before < p_amounts[i] THEN
      answers := answers || jsonb_build_object('outcome', 'refused', 'code', 'insufficient_funds',
                                               'detail', format('account %s has %s %s available', acc.number,
                                                                (acc.balance - acc.held - held_before)::numeric(20, 2), acc.currency));
    ELSE
      IF earlier IS NULL THEN
        held_accounts := held_accounts || acc.id;
        held_amounts := held_amounts || p_amounts[i];
      ELSE
        held_amounts[earlier] := held_before + p_amounts[i];
      END IF;
      new_ids := new_ids || uuid_v7();
      new_items := new_items || i;
      new_branches := new_branches || acc.branch_id;
      new_currencies := new_currencies || acc.currency;
      answers := answers || jsonb_build_object('outcome', 'placed', 'id', new_ids[cardinality(new_ids)]);
    END IF;
  END LOOP;

  IF cardinality(new_ids) > 0 THEN
    INSERT INTO holds (account_id, amount, reference)
    SELECT p_account_ids[k], p_amounts[k], p_e2e_ids[k] FROM unnest(new_items) AS k;
    UPDATE accounts a SET held = a.held + h.amount, limit_used = a.limit_used + h.amount
      FROM unnest(held_accounts, held_amounts) AS h(id, amount) WHERE a.id = h.id;
    INSERT INTO interbank_payments (id, e2e_id, direction, account_id, amount, currency, key_type, key_value, memo, status,
                                    created_by, idempotency_key, request_hash)
    SELECT u.id, p_e2e_ids[u.k], 'out', p_account_ids[u.k], p_amounts[u.k], u.currency, p_key_types[u.k], p_key_values[u.k], p_memos[u.k],
           'sent', p_user_ids[u.k], p_idempotency_keys[u.k], p_request_hashes[u.k]
      FROM unnest(new_ids, new_items, new_currencies) AS u(id, k, currency);
    INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
    SELECT p_user_ids[u.k], 'customer', u.branch_id, 'interbank.hold', 'payment:' || u.id, p_request_ids[u.k], p_client_addrs[u.k], 'success',
           jsonb_build_object('e2e_id', p_e2e_ids[u.k], 'amount', p_amounts[u.k]::text)
      FROM unnest(new_ids, new_items, new_branches) AS u(id, k, branch_id);
  END IF;
  RETURN answers;
END
$function$
;
