-- The one home of fx_transfer(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.fx_transfer(p_actor_id uuid, p_quote_id uuid, p_from_account_id uuid, p_to_number text, p_amount numeric, p_memo text, p_request_id text, p_client_addr text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
  q record;
  acc record;
  from_acc record;
  to_acc record;
  fx record;
  fx_from_id uuid;
  fx_to_id uuid;
  leg_out uuid := uuid_v7();
  leg_in uuid := uuid_v7();
  moved_at timestamptz := clock_timestamp();
  from_after numeric(20, 2);
  to_after numeric(20, 2);
  fx_from_after numeric(20, 2);
  fx_to_after numeric(20, 2);
  memo_text text := coalesce(p_memo, '');
BEGIN
  SELECT * INTO q FROM fx_quotes WHERE id = p_quote_id AND user_id = p_actor_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM fb_fail('not_found', 'no such quote');
  END IF;
  IF q.used_by IS NOT NULL THEN
    PERFORM fb_fail('quote_used', 'this quote was used already; ask for a new one');
  END IF;
  IF q.expires_at <= now() THEN
    PERFORM fb_fail('quote_expired', format('this quote expired at %s; ask for a new one', rfc3339(q.expires_at)));
  END IF;
  IF q.from_account_id <> p_from_account_id OR q.from_amount <> p_amount THEN
    PERFORM fb_fail('validation_failed', 'from_account_id and amount must be the quote''s');
  END IF;

  -- The customer accounts in id order, then the FX positions in id order: no deadlock with any other path.
  FOR acc IN
    SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.held, a.status,
           EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = p_actor_id) AS owned
      FROM accounts a WHERE a.id IN (q.from_account_id, q.to_account_id) ORDER BY a.id FOR UPDATE
  LOOP
    IF acc.id = q.from_account_id THEN from_acc := acc; ELSE to_acc := acc; END IF;
  END LOOP;
  IF NOT from_acc.owned THEN
    PERFORM fb_fail('not_found', 'no such account');
  END IF;
  IF to_acc.number <> p_to_number THEN
    PERFORM fb_fail('validation_failed', 'to_account_number must be the quote''s');
  END IF;
  IF from_acc.status <> 'active' THEN
    PERFORM fb_fail('account_inactive', format('account %s is %s', from_acc.number, from_acc.status));
  END IF;
  IF to_acc.status <> 'active' THEN
    PERFORM fb_fail('account_inactive', format('account %s is %s', to_acc.number, to_acc.status));
  END IF;
  IF from_acc.balance - from_acc.held < p_amount THEN
    PERFORM fb_fail('insufficient_funds', format('account %s has %s %s available', from_acc.number,
                                                 (from_acc.balance - from_acc.held)::numeric(20, 2), from_acc.currency));
  END IF;

  INSERT INTO accounts (branch_id, kind, currency)
  VALUES (from_acc.branch_id, 'fx', q.from_currency), (from_acc.branch_id, 'fx', q.to_currency)
  ON CONFLICT (branch_id, currency) WHERE kind = 'fx' DO NOTHING;
  FOR fx IN
    SELECT a.id, a.currency FROM accounts a
     WHERE a.branch_id = from_acc.branch_id AND a.kind = 'fx' AND a.currency IN (q.from_currency, q.to_currency)
     ORDER BY a.id FOR UPDATE
  LOOP
    IF fx.currency = q.from_currency THEN fx_from_id := fx.id; ELSE fx_to_id := fx.id; END IF;
  END LOOP;

  -- What leaves the customer's account counts against its daily limit (count_daily_limit()).
  UPDATE accounts SET balance = balance - q.from_amount, limit_used = limit_used + q.from_amount
   WHERE id = from_acc.id RETURNING balance INTO from_after;
  UPDATE accounts SET balance = balance + q.from_amount WHERE id = fx_from_id RETURNING balance INTO fx_from_after;
  UPDATE accounts SET balance = balance - q.to_amount WHERE id = fx_to_id RETURNING balance INTO fx_to_after;
  UPDATE accounts SET balance = balance + q.to_amount WHERE id = to_acc.id RETURNING balance INTO to_after;

  INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, created_by, created_at)
  VALUES (leg_out, 'fx', from_acc.id, fx_from_id, q.from_amount, q.from_currency, memo_text, p_actor_id, moved_at),
         (leg_in, 'fx', fx_to_id, to_acc.id, q.to_amount, q.to_currency, memo_text, p_actor_id, moved_at);
  INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
  VALUES (uuid_v7(), leg_out, from_acc.id, 'fx_out', -q.from_amount, from_after, fx_from_id, memo_text, moved_at),
         (uuid_v7(), leg_out, fx_from_id, 'fx_position', q.from_amount, fx_from_after, from_acc.id, memo_text, moved_at),
         (uuid_v7(), leg_in, fx_to_id, 'fx_position', -q.to_amount, fx_to_after, to_acc.id, memo_text, moved_at),
         (uuid_v7(), leg_in, to_acc.id, 'fx_in', q.to_amount, to_after, fx_to_id, memo_text, moved_at);
  UPDATE fx_quotes SET used_by = leg_out WHERE id = q.id;
  INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
  VALUES (p_actor_id, 'customer', from_acc.branch_id, 'money.fx', 'transfer:' || leg_out, p_request_id, p_client_addr, 'success',
          jsonb_build_object('quote_id', q.id, 'from', from_acc.number, 'to', to_acc.number, 'amount', q.from_amount::text,
                             'currency', q.from_currency, 'to_amount', q.to_amount::text, 'to_currency', q.to_currency,
                             'rate', q.rate::text, 'leg_in', leg_in));
  RETURN jsonb_build_object(
    'id', leg_out, 'kind', 'fx', 'from_account_id', from_acc.id, 'to_account_id', to_acc.id,
    'amount', q.from_amount::text, 'currency', q.from_currency, 'memo', memo_text, 'status', 'committed',
    'created_at', rfc3339(moved_at), 'balance_after', from_after::text,
    'to_amount', q.to_amount::text, 'to_currency', q.to_currency, 'rate', q.rate::text, 'quote_id', q.id);
END
$function$
;
