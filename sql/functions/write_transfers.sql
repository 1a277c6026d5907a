-- The one home of write_transfers(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.write_transfers(p_moved_at timestamp with time zone, p_batch_id uuid, p_problems text[], p_actor_ids uuid[], p_actor_roles text[], p_request_ids text[], p_client_addrs text[], p_transfer_ids uuid[], p_from_ids uuid[], p_to_ids uuid[], p_from_numbers text[], p_to_numbers text[], p_branch_ids uuid[], p_amounts numeric[], p_currencies text[], p_memos text[], p_from_afters numeric[], p_to_afters numeric[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
      -- `sent`: what left the account, not the net, counts against its daily limit.
      SELECT account_id, sum(delta) AS delta, sum(sent) AS sent FROM (
          SELECT from_id AS account_id, -amount AS delta, amount AS sent FROM ok
          UNION ALL SELECT to_id, amount, 0 FROM ok) m
       GROUP BY account_id
  ), new_balances AS (
      UPDATE accounts a SET balance = a.balance + net.delta, limit_used = a.limit_used + net.sent FROM net WHERE a.id = net.account_id
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
$function$
;
