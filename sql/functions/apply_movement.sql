-- The one home of apply_movement(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.apply_movement(p_actor_id uuid, p_actor_role text, p_scope_owner uuid, p_scope_branch uuid, p_kind text, p_account_id uuid, p_to_number text, p_amount numeric, p_memo text, p_batch_id uuid, p_item_index integer, p_request_id text, p_client_addr text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
    SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.held, a.status,
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

  -- Apart: SQL does not promise to evaluate OR left to right, and reading a
  -- field of an unassigned record is an error.
  IF NOT own_found THEN
    PERFORM fb_fail('not_found', item_prefix || 'no such account');
  END IF;
  IF own.kind IN ('vault', 'settlement', 'fx')
     OR (p_scope_owner IS NOT NULL AND NOT owned)
     OR (p_scope_branch IS NOT NULL AND own.branch_id <> p_scope_branch) THEN
    PERFORM fb_fail('not_found', item_prefix || 'no such account');
  END IF;

  IF p_kind = 'transfer' THEN
    IF own.number = p_to_number THEN
      PERFORM fb_fail('same_account', item_prefix || 'cannot transfer an account to itself');
    END IF;
    IF NOT other_found THEN
      PERFORM fb_fail('not_found', item_prefix || 'no account with number ' || coalesce(p_to_number, 'null'));
    END IF;
    IF other.kind IN ('vault', 'settlement', 'fx') THEN
      PERFORM fb_fail('not_found', item_prefix || 'no account with number ' || coalesce(p_to_number, 'null'));
    END IF;
  ELSE
    -- Any shard of the vault will do; a random one spreads the contention.
    -- (Drawn once: random() in the WHERE clause would be drawn per row.) The
    -- vault is always locked after a customer account, never before, so
    -- this order cannot deadlock either.
    chosen_shard := floor(random() * vault_shard_count())::int;
    SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.held, a.status INTO other
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

  -- Held money (sql/V16) is not there to spend.
  IF from_acc.kind <> 'vault' AND from_acc.balance - from_acc.held < p_amount THEN
    PERFORM fb_fail('insufficient_funds', item_prefix || format('account %s holds %s %s', from_acc.number, from_acc.balance, from_acc.currency)
                                          || CASE WHEN from_acc.held > 0 THEN format(', %s of it on hold', from_acc.held) ELSE '' END);
  END IF;

  FOR updated IN
    UPDATE accounts
       SET balance = balance + CASE WHEN id = to_acc.id THEN p_amount ELSE -p_amount END,
           -- What leaves a customer's account counts against its daily limit (count_daily_limit()).
           limit_used = limit_used + CASE WHEN id = from_acc.id AND from_acc.kind NOT IN ('vault', 'settlement', 'fx') THEN p_amount ELSE 0 END
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
$function$
;
