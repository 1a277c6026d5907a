-- The one home of interbank_settle(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

-- Phase two at this bank (docs/consortium.md, step 6): applies the switch's
-- decision to the payment `p_e2e_id`, once. Committed: an outgoing payment's
-- hold posts (the payer debited, the settlement account credited), an
-- incoming one's pending credit posts (the settlement account debited, the
-- payee credited), whatever the account's status now: the bank promised when
-- it voted. Aborted: the hold is released, the pending credit dropped. A
-- repeat of the same decision answers the payment unchanged; the opposite
-- decision on a decided payment is an error no switch may cause. NULL when
-- this bank never heard of the payment (a payee the switch never reached).
-- Runs at READ COMMITTED: every row it reads is locked first (the customer
-- account, then a shard of the settlement account, then the payment), so
-- waiting on a lock never aborts.
-- The three-argument form draws the settlement shard; the four-argument one
-- posts against `p_shard` (interbank_settle_many locks its accounts, then one
-- shard, then calls it per payment with that shard).
CREATE OR REPLACE FUNCTION public.interbank_settle(p_e2e_id text, p_status text, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
BEGIN
  RETURN interbank_settle(p_e2e_id, p_status, p_reason, floor(random() * vault_shard_count())::int);
END
$function$
;

CREATE OR REPLACE FUNCTION public.interbank_settle(p_e2e_id text, p_status text, p_reason text, p_shard integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
  pay record;
  acc record;
  stl record;
  new_transfer_id uuid := uuid_v7();
  moved_at timestamptz := clock_timestamp();
  account_after numeric(20, 2);
  settlement_after numeric(20, 2);
BEGIN
  IF p_status IS NULL OR p_status NOT IN ('committed', 'aborted') THEN
    RAISE EXCEPTION 'a decision is committed or aborted, not %', p_status;
  END IF;
  SELECT ip.account_id, ip.currency INTO pay FROM interbank_payments ip WHERE ip.e2e_id = p_e2e_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT a.id, a.number, a.currency INTO acc FROM accounts a WHERE a.id = pay.account_id FOR UPDATE;
  -- Any shard will do (sql/V18).
  SELECT a.id INTO stl FROM accounts a
   WHERE a.kind = 'settlement' AND a.currency = pay.currency AND a.vault_shard = p_shard FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no % settlement account', pay.currency;
  END IF;
  SELECT ip.* INTO pay FROM interbank_payments ip WHERE ip.e2e_id = p_e2e_id FOR UPDATE;

  IF pay.status IN ('committed', 'aborted') THEN
    IF pay.status <> p_status THEN
      RAISE EXCEPTION 'payment % was % here; the switch now says %', p_e2e_id, pay.status, p_status;
    END IF;
    RETURN to_jsonb(pay);
  END IF;

  IF p_status = 'aborted' THEN
    IF pay.direction = 'out' THEN
      PERFORM void_hold(p_e2e_id);
      -- Nobody waits on this payment's answer (a standing order's run, an approved review): its payer is told.
      IF pay.idempotency_key LIKE 'standing-order:%' OR pay.idempotency_key LIKE 'review:%' THEN
        PERFORM notify_user(pay.created_by, 'interbank.aborted', false,
                            jsonb_build_object('payment_id', pay.id, 'amount', pay.amount::text, 'currency', pay.currency,
                                               'reason', coalesce(p_reason, 'aborted'), 'to', pay.key_type || ' key'));
      END IF;
    END IF;
    UPDATE interbank_payments SET status = 'aborted', reason = coalesce(p_reason, 'aborted'), decided_at = moved_at
     WHERE id = pay.id RETURNING * INTO pay;
    RETURN to_jsonb(pay);
  END IF;

  IF pay.direction = 'out' THEN
    -- The hold becomes the debit: balance and held drop together, so the available balance does not move again.
    UPDATE holds SET status = 'posted', decided_at = moved_at WHERE reference = p_e2e_id AND status = 'active';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'payment % has no active hold to post', p_e2e_id;
    END IF;
    UPDATE accounts SET balance = balance - pay.amount, held = held - pay.amount WHERE id = acc.id RETURNING balance INTO account_after;
    UPDATE accounts SET balance = balance + pay.amount WHERE id = stl.id RETURNING balance INTO settlement_after;
  ELSE
    UPDATE accounts SET balance = balance + pay.amount WHERE id = acc.id RETURNING balance INTO account_after;
    UPDATE accounts SET balance = balance - pay.amount WHERE id = stl.id RETURNING balance INTO settlement_after;
  END IF;

  INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, created_by, created_at)
  VALUES (new_transfer_id, 'interbank',
          CASE WHEN pay.direction = 'out' THEN acc.id ELSE stl.id END,
          CASE WHEN pay.direction = 'out' THEN stl.id ELSE acc.id END,
          pay.amount, pay.currency, pay.memo, coalesce(pay.created_by, '00000000-0000-0000-0000-000000000000'::uuid), moved_at);
  INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
  VALUES
    (uuid_v7(), new_transfer_id, acc.id,
     CASE WHEN pay.direction = 'out' THEN 'interbank_out' ELSE 'interbank_in' END,
     CASE WHEN pay.direction = 'out' THEN -pay.amount ELSE pay.amount END,
     account_after, stl.id, pay.memo, moved_at),
    (uuid_v7(), new_transfer_id, stl.id, 'settlement',
     CASE WHEN pay.direction = 'out' THEN pay.amount ELSE -pay.amount END,
     settlement_after, acc.id, pay.memo, moved_at);
  INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
  VALUES (pay.created_by, CASE WHEN pay.direction = 'out' THEN 'customer' ELSE 'switch' END, NULL,
          'money.interbank_' || pay.direction, 'transfer:' || new_transfer_id, NULL, NULL, 'success',
          jsonb_build_object('e2e_id', p_e2e_id, 'amount', pay.amount::text, 'currency', pay.currency,
                             'account', acc.number, 'counterparty_bank', pay.counterparty_bank_id));
  UPDATE interbank_payments SET status = 'committed', decided_at = moved_at, transfer_id = new_transfer_id, balance_after = account_after
   WHERE id = pay.id RETURNING * INTO pay;
  RETURN to_jsonb(pay);
END
$function$
;
