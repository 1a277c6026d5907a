-- The one home of move_money_group(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.move_money_group(p_actor_ids uuid[], p_actor_roles text[], p_keys text[], p_request_hashes bytea[], p_from_ids uuid[], p_to_numbers text[], p_amounts numeric[], p_memos text[], p_request_ids text[], p_client_addrs text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  moved_at timestamptz := clock_timestamp();
  item_count int := cardinality(p_actor_ids);
  -- Per item, in argument order.
  problems text[];
  transfer_ids uuid[];
  to_ids uuid[];
  currencies text[];
  to_currencies text[];
  from_numbers text[];
  branch_ids uuid[];
  from_statuses text[];
  to_statuses text[];
  from_afters numeric[];
  to_afters numeric[];
  helds numeric[];
  -- Running balances of the accounts the items touch.
  account_ids uuid[];
  balances numeric[];
  held_by_account numeric[];
  on_holds numeric[];
  from_pos int;
  to_pos int;
  bodies jsonb;
  results jsonb;
BEGIN
  IF item_count NOT BETWEEN 1 AND 256
     OR cardinality(p_actor_roles) <> item_count OR cardinality(p_keys) <> item_count
     OR cardinality(p_request_hashes) <> item_count OR cardinality(p_from_ids) <> item_count
     OR cardinality(p_to_numbers) <> item_count OR cardinality(p_amounts) <> item_count
     OR cardinality(p_memos) <> item_count OR cardinality(p_request_ids) <> item_count
     OR cardinality(p_client_addrs) <> item_count THEN
    RAISE EXCEPTION 'a group holds 1 to 256 transfers, every array as long as the others';
  END IF;

  -- Every row lock up front, in id order: groups and single movements
  -- touching the same accounts wait for each other instead of deadlocking.
  PERFORM 1 FROM accounts a
   WHERE a.id = ANY (p_from_ids) OR a.number = ANY (p_to_numbers)
   ORDER BY a.id FOR UPDATE;

  SELECT array_agg(c.problem ORDER BY c.ord), array_agg(uuid_v7() ORDER BY c.ord), array_agg(c.to_id ORDER BY c.ord),
         array_agg(c.currency ORDER BY c.ord), array_agg(c.to_currency ORDER BY c.ord),
         array_agg(c.from_number ORDER BY c.ord), array_agg(c.branch_id ORDER BY c.ord),
         array_agg(c.from_status ORDER BY c.ord), array_agg(c.to_status ORDER BY c.ord)
    INTO problems, transfer_ids, to_ids, currencies, to_currencies, from_numbers, branch_ids, from_statuses, to_statuses
    FROM check_transfers(p_actor_ids, p_from_ids, p_to_numbers, p_amounts) c;

  SELECT array_agg(a.id), array_agg(a.balance), array_agg(a.held) INTO account_ids, balances, held_by_account
    FROM accounts a WHERE a.id = ANY (p_from_ids) OR a.id = ANY (to_ids);

  -- Funds, as if the items ran one after another.
  from_afters := array_fill(NULL::numeric, ARRAY[item_count]);
  to_afters := from_afters;
  helds := from_afters;
  on_holds := from_afters;
  FOR i IN 1 .. item_count LOOP
    CONTINUE WHEN problems[i] IS NOT NULL;
    from_pos := array_position(account_ids, p_from_ids[i]);
    to_pos := array_position(account_ids, to_ids[i]);
    ASSERT from_pos IS NOT NULL AND to_pos IS NOT NULL, 'a checked item names accounts that were read';
    -- Held money (sql/V16) is not there to spend.
    IF balances[from_pos] - held_by_account[from_pos] < p_amounts[i] THEN
      problems[i] := 'insufficient_funds';
      helds[i] := balances[from_pos];
      on_holds[i] := held_by_account[from_pos];
    ELSE
      balances[from_pos] := balances[from_pos] - p_amounts[i];
      balances[to_pos] := balances[to_pos] + p_amounts[i];
      from_afters[i] := balances[from_pos];
      to_afters[i] := balances[to_pos];
    END IF;
  END LOOP;

  -- Apply the items standing: the rows each would have written alone.
  bodies := write_transfers(moved_at, NULL, problems, p_actor_ids, p_actor_roles, p_request_ids, p_client_addrs,
                            transfer_ids, p_from_ids, to_ids, from_numbers, p_to_numbers, branch_ids, p_amounts,
                            currencies, p_memos, from_afters, to_afters);
  INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
  SELECT idempotency_key_hash(t.actor_id, t.key), t.actor_id, t.key, t.request_hash, 201, bodies -> (t.ord::int - 1)
    FROM unnest(problems, p_actor_ids, p_keys, p_request_hashes) WITH ORDINALITY AS t(problem, actor_id, key, request_hash, ord)
   WHERE t.problem IS NULL;

  SELECT jsonb_agg(CASE
           WHEN t.problem IS NULL THEN jsonb_build_object('ok', true, 'body', bodies -> (t.ord::int - 1))
           ELSE jsonb_build_object('ok', false,
             'code', CASE t.problem
                       WHEN 'no_from' THEN 'not_found' WHEN 'no_to' THEN 'not_found'
                       WHEN 'from_inactive' THEN 'account_inactive' WHEN 'to_inactive' THEN 'account_inactive'
                       ELSE t.problem END,
             'detail', CASE t.problem
                       WHEN 'validation_failed' THEN 'amount must be > 0, at most 1000000000000, with at most 2 decimals'
                       WHEN 'no_from' THEN 'no such account'
                       WHEN 'same_account' THEN 'cannot transfer an account to itself'
                       WHEN 'no_to' THEN 'no account with number ' || coalesce(t.to_number, 'null')
                       WHEN 'from_inactive' THEN format('account %s is %s', t.from_number, t.from_status)
                       WHEN 'to_inactive' THEN format('account %s is %s', t.to_number, t.to_status)
                       WHEN 'currency_mismatch' THEN format('%s account cannot pay a %s account', t.currency, t.to_currency)
                       ELSE format('account %s holds %s %s', t.from_number, t.held::numeric(20, 2), t.currency)
                            || CASE WHEN t.on_hold > 0 THEN format(', %s of it on hold', t.on_hold) ELSE '' END END)
         END ORDER BY t.ord)
    INTO results
    FROM unnest(problems, p_to_numbers, from_numbers, from_statuses, to_statuses, currencies, to_currencies, helds, on_holds)
         WITH ORDINALITY AS t(problem, to_number, from_number, from_status, to_status, currency, to_currency, held, on_hold, ord);
  RETURN results;
END
$function$
;
