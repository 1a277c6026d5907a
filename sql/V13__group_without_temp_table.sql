-- move_money_group (V9) without its scratch table; same arguments, answers
-- and writes.
--
-- Profiled under load (perf, call graphs), a third of the primary's CPU went
-- to the temporary table rather than to the money: ON COMMIT DELETE ROWS
-- truncates it at every commit, which rebuilds its TOAST index, which updates
-- pg_class, which invalidates every cached plan that names the table, so each
-- call planned its statements again. That cost is per group, and it was most
-- of why a group cost ~1.9 ms of CPU before its first item.
--
-- Now the checks land in arrays (one statement, check_transfers, shared with
-- batches in V14, as is write_transfers for the rows), funds are run item by item
-- in array order in plpgsql (which is literally "as if the items ran one
-- after another": an item that would overdraw is refused and changes no
-- balance), and the writes read the arrays back with unnest.

-- The rows of customer transfers that passed their checks, many at once, for
-- groups (below) and batches (V14): both balances, the transfer, its two
-- entries and its audit row, as move_money writes them for one. Items whose
-- p_problems entry is not NULL are skipped (NULL p_problems: none is).
-- Returns the Transfer bodies in item order, null for a skipped item.
CREATE FUNCTION write_transfers(
    p_moved_at timestamptz, p_batch_id uuid, p_problems text[],
    p_actor_ids uuid[], p_actor_roles text[], p_request_ids text[], p_client_addrs text[],
    p_transfer_ids uuid[], p_from_ids uuid[], p_to_ids uuid[], p_from_numbers text[], p_to_numbers text[],
    p_branch_ids uuid[], p_amounts numeric[], p_currencies text[], p_memos text[],
    p_from_afters numeric[], p_to_afters numeric[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  bodies jsonb;
BEGIN
  WITH items AS (
      SELECT t.problem, t.actor_id, t.actor_role, t.request_id, t.client_addr, t.transfer_id, t.from_id, t.to_id,
             t.from_number, t.to_number, t.branch_id, t.amount, t.currency, coalesce(t.memo, '') AS memo,
             t.from_after, t.to_after, t.ord,
             p_moved_at + make_interval(secs => (t.ord - 1) / 1000000.0) AS created_at
        FROM unnest(p_problems, p_actor_ids, p_actor_roles, p_request_ids, p_client_addrs, p_transfer_ids, p_from_ids,
                    p_to_ids, p_from_numbers, p_to_numbers, p_branch_ids, p_amounts, p_currencies, p_memos,
                    p_from_afters, p_to_afters)
             WITH ORDINALITY AS t(problem, actor_id, actor_role, request_id, client_addr, transfer_id, from_id, to_id,
                                  from_number, to_number, branch_id, amount, currency, memo, from_after, to_after, ord)
  ), ok AS (
      SELECT * FROM items WHERE problem IS NULL
  ), net AS (
      SELECT account_id, sum(delta) AS delta FROM (
          SELECT from_id AS account_id, -amount AS delta FROM ok
          UNION ALL SELECT to_id, amount FROM ok) m
       GROUP BY account_id
  ), new_balances AS (
      UPDATE accounts a SET balance = a.balance + net.delta FROM net WHERE a.id = net.account_id
  ), new_transfers AS (
      INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, batch_id, created_by, created_at)
      SELECT transfer_id, 'transfer', from_id, to_id, amount, currency, memo, p_batch_id, actor_id, created_at
        FROM ok
  ), new_entries AS (
      INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
      SELECT uuid_v7(), transfer_id, from_id, 'transfer_out', -amount, from_after, to_id, memo, created_at
        FROM ok
      UNION ALL
      SELECT uuid_v7(), transfer_id, to_id, 'transfer_in', amount, to_after, from_id, memo, created_at
        FROM ok
  ), new_audit AS (
      INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
      SELECT actor_id, actor_role, branch_id, 'money.transfer', 'transfer:' || transfer_id, request_id, client_addr, 'success',
             jsonb_build_object('amount', amount::text, 'currency', currency, 'from', from_number, 'to', to_number,
                                'batch_id', p_batch_id)
        FROM ok
  )
  SELECT jsonb_agg(CASE WHEN problem IS NULL THEN jsonb_build_object(
           'id', transfer_id, 'kind', 'transfer', 'from_account_id', from_id, 'to_account_id', to_id,
           'amount', amount::numeric(20, 2)::text, 'currency', currency, 'memo', memo, 'status', 'committed',
           'created_at', rfc3339(created_at), 'balance_after', from_after::numeric(20, 2)::text) END ORDER BY ord)
    INTO bodies
    FROM items;
  RETURN bodies;
END
$$;

-- The checks of apply_movement (V2), in its order, for many transfers at
-- once, for groups (below) and batches (V14). An item's owner must own its
-- from-account (a NULL owner: anyone may move it, a branch admin's batch).
-- One row per item, in item order; problem NULL when the item may move.
CREATE FUNCTION check_transfers(p_owner_ids uuid[], p_from_ids uuid[], p_to_numbers text[], p_amounts numeric[])
RETURNS TABLE (ord bigint, problem text, to_id uuid, currency text, to_currency text, from_number text,
               branch_id uuid, from_status text, to_status text)
LANGUAGE sql STABLE AS $$
  SELECT t.ord,
         CASE
           WHEN t.amount IS NULL OR t.amount <= 0 OR t.amount > 1000000000000 OR scale(t.amount) > 2 THEN 'validation_failed'
           WHEN f.id IS NULL OR f.kind = 'vault' OR (t.owner_id IS NOT NULL AND NOT EXISTS
                  (SELECT 1 FROM account_owners o WHERE o.account_id = f.id AND o.user_id = t.owner_id)) THEN 'no_from'
           WHEN f.number = t.to_number THEN 'same_account'
           WHEN d.id IS NULL OR d.kind = 'vault' THEN 'no_to'
           WHEN f.status <> 'active' THEN 'from_inactive'
           WHEN d.status <> 'active' THEN 'to_inactive'
           WHEN f.currency <> d.currency THEN 'currency_mismatch'
         END,
         d.id, f.currency, d.currency, f.number, f.branch_id, f.status, d.status
    FROM unnest(p_owner_ids, p_from_ids, p_to_numbers, p_amounts) WITH ORDINALITY AS t(owner_id, from_id, to_number, amount, ord)
    LEFT JOIN accounts f ON f.id = t.from_id
    LEFT JOIN accounts d ON d.number = t.to_number
   ORDER BY t.ord
$$;

CREATE OR REPLACE FUNCTION move_money_group(
    p_actor_ids uuid[], p_actor_roles text[], p_keys text[], p_request_hashes bytea[],
    p_from_ids uuid[], p_to_numbers text[], p_amounts numeric[], p_memos text[],
    p_request_ids text[], p_client_addrs text[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
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

  SELECT array_agg(a.id), array_agg(a.balance) INTO account_ids, balances
    FROM accounts a WHERE a.id = ANY (p_from_ids) OR a.id = ANY (to_ids);

  -- Funds, as if the items ran one after another.
  from_afters := array_fill(NULL::numeric, ARRAY[item_count]);
  to_afters := from_afters;
  helds := from_afters;
  FOR i IN 1 .. item_count LOOP
    CONTINUE WHEN problems[i] IS NOT NULL;
    from_pos := array_position(account_ids, p_from_ids[i]);
    to_pos := array_position(account_ids, to_ids[i]);
    ASSERT from_pos IS NOT NULL AND to_pos IS NOT NULL, 'a checked item names accounts that were read';
    IF balances[from_pos] < p_amounts[i] THEN
      problems[i] := 'insufficient_funds';
      helds[i] := balances[from_pos];
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
                       ELSE format('account %s holds %s %s', t.from_number, t.held::numeric(20, 2), t.currency) END)
         END ORDER BY t.ord)
    INTO results
    FROM unnest(problems, p_to_numbers, from_numbers, from_statuses, to_statuses, currencies, to_currencies, helds)
         WITH ORDINALITY AS t(problem, to_number, from_number, from_status, to_status, currency, to_currency, held, ord);
  RETURN results;
END
$$;
