-- Group commit (issue 7): concurrent customer transfers from different
-- requests applied in one SERIALIZABLE transaction, each on its own terms.
--
-- Under load most of a movement's cost was per transaction, not per row:
-- the WAL flush and the wait for the synchronous replica (sampled
-- pg_stat_activity: of ~12 busy backends, ~6 waited on WALWrite and ~3 on
-- SyncRep), the round trip, the plpgsql set-up. The server queues customer
-- transfers that arrive while earlier ones are in the database and sends
-- them here together.
--
-- Every item is still all or nothing and keeps every guarantee of the single
-- path (move_money): the owner check, statuses, currencies, funds as if the
-- items ran one after another in array order, its own transfer row, two
-- entries, audit row and stored idempotent response. An item that breaks a
-- business rule is refused on its own (its code and detail returned, as
-- move_money would raise them) and the others still commit; nothing of it
-- is written. Anything else (a key that exists, a constraint) raises and
-- rolls back the whole group, and the server then runs those requests one by
-- one through move_money, so a request never fails because of another's.
--
-- Returns a JSON array in item order: {"ok": true, "body": Transfer} or
-- {"ok": false, "code": problem code, "detail": text}.
CREATE FUNCTION move_money_group(
    p_actor_ids uuid[], p_actor_roles text[], p_keys text[], p_request_hashes bytea[],
    p_from_ids uuid[], p_to_numbers text[], p_amounts numeric[], p_memos text[],
    p_request_ids text[], p_client_addrs text[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  moved_at timestamptz := clock_timestamp();
  item_count int := cardinality(p_actor_ids);
  short_idx int;
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

  -- A per-session scratch table (temporary tables take no predicate locks).
  IF to_regclass('pg_temp.group_items') IS NULL THEN
    CREATE TEMP TABLE group_items (
        idx int, actor_id uuid, actor_role text, key text, request_hash bytea,
        from_id uuid, to_number text, amount numeric, memo text, request_id text, client_addr text,
        transfer_id uuid, to_id uuid, currency text, to_currency text, from_number text, branch_id uuid,
        from_status text, to_status text, problem text, held numeric(20, 2),
        from_after numeric(20, 2), to_after numeric(20, 2), body jsonb
    ) ON COMMIT DELETE ROWS;
  END IF;

  -- The checks of apply_movement, in its order, for every item at once.
  INSERT INTO pg_temp.group_items (idx, actor_id, actor_role, key, request_hash, from_id, to_number, amount, memo,
                                   request_id, client_addr, transfer_id, to_id, currency, to_currency, from_number,
                                   branch_id, from_status, to_status, problem)
  SELECT (t.ord - 1)::int, t.actor_id, t.actor_role, t.key, t.request_hash, t.from_id, t.to_number, t.amount,
         coalesce(t.memo, ''), t.request_id, t.client_addr, uuid_v7(), d.id, f.currency, d.currency, f.number,
         f.branch_id, f.status, d.status,
         CASE
           WHEN t.amount IS NULL OR t.amount <= 0 OR t.amount > 1000000000000 OR scale(t.amount) > 2 THEN 'validation_failed'
           WHEN f.id IS NULL OR f.kind = 'vault' OR NOT EXISTS
                  (SELECT 1 FROM account_owners o WHERE o.account_id = f.id AND o.user_id = t.actor_id) THEN 'no_from'
           WHEN f.number = t.to_number THEN 'same_account'
           WHEN d.id IS NULL OR d.kind = 'vault' THEN 'no_to'
           WHEN f.status <> 'active' THEN 'from_inactive'
           WHEN d.status <> 'active' THEN 'to_inactive'
           WHEN f.currency <> d.currency THEN 'currency_mismatch'
         END
    FROM unnest(p_actor_ids, p_actor_roles, p_keys, p_request_hashes, p_from_ids, p_to_numbers, p_amounts, p_memos,
                p_request_ids, p_client_addrs)
         WITH ORDINALITY AS t(actor_id, actor_role, key, request_hash, from_id, to_number, amount, memo, request_id, client_addr, ord)
    LEFT JOIN accounts f ON f.id = t.from_id
    LEFT JOIN accounts d ON d.number = t.to_number;

  -- Funds, as if the items ran one after another: running balances of the
  -- items still standing; the first that would overdraw is refused, and the
  -- balances are run again without it (each pass refuses one item).
  LOOP
    WITH moves AS (
        SELECT idx, from_id AS account_id, -amount AS delta, 0 AS side FROM pg_temp.group_items WHERE problem IS NULL
        UNION ALL
        SELECT idx, to_id, amount, 1 FROM pg_temp.group_items WHERE problem IS NULL
    ), running AS (
        SELECT m.idx, m.side,
               a.balance + sum(m.delta) OVER (PARTITION BY m.account_id ORDER BY m.idx, m.side ROWS UNBOUNDED PRECEDING) AS after
          FROM moves m JOIN accounts a ON a.id = m.account_id
    )
    UPDATE pg_temp.group_items g
       SET from_after = (SELECT r.after FROM running r WHERE r.idx = g.idx AND r.side = 0),
           to_after = (SELECT r.after FROM running r WHERE r.idx = g.idx AND r.side = 1)
     WHERE g.problem IS NULL;
    SELECT idx INTO short_idx FROM pg_temp.group_items WHERE problem IS NULL AND from_after < 0 ORDER BY idx LIMIT 1;
    EXIT WHEN NOT FOUND;
    UPDATE pg_temp.group_items SET problem = 'insufficient_funds', held = from_after + amount WHERE idx = short_idx;
  END LOOP;

  UPDATE pg_temp.group_items
     SET body = jsonb_build_object(
           'id', transfer_id, 'kind', 'transfer', 'from_account_id', from_id, 'to_account_id', to_id,
           'amount', amount::numeric(20, 2)::text, 'currency', currency, 'memo', memo, 'status', 'committed',
           'created_at', rfc3339(moved_at + make_interval(secs => idx / 1000000.0)),
           'balance_after', from_after::text)
   WHERE problem IS NULL;

  -- Apply the items standing: the rows each would have written alone.
  WITH ok AS (
      SELECT * FROM pg_temp.group_items WHERE problem IS NULL
  ), net AS (
      SELECT account_id, sum(delta) AS delta FROM (
          SELECT from_id AS account_id, -amount AS delta FROM ok
          UNION ALL SELECT to_id, amount FROM ok) m
       GROUP BY account_id
  ), balances AS (
      UPDATE accounts a SET balance = a.balance + net.delta FROM net WHERE a.id = net.account_id
  ), new_transfers AS (
      INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, batch_id, created_by, created_at)
      SELECT transfer_id, 'transfer', from_id, to_id, amount, currency, memo, NULL, actor_id,
             moved_at + make_interval(secs => idx / 1000000.0)
        FROM ok
  ), new_entries AS (
      INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
      SELECT uuid_v7(), transfer_id, from_id, 'transfer_out', -amount, from_after, to_id, memo, moved_at + make_interval(secs => idx / 1000000.0)
        FROM ok
      UNION ALL
      SELECT uuid_v7(), transfer_id, to_id, 'transfer_in', amount, to_after, from_id, memo, moved_at + make_interval(secs => idx / 1000000.0)
        FROM ok
  ), new_audit AS (
      INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
      SELECT actor_id, actor_role, branch_id, 'money.transfer', 'transfer:' || transfer_id, request_id, client_addr, 'success',
             jsonb_build_object('amount', amount::text, 'currency', currency, 'from', from_number, 'to', to_number, 'batch_id', NULL)
        FROM ok
  )
  INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
  SELECT idempotency_key_hash(actor_id, key), actor_id, key, request_hash, 201, body FROM ok;

  SELECT jsonb_agg(CASE
           WHEN problem IS NULL THEN jsonb_build_object('ok', true, 'body', body)
           ELSE jsonb_build_object('ok', false,
             'code', CASE problem
                       WHEN 'no_from' THEN 'not_found' WHEN 'no_to' THEN 'not_found'
                       WHEN 'from_inactive' THEN 'account_inactive' WHEN 'to_inactive' THEN 'account_inactive'
                       ELSE problem END,
             'detail', CASE problem
                       WHEN 'validation_failed' THEN 'amount must be > 0, at most 1000000000000, with at most 2 decimals'
                       WHEN 'no_from' THEN 'no such account'
                       WHEN 'same_account' THEN 'cannot transfer an account to itself'
                       WHEN 'no_to' THEN 'no account with number ' || coalesce(to_number, 'null')
                       WHEN 'from_inactive' THEN format('account %s is %s', from_number, from_status)
                       WHEN 'to_inactive' THEN format('account %s is %s', to_number, to_status)
                       WHEN 'currency_mismatch' THEN format('%s account cannot pay a %s account', currency, to_currency)
                       ELSE format('account %s holds %s %s', from_number, held, currency) END)
         END ORDER BY idx)
    INTO results
    FROM pg_temp.group_items;
  RETURN results;
END
$$;
