-- The one home of move_money_batch(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.move_money_batch(p_actor_id uuid, p_actor_role text, p_scope_owner uuid, p_idempotency_key text, p_request_hash bytea, p_items jsonb, p_request_id text, p_client_addr text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  batch_id uuid := uuid_v7();
  moved_at timestamptz := clock_timestamp();
  item_count int;
  -- Per item, in request order.
  from_ids uuid[];
  to_numbers text[];
  amounts numeric[];
  memos text[];
  problems text[];
  transfer_ids uuid[];
  to_ids uuid[];
  currencies text[];
  from_numbers text[];
  branch_ids uuid[];
  from_afters numeric[];
  to_afters numeric[];
  -- Running balances of the accounts the items touch.
  account_ids uuid[];
  balances numeric[];
  helds numeric[];
  from_pos int;
  to_pos int;
  failed_idx int;
  bodies jsonb;
  body jsonb;
BEGIN
  IF jsonb_typeof(p_items) <> 'array' OR jsonb_array_length(p_items) NOT BETWEEN 1 AND 1000 THEN
    PERFORM fb_fail('validation_failed', 'items must hold 1 to 1000 transfers');
  END IF;
  item_count := jsonb_array_length(p_items);
  -- Take every row lock up front in id order, so that concurrent batches
  -- touching the same accounts wait for each other instead of deadlocking.
  PERFORM 1 FROM accounts a
   WHERE a.id IN (SELECT (i ->> 'from_account_id')::uuid FROM jsonb_array_elements(p_items) i)
      OR a.number IN (SELECT i ->> 'to_account_number' FROM jsonb_array_elements(p_items) i)
   ORDER BY a.id FOR UPDATE;

  SELECT array_agg((i ->> 'from_account_id')::uuid ORDER BY ord), array_agg(i ->> 'to_account_number' ORDER BY ord),
         array_agg((i ->> 'amount')::numeric ORDER BY ord), array_agg(coalesce(i ->> 'memo', '') ORDER BY ord)
    INTO from_ids, to_numbers, amounts, memos
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(i, ord);
  -- Each item's checks (check_transfers, V13).
  SELECT array_agg(c.problem ORDER BY c.ord), array_agg(uuid_v7() ORDER BY c.ord), array_agg(c.to_id ORDER BY c.ord),
         array_agg(c.currency ORDER BY c.ord), array_agg(c.from_number ORDER BY c.ord), array_agg(c.branch_id ORDER BY c.ord)
    INTO problems, transfer_ids, to_ids, currencies, from_numbers, branch_ids
    FROM check_transfers(array_fill(p_scope_owner, ARRAY[item_count]), from_ids, to_numbers, amounts) c;

  SELECT array_agg(a.id), array_agg(a.balance), array_agg(a.held) INTO account_ids, balances, helds
    FROM accounts a WHERE a.id = ANY (from_ids) OR a.id = ANY (to_ids);

  -- As if the items ran one after another: the first that fails (by index)
  -- fails the batch, and nothing is applied.
  from_afters := array_fill(NULL::numeric, ARRAY[item_count]);
  to_afters := from_afters;
  FOR i IN 1 .. item_count LOOP
    failed_idx := i - 1;
    CASE problems[i]
      WHEN 'validation_failed' THEN PERFORM fb_fail('validation_failed', format('item %s: amount must be > 0, at most 1000000000000, with at most 2 decimals', failed_idx));
      WHEN 'no_from' THEN PERFORM fb_fail('not_found', format('item %s: no such account', failed_idx));
      WHEN 'same_account' THEN PERFORM fb_fail('same_account', format('item %s: cannot transfer an account to itself', failed_idx));
      WHEN 'no_to' THEN PERFORM fb_fail('not_found', format('item %s: no account with number %s', failed_idx, coalesce(to_numbers[i], 'null')));
      WHEN 'from_inactive' THEN PERFORM fb_fail('account_inactive', format('item %s: account %s is not active', failed_idx, from_numbers[i]));
      WHEN 'to_inactive' THEN PERFORM fb_fail('account_inactive', format('item %s: account %s is not active', failed_idx, to_numbers[i]));
      WHEN 'currency_mismatch' THEN PERFORM fb_fail('currency_mismatch', format('item %s: accounts in different currencies', failed_idx));
      ELSE NULL;
    END CASE;
    from_pos := array_position(account_ids, from_ids[i]);
    to_pos := array_position(account_ids, to_ids[i]);
    ASSERT from_pos IS NOT NULL AND to_pos IS NOT NULL, 'a checked item names accounts that were read';
    -- Held money (sql/V16) is not there to spend.
    IF balances[from_pos] - helds[from_pos] < amounts[i] THEN
      PERFORM fb_fail('insufficient_funds', format('item %s: account %s holds %s %s', failed_idx, from_numbers[i],
                                                   balances[from_pos]::numeric(20, 2), currencies[i])
                                            || CASE WHEN helds[from_pos] > 0 THEN format(', %s of it on hold', helds[from_pos]) ELSE '' END);
    END IF;
    balances[from_pos] := balances[from_pos] - amounts[i];
    balances[to_pos] := balances[to_pos] + amounts[i];
    from_afters[i] := balances[from_pos];
    to_afters[i] := balances[to_pos];
  END LOOP;

  -- Apply: both sides of every item at once; the rows, entries and audit
  -- trail as the single-transfer path writes them (write_transfers, V13).
  bodies := write_transfers(moved_at, batch_id, NULL, array_fill(p_actor_id, ARRAY[item_count]),
                            array_fill(p_actor_role, ARRAY[item_count]), array_fill(p_request_id, ARRAY[item_count]),
                            array_fill(p_client_addr, ARRAY[item_count]), transfer_ids, from_ids, to_ids, from_numbers,
                            to_numbers, branch_ids, amounts, currencies, memos, from_afters, to_afters);

  body := jsonb_build_object('transfers', bodies);
  PERFORM store_idempotent_response(p_actor_id, p_idempotency_key, p_request_hash, body);
  RETURN jsonb_build_object('replayed', false, 'status', 201, 'body', body);
END
$function$
;
