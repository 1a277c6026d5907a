-- The one home of interbank_settle_many(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

-- Phase two for a group of payments in one transaction (server/src/interbank/grouped.rs):
-- each payment as interbank_settle() applies it, in the order given, against one
-- settlement shard. Locks as everywhere: the group's customer accounts (in id
-- order), then the shard, then each payment. Balances move payment by payment
-- (so each entry's balance_after is the running figure) in the loop's own
-- figures; the accounts' balances, the posted holds, the transfers, entries,
-- audit rows and payment updates of the whole group are then one statement
-- each (PostgreSQL prepares a table's CHECK constraints once per statement,
-- and the entries' notification trigger fires once per statement). A payment named twice is applied
-- once. For an outgoing payment the switch's answer also names its payee (the
-- p_payee_* arrays, NULL where it did not): recorded once, the first answer's,
-- in the same write as the decision (a separate UPDATE wrote every payment's
-- row once more: ~3% of a bank's database CPU in the inter-bank shape). One
-- flag per payment: whether this bank knew it. Any error fails the whole
-- group; its payments then settle one by one, so that one payment's error is
-- that payment's alone.
CREATE OR REPLACE FUNCTION public.interbank_settle_many(p_e2e_ids text[], p_statuses text[], p_reasons text[], p_payee_banks text[], p_payee_bank_names text[], p_payee_holders text[], p_payee_accounts text[])
 RETURNS boolean[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  n int := cardinality(p_e2e_ids);
  moved_at timestamptz := clock_timestamp();
  known boolean[] := '{}';
  done_ids text[] := '{}';
  done_statuses text[] := '{}';
  pay record;
  shard int;
  settlement_id uuid;
  settlement_balance numeric(20, 2);
  account_after numeric(20, 2);
  account_number text;
  transfer_id uuid;
  out boolean;
  earlier int;
  i int;
  -- What the loop writes at the end, one statement each.
  t_ids uuid[] := '{}'; t_from uuid[] := '{}'; t_to uuid[] := '{}'; t_amounts numeric[] := '{}';
  t_currencies text[] := '{}'; t_memos text[] := '{}'; t_by uuid[] := '{}';
  e_transfers uuid[] := '{}'; e_accounts uuid[] := '{}'; e_kinds text[] := '{}'; e_amounts numeric[] := '{}';
  e_after numeric[] := '{}'; e_counterparties uuid[] := '{}'; e_memos text[] := '{}';
  a_actors uuid[] := '{}'; a_roles text[] := '{}'; a_actions text[] := '{}'; a_targets text[] := '{}'; a_details jsonb[] := '{}';
  c_payments uuid[] := '{}'; c_transfers uuid[] := '{}'; c_after numeric[] := '{}';
  c_banks text[] := '{}'; c_bank_names text[] := '{}'; c_holders text[] := '{}'; c_accounts text[] := '{}';
  -- Payees named for payments decided before this call: written apart (rare: a repeated answer).
  x_payments uuid[] := '{}'; x_items int[] := '{}';
  posted_holds text[] := '{}';
  -- Per customer account moved: its balance and held amount as the group leaves them.
  m_accounts uuid[] := '{}'; m_balances numeric[] := '{}'; m_held numeric[] := '{}';
  m int;
  account_held numeric(20, 2);
  hold_placed_at timestamptz;
BEGIN
  IF n > 256 OR cardinality(p_statuses) <> n OR cardinality(p_reasons) <> n OR cardinality(p_payee_banks) <> n
     OR cardinality(p_payee_bank_names) <> n OR cardinality(p_payee_holders) <> n OR cardinality(p_payee_accounts) <> n THEN
    RAISE EXCEPTION 'a settlement group is at most 256 payments, with one status, one reason and one payee (or NULLs) each';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_statuses) s WHERE s IS NULL OR s NOT IN ('committed', 'aborted')) THEN
    RAISE EXCEPTION 'a decision is committed or aborted';
  END IF;
  PERFORM 1 FROM accounts a
   WHERE a.id IN (SELECT ip.account_id FROM interbank_payments ip WHERE ip.e2e_id = ANY(p_e2e_ids))
   ORDER BY a.id FOR UPDATE;
  IF 'committed' = ANY(p_statuses) THEN
    IF (SELECT count(DISTINCT ip.currency) FROM interbank_payments ip WHERE ip.e2e_id = ANY(p_e2e_ids)) > 1 THEN
      RAISE EXCEPTION 'a settlement group is in one currency';
    END IF;
    -- Drawn once (in the WHERE clause random() would be drawn per row).
    shard := floor(random() * vault_shard_count())::int;
    SELECT a.id, a.balance INTO settlement_id, settlement_balance FROM accounts a
     WHERE a.kind = 'settlement' AND a.vault_shard = shard
       AND a.currency = (SELECT ip.currency FROM interbank_payments ip WHERE ip.e2e_id = ANY(p_e2e_ids) LIMIT 1)
       FOR UPDATE;
  END IF;

  FOR i IN 1 .. n LOOP
    SELECT ip.* INTO pay FROM interbank_payments ip WHERE ip.e2e_id = p_e2e_ids[i] FOR UPDATE;
    IF NOT FOUND THEN
      known := known || false;
      CONTINUE;
    END IF;
    known := known || true;
    earlier := array_position(done_ids, pay.e2e_id);
    IF earlier IS NOT NULL OR pay.status IN ('committed', 'aborted') THEN
      IF coalesce(done_statuses[earlier], pay.status) <> p_statuses[i] THEN
        RAISE EXCEPTION 'payment % was % here; the switch now says %', pay.e2e_id, coalesce(done_statuses[earlier], pay.status), p_statuses[i];
      END IF;
      IF earlier IS NULL AND pay.direction = 'out' AND pay.counterparty_bank_id IS NULL AND p_payee_banks[i] IS NOT NULL THEN
        x_payments := x_payments || pay.id;
        x_items := x_items || i;
      END IF;
      CONTINUE;
    END IF;
    IF pay.direction = 'out' AND pay.counterparty_bank_id IS NULL AND p_payee_banks[i] IS NOT NULL THEN
      pay.counterparty_bank_id := p_payee_banks[i];
      pay.counterparty_bank_name := coalesce(p_payee_bank_names[i], pay.counterparty_bank_name);
      pay.holder_name_masked := coalesce(p_payee_holders[i], pay.holder_name_masked);
      pay.account_number_masked := p_payee_accounts[i];
    END IF;
    done_ids := done_ids || pay.e2e_id;
    done_statuses := done_statuses || p_statuses[i];
    out := pay.direction = 'out';

    IF p_statuses[i] = 'aborted' THEN
      IF out THEN
        m := array_position(m_accounts, pay.account_id);
        IF m IS NULL THEN
          PERFORM void_hold(pay.e2e_id);
        ELSE
          -- The account's figures are the loop's until the end: release the hold there.
          UPDATE holds SET status = 'voided', decided_at = moved_at WHERE reference = pay.e2e_id AND status = 'active'
          RETURNING created_at INTO hold_placed_at;
          IF FOUND THEN
            m_held[m] := m_held[m] - pay.amount;
            -- As void_hold does: a hold placed today gives its share of the daily limit back.
            UPDATE accounts SET limit_used = limit_used - pay.amount
             WHERE id = pay.account_id AND (hold_placed_at AT TIME ZONE limit_time_zone)::date = (now() AT TIME ZONE limit_time_zone)::date;
          END IF;
        END IF;
        -- Nobody waits on this payment's answer (a standing order's run, an approved review): its payer is told.
        IF pay.idempotency_key LIKE 'standing-order:%' OR pay.idempotency_key LIKE 'review:%' THEN
          PERFORM notify_user(pay.created_by, 'interbank.aborted', false,
                              jsonb_build_object('payment_id', pay.id, 'amount', pay.amount::text, 'currency', pay.currency,
                                                 'reason', coalesce(p_reasons[i], 'aborted'), 'to', pay.key_type || ' key'));
        END IF;
      END IF;
      UPDATE interbank_payments SET status = 'aborted', reason = coalesce(p_reasons[i], 'aborted'), decided_at = moved_at,
                                    counterparty_bank_id = pay.counterparty_bank_id, counterparty_bank_name = pay.counterparty_bank_name,
                                    holder_name_masked = pay.holder_name_masked, account_number_masked = pay.account_number_masked
       WHERE id = pay.id;
      CONTINUE;
    END IF;

    IF settlement_id IS NULL THEN
      RAISE EXCEPTION 'no % settlement account', pay.currency;
    END IF;
    m := array_position(m_accounts, pay.account_id);
    IF m IS NULL THEN
      SELECT a.balance, a.held, a.number INTO account_after, account_held, account_number FROM accounts a WHERE a.id = pay.account_id;
      m_accounts := m_accounts || pay.account_id;
      m_balances := m_balances || account_after;
      m_held := m_held || account_held;
      m := cardinality(m_accounts);
    ELSE
      SELECT a.number INTO account_number FROM accounts a WHERE a.id = pay.account_id;
    END IF;
    IF out THEN
      -- The hold becomes the debit: balance and held drop together, so the available balance does not move again.
      posted_holds := posted_holds || pay.e2e_id;
      m_balances[m] := m_balances[m] - pay.amount;
      m_held[m] := m_held[m] - pay.amount;
      settlement_balance := settlement_balance + pay.amount;
    ELSE
      m_balances[m] := m_balances[m] + pay.amount;
      settlement_balance := settlement_balance - pay.amount;
    END IF;
    account_after := m_balances[m];

    transfer_id := uuid_v7();
    t_ids := t_ids || transfer_id;
    t_from := t_from || CASE WHEN out THEN pay.account_id ELSE settlement_id END;
    t_to := t_to || CASE WHEN out THEN settlement_id ELSE pay.account_id END;
    t_amounts := t_amounts || pay.amount;
    t_currencies := t_currencies || pay.currency;
    t_memos := t_memos || pay.memo;
    t_by := t_by || coalesce(pay.created_by, '00000000-0000-0000-0000-000000000000'::uuid);
    e_transfers := e_transfers || transfer_id || transfer_id;
    e_accounts := e_accounts || pay.account_id || settlement_id;
    e_kinds := e_kinds || CASE WHEN out THEN 'interbank_out' ELSE 'interbank_in' END || 'settlement'::text;
    e_amounts := e_amounts || CASE WHEN out THEN -pay.amount ELSE pay.amount END || CASE WHEN out THEN pay.amount ELSE -pay.amount END;
    e_after := e_after || account_after || settlement_balance;
    e_counterparties := e_counterparties || settlement_id || pay.account_id;
    e_memos := e_memos || pay.memo || pay.memo;
    a_actors := a_actors || pay.created_by;
    a_roles := a_roles || CASE WHEN out THEN 'customer' ELSE 'switch' END;
    a_actions := a_actions || ('money.interbank_' || pay.direction);
    a_targets := a_targets || ('transfer:' || transfer_id);
    a_details := a_details || jsonb_build_object('e2e_id', pay.e2e_id, 'amount', pay.amount::text, 'currency', pay.currency,
                                                 'account', account_number, 'counterparty_bank', pay.counterparty_bank_id);
    c_payments := c_payments || pay.id;
    c_transfers := c_transfers || transfer_id;
    c_after := c_after || account_after;
    c_banks := c_banks || pay.counterparty_bank_id;
    c_bank_names := c_bank_names || pay.counterparty_bank_name;
    c_holders := c_holders || pay.holder_name_masked;
    c_accounts := c_accounts || pay.account_number_masked;
  END LOOP;

  IF cardinality(x_payments) > 0 THEN
    UPDATE interbank_payments ip SET counterparty_bank_id = p_payee_banks[x.k],
                                     counterparty_bank_name = coalesce(p_payee_bank_names[x.k], ip.counterparty_bank_name),
                                     holder_name_masked = coalesce(p_payee_holders[x.k], ip.holder_name_masked),
                                     account_number_masked = p_payee_accounts[x.k]
      FROM unnest(x_payments, x_items) AS x(id, k)
     WHERE ip.id = x.id AND ip.counterparty_bank_id IS NULL;
  END IF;

  IF cardinality(t_ids) > 0 THEN
    UPDATE holds SET status = 'posted', decided_at = moved_at WHERE reference = ANY(posted_holds) AND status = 'active';
    GET DIAGNOSTICS m = ROW_COUNT;
    IF m <> cardinality(posted_holds) THEN
      RAISE EXCEPTION 'a settlement group posts % holds but % are active', cardinality(posted_holds), m;
    END IF;
    UPDATE accounts a SET balance = u.balance, held = u.held FROM unnest(m_accounts, m_balances, m_held) AS u(id, balance, held) WHERE a.id = u.id;
    UPDATE accounts SET balance = settlement_balance WHERE id = settlement_id;
    INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, memo, created_by, created_at)
    SELECT t.id, 'interbank', t.from_id, t.to_id, t.amount, t.currency, t.memo, t.created_by, moved_at
      FROM unnest(t_ids, t_from, t_to, t_amounts, t_currencies, t_memos, t_by) AS t(id, from_id, to_id, amount, currency, memo, created_by);
    INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, memo, created_at)
    SELECT uuid_v7(), e.transfer_id, e.account_id, e.kind, e.amount, e.balance_after, e.counterparty, e.memo, moved_at
      FROM unnest(e_transfers, e_accounts, e_kinds, e_amounts, e_after, e_counterparties, e_memos)
           AS e(transfer_id, account_id, kind, amount, balance_after, counterparty, memo);
    INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
    SELECT a.actor, a.role, NULL, a.action, a.target, NULL, NULL, 'success', a.details
      FROM unnest(a_actors, a_roles, a_actions, a_targets, a_details) AS a(actor, role, action, target, details);
    UPDATE interbank_payments ip SET status = 'committed', decided_at = moved_at, transfer_id = c.transfer_id, balance_after = c.balance_after,
                                     counterparty_bank_id = c.bank_id, counterparty_bank_name = c.bank_name,
                                     holder_name_masked = c.holder, account_number_masked = c.account
      FROM unnest(c_payments, c_transfers, c_after, c_banks, c_bank_names, c_holders, c_accounts)
           AS c(id, transfer_id, balance_after, bank_id, bank_name, holder, account)
     WHERE ip.id = c.id;
  END IF;
  RETURN known;
END
$function$
;
