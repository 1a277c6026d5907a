-- Money movement in one round trip: the server sends a single prepared
-- `SELECT move_money(...)` (or move_money_batch) and the connection's
-- default_transaction_isolation = serializable makes it one SERIALIZABLE
-- transaction. Everything a movement needs happens here: the idempotency
-- check, authorization against the caller's scope, row locks in account-id
-- order (so two opposite transfers cannot deadlock), both balance updates,
-- the transfer, its two entries, the audit row and the stored response.
--
-- Business errors are raised with SQLSTATE FB000; MESSAGE is the contract's
-- problem `code`, DETAIL a sentence for humans. The whole transaction aborts,
-- so a refused movement changes nothing.

CREATE FUNCTION fb_fail(code text, detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'FB000', MESSAGE = code, DETAIL = detail;
END
$$;

-- Resolve, authorize, lock and apply one movement. Returns the Transfer body
-- as the caller sees it (balance_after of the caller's account).
--   p_scope_owner:  customer calls: the caller must own p_account_id.
--   p_scope_branch: branch-admin calls: p_account_id must be in this branch.
--   p_item_index:   position in a batch, for error details (NULL: single).
-- Few statements on purpose (each costs the database CPU on the hot path):
-- one locks both accounts (and says whether the caller owns theirs), one
-- updates both balances, one writes the transfer, its entries and the audit row.
CREATE FUNCTION apply_movement(
    p_actor_id uuid, p_actor_role text, p_scope_owner uuid, p_scope_branch uuid,
    p_kind text, p_account_id uuid, p_to_number text, p_amount numeric, p_memo text,
    p_batch_id uuid, p_item_index int, p_request_id text, p_client_addr text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  item_prefix text := CASE WHEN p_item_index IS NULL THEN '' ELSE format('item %s: ', p_item_index) END;
  own record;                  -- the caller's account (p_account_id)
  other record;                -- the counterparty: vault or destination
  locked record;
  owned boolean := false;
  own_found boolean := false;
  other_found boolean := false;
  from_acc record;
  to_acc record;
  new_transfer_id uuid := uuid_v7();
  moved_at timestamptz := clock_timestamp();
  from_balance_after numeric(20, 2);
  to_balance_after numeric(20, 2);
  memo_text text := coalesce(p_memo, '');
  chosen_shard int;
  updated record;
BEGIN
  IF p_amount IS NULL OR p_amount <= 0 OR p_amount > 1000000000000 OR scale(p_amount) > 2 THEN
    PERFORM fb_fail('validation_failed', item_prefix || 'amount must be > 0, at most 1000000000000, with at most 2 decimals');
  END IF;

  -- Lock the caller's account and (for a transfer) the destination, in id
  -- order so that opposite transfers cannot deadlock.
  FOR locked IN
    SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.status,
           (p_scope_owner IS NOT NULL AND a.id = p_account_id AND EXISTS
              (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = p_scope_owner)) AS owned_by_caller
      FROM accounts a
     WHERE a.id = p_account_id OR (p_kind = 'transfer' AND a.number = p_to_number)
     ORDER BY a.id
       FOR UPDATE
  LOOP
    IF locked.id = p_account_id THEN
      own := locked;
      own_found := true;
      owned := locked.owned_by_caller;
    ELSE
      other := locked;
      other_found := true;
    END IF;
  END LOOP;

  IF NOT own_found OR own.kind = 'vault'
     OR (p_scope_owner IS NOT NULL AND NOT owned)
     OR (p_scope_branch IS NOT NULL AND own.branch_id <> p_scope_branch) THEN
    PERFORM fb_fail('not_found', item_prefix || 'no such account');
  END IF;

  IF p_kind = 'transfer' THEN
    IF own.number = p_to_number THEN
      PERFORM fb_fail('same_account', item_prefix || 'cannot transfer an account to itself');
    END IF;
    IF NOT other_found OR other.kind = 'vault' THEN
      PERFORM fb_fail('not_found', item_prefix || 'no account with number ' || coalesce(p_to_number, 'null'));
    END IF;
  ELSE
    -- Any shard of the vault will do; a random one spreads the contention.
    -- (Drawn once: random() in the WHERE clause would be drawn per row.) The
    -- vault is always locked after a customer account, never before, so
    -- this order cannot deadlock either.
    chosen_shard := floor(random() * vault_shard_count())::int;
    SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.status INTO other
      FROM accounts a
     WHERE a.branch_id = own.branch_id AND a.currency = own.currency AND a.kind = 'vault'
       AND a.vault_shard = chosen_shard
       FOR UPDATE;
    IF NOT FOUND THEN
      -- A branch gets its vault when it opens its first account in a currency.
      RAISE EXCEPTION 'branch % has no % vault', own.branch_id, own.currency;
    END IF;
  END IF;

  IF own.status <> 'active' THEN
    PERFORM fb_fail('account_inactive', item_prefix || format('account %s is %s', own.number, own.status));
  END IF;
  IF other.status <> 'active' THEN
    PERFORM fb_fail('account_inactive', item_prefix || format('account %s is %s', other.number, other.status));
  END IF;
  IF own.currency <> other.currency THEN
    PERFORM fb_fail('currency_mismatch', item_prefix || format('%s account cannot pay a %s account', own.currency, other.currency));
  END IF;

  IF p_kind = 'deposit' THEN
    from_acc := other; to_acc := own;
  ELSE
    from_acc := own; to_acc := other;
  END IF;

  IF from_acc.kind <> 'vault' AND from_acc.balance < p_amount THEN
    PERFORM fb_fail('insufficient_funds', item_prefix || format('account %s holds %s %s', from_acc.number, from_acc.balance, from_acc.currency));
  END IF;

  FOR updated IN
    UPDATE accounts
       SET balance = balance + CASE WHEN id = to_acc.id THEN p_amount ELSE -p_amount END
     WHERE id IN (from_acc.id, to_acc.id)
    RETURNING id, balance
  LOOP
    IF updated.id = from_acc.id THEN from_balance_after := updated.balance; ELSE to_balance_after := updated.balance; END IF;
  END LOOP;

  WITH new_transfer AS (
    INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, batch_id, created_by, created_at)
    VALUES (new_transfer_id, p_kind, from_acc.id, to_acc.id, p_amount, own.currency, memo_text, p_batch_id, p_actor_id, moved_at)
  ), new_entries AS (
    INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
    VALUES
      (uuid_v7(), new_transfer_id, from_acc.id,
       CASE p_kind WHEN 'transfer' THEN 'transfer_out' ELSE p_kind END,
       -p_amount, from_balance_after, to_acc.id, memo_text, moved_at),
      (uuid_v7(), new_transfer_id, to_acc.id,
       CASE p_kind WHEN 'transfer' THEN 'transfer_in' ELSE p_kind END,
       p_amount, to_balance_after, from_acc.id, memo_text, moved_at)
  )
  INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
  VALUES (p_actor_id, p_actor_role, own.branch_id, 'money.' || p_kind, 'transfer:' || new_transfer_id,
          p_request_id, p_client_addr, 'success',
          jsonb_build_object('amount', p_amount::text, 'currency', own.currency,
                             'from', from_acc.number, 'to', to_acc.number, 'batch_id', p_batch_id));

  RETURN jsonb_build_object(
    'id', new_transfer_id,
    'kind', p_kind,
    'from_account_id', from_acc.id,
    'to_account_id', to_acc.id,
    'amount', p_amount::numeric(20, 2)::text,
    'currency', own.currency,
    'memo', memo_text,
    'status', 'committed',
    'created_at', rfc3339(moved_at),
    'balance_after', (CASE WHEN p_kind = 'deposit' THEN to_balance_after ELSE from_balance_after END)::text);
END
$$;

-- Returns {"replayed": bool, "status": int, "body": jsonb}. A live key with a
-- different request hash is refused; an expired one is replaced.
CREATE FUNCTION idempotency_lookup(p_user_id uuid, p_key text, p_request_hash bytea) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  k idempotency_keys%ROWTYPE;
BEGIN
  SELECT * INTO k FROM idempotency_keys WHERE key_hash = idempotency_key_hash(p_user_id, p_key);
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF k.created_at < now() - interval '24 hours' THEN
    DELETE FROM idempotency_keys WHERE key_hash = k.key_hash;
    RETURN NULL;
  END IF;
  IF k.request_hash <> p_request_hash THEN
    PERFORM fb_fail('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
  END IF;
  RETURN jsonb_build_object('replayed', true, 'status', k.response_status, 'body', k.response_body);
END
$$;

-- The idempotency check is not in here: the server pipelines
-- `SELECT idempotency_lookup(...)` in front of this statement on the same
-- connection. Reading the key inside this SERIALIZABLE transaction would
-- predicate-lock an index page that concurrent movements insert into, and
-- make them abort each other. The INSERT at the end still guards the key:
-- if it exists, this raises `idempotency_conflict` and nothing moves.
CREATE FUNCTION store_idempotent_response(p_actor_id uuid, p_key text, p_request_hash bytea, p_body jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
  VALUES (idempotency_key_hash(p_actor_id, p_key), p_actor_id, p_key, p_request_hash, 201, p_body)
  ON CONFLICT (key_hash) DO NOTHING;
  IF NOT FOUND THEN
    PERFORM fb_fail('idempotency_conflict', 'this Idempotency-Key was used already');
  END IF;
END
$$;

CREATE FUNCTION move_money(
    p_actor_id uuid, p_actor_role text, p_scope_owner uuid, p_scope_branch uuid,
    p_idempotency_key text, p_request_hash bytea,
    p_kind text, p_account_id uuid, p_to_number text, p_amount numeric, p_memo text,
    p_request_id text, p_client_addr text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  body jsonb;
BEGIN
  IF p_kind NOT IN ('deposit', 'withdrawal', 'transfer') THEN
    RAISE EXCEPTION 'unknown movement kind %', p_kind;
  END IF;
  body := apply_movement(p_actor_id, p_actor_role, p_scope_owner, p_scope_branch,
                         p_kind, p_account_id, p_to_number, p_amount, p_memo,
                         NULL, NULL, p_request_id, p_client_addr);
  PERFORM store_idempotent_response(p_actor_id, p_idempotency_key, p_request_hash, body);
  RETURN jsonb_build_object('replayed', false, 'status', 201, 'body', body);
END
$$;

-- All or nothing: any failing item aborts the whole transaction, and the
-- error's detail names that item's index.
-- p_items: [{"from_account_id","to_account_number","amount","memo"}], at most 1000.
CREATE FUNCTION move_money_batch(
    p_actor_id uuid, p_actor_role text, p_scope_owner uuid,
    p_idempotency_key text, p_request_hash bytea, p_items jsonb,
    p_request_id text, p_client_addr text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  batch_id uuid := uuid_v7();
  moved_at timestamptz := clock_timestamp();
  failure record;
  bodies jsonb;
  body jsonb;
BEGIN
  IF jsonb_typeof(p_items) <> 'array' OR jsonb_array_length(p_items) NOT BETWEEN 1 AND 1000 THEN
    PERFORM fb_fail('validation_failed', 'items must hold 1 to 1000 transfers');
  END IF;
  -- Take every row lock up front in id order, so that concurrent batches
  -- touching the same accounts wait for each other instead of deadlocking.
  PERFORM 1 FROM accounts a
   WHERE a.id IN (SELECT (i ->> 'from_account_id')::uuid FROM jsonb_array_elements(p_items) i)
      OR a.number IN (SELECT i ->> 'to_account_number' FROM jsonb_array_elements(p_items) i)
   ORDER BY a.id FOR UPDATE;

  -- Set-based, as if the items ran one after another: each item's checks,
  -- and each account's running balance item by item; the first item that
  -- fails (by index) fails the batch, and nothing is applied.
  -- A per-session scratch table (temporary tables take no predicate locks).
  IF to_regclass('pg_temp.batch_items') IS NULL THEN
  CREATE TEMP TABLE batch_items (
      idx int, from_id uuid, to_number text, amount numeric, memo text,
      transfer_id uuid, to_id uuid, currency text, from_number text, branch_id uuid, problem text,
      from_after numeric(20, 2), to_after numeric(20, 2)
  ) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.batch_items;

  INSERT INTO pg_temp.batch_items (idx, from_id, to_number, amount, memo, transfer_id, to_id, currency, from_number, branch_id, problem)
  SELECT (t.ord - 1)::int, (t.i ->> 'from_account_id')::uuid, t.i ->> 'to_account_number',
         (t.i ->> 'amount')::numeric, coalesce(t.i ->> 'memo', ''), uuid_v7(), d.id, f.currency, f.number, f.branch_id,
         CASE
           WHEN (t.i ->> 'amount')::numeric <= 0 OR (t.i ->> 'amount')::numeric > 1000000000000
                OR scale((t.i ->> 'amount')::numeric) > 2 THEN 'validation_failed'
           WHEN f.id IS NULL OR f.kind = 'vault' OR (p_scope_owner IS NOT NULL AND NOT EXISTS
                  (SELECT 1 FROM account_owners o WHERE o.account_id = f.id AND o.user_id = p_scope_owner)) THEN 'no_from'
           WHEN f.number = t.i ->> 'to_account_number' THEN 'same_account'
           WHEN d.id IS NULL OR d.kind = 'vault' THEN 'no_to'
           WHEN f.status <> 'active' THEN 'from_inactive'
           WHEN d.status <> 'active' THEN 'to_inactive'
           WHEN f.currency <> d.currency THEN 'currency_mismatch'
         END
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(i, ord)
    LEFT JOIN accounts f ON f.id = (t.i ->> 'from_account_id')::uuid
    LEFT JOIN accounts d ON d.number = t.i ->> 'to_account_number';

  -- Running balances (before any update), per account in item order.
  WITH moves AS (
      SELECT idx, from_id AS account_id, -amount AS delta, 0 AS side FROM pg_temp.batch_items WHERE problem IS NULL
      UNION ALL
      SELECT idx, to_id, amount, 1 FROM pg_temp.batch_items WHERE problem IS NULL
  ), running AS (
      SELECT m.idx, m.side, a.kind,
             a.balance + sum(m.delta) OVER (PARTITION BY m.account_id ORDER BY m.idx, m.side ROWS UNBOUNDED PRECEDING) AS after
        FROM moves m JOIN accounts a ON a.id = m.account_id
  )
  UPDATE pg_temp.batch_items b
     SET from_after = (SELECT r.after FROM running r WHERE r.idx = b.idx AND r.side = 0),
         to_after = (SELECT r.after FROM running r WHERE r.idx = b.idx AND r.side = 1);

  SELECT idx, coalesce(problem, 'insufficient_funds') AS problem, from_number, to_number, currency, from_after + amount AS held
    INTO failure
    FROM pg_temp.batch_items
   WHERE problem IS NOT NULL OR from_after < 0
   ORDER BY idx LIMIT 1;
  IF FOUND THEN
    CASE failure.problem
      WHEN 'validation_failed' THEN PERFORM fb_fail('validation_failed', format('item %s: amount must be > 0, at most 1000000000000, with at most 2 decimals', failure.idx));
      WHEN 'no_from' THEN PERFORM fb_fail('not_found', format('item %s: no such account', failure.idx));
      WHEN 'same_account' THEN PERFORM fb_fail('same_account', format('item %s: cannot transfer an account to itself', failure.idx));
      WHEN 'no_to' THEN PERFORM fb_fail('not_found', format('item %s: no account with number %s', failure.idx, coalesce(failure.to_number, 'null')));
      WHEN 'from_inactive' THEN PERFORM fb_fail('account_inactive', format('item %s: account %s is not active', failure.idx, failure.from_number));
      WHEN 'to_inactive' THEN PERFORM fb_fail('account_inactive', format('item %s: account %s is not active', failure.idx, failure.to_number));
      WHEN 'currency_mismatch' THEN PERFORM fb_fail('currency_mismatch', format('item %s: accounts in different currencies', failure.idx));
      ELSE PERFORM fb_fail('insufficient_funds', format('item %s: account %s holds %s %s', failure.idx, failure.from_number, failure.held, failure.currency));
    END CASE;
  END IF;

  -- Apply: both sides of every item at once; the rows, entries and audit
  -- trail as the single-transfer path writes them.
  WITH net AS (
      SELECT account_id, sum(delta) AS delta FROM (
          SELECT from_id AS account_id, -amount AS delta FROM pg_temp.batch_items
          UNION ALL SELECT to_id, amount FROM pg_temp.batch_items) m
       GROUP BY account_id
  ), balances AS (
      UPDATE accounts a SET balance = a.balance + net.delta FROM net WHERE a.id = net.account_id
  ), new_transfers AS (
      INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, batch_id, created_by, created_at)
      SELECT transfer_id, 'transfer', from_id, to_id, amount, currency, memo, batch_id, p_actor_id,
             moved_at + make_interval(secs => idx / 1000000.0)
        FROM pg_temp.batch_items
  ), new_entries AS (
      INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
      SELECT uuid_v7(), transfer_id, from_id, 'transfer_out', -amount, from_after, to_id, memo, moved_at + make_interval(secs => idx / 1000000.0)
        FROM pg_temp.batch_items
      UNION ALL
      SELECT uuid_v7(), transfer_id, to_id, 'transfer_in', amount, to_after, from_id, memo, moved_at + make_interval(secs => idx / 1000000.0)
        FROM pg_temp.batch_items
  ), new_audit AS (
      INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
      SELECT p_actor_id, p_actor_role, branch_id, 'money.transfer', 'transfer:' || transfer_id, p_request_id, p_client_addr, 'success',
             jsonb_build_object('amount', amount::text, 'currency', currency, 'from', from_number, 'to', to_number, 'batch_id', batch_id)
        FROM pg_temp.batch_items
  )
  SELECT jsonb_agg(jsonb_build_object(
           'id', transfer_id, 'kind', 'transfer', 'from_account_id', from_id, 'to_account_id', to_id,
           'amount', amount::numeric(20, 2)::text, 'currency', currency, 'memo', memo, 'status', 'committed',
           'created_at', rfc3339(moved_at + make_interval(secs => idx / 1000000.0)),
           'balance_after', from_after::text) ORDER BY idx)
    INTO bodies
    FROM pg_temp.batch_items;

  body := jsonb_build_object('transfers', bodies);
  PERFORM store_idempotent_response(p_actor_id, p_idempotency_key, p_request_hash, body);
  RETURN jsonb_build_object('replayed', false, 'status', 201, 'body', body);
END
$$;
