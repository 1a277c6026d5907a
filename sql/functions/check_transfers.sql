-- The one home of check_transfers(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.check_transfers(p_owner_ids uuid[], p_from_ids uuid[], p_to_numbers text[], p_amounts numeric[])
 RETURNS TABLE(ord bigint, problem text, to_id uuid, currency text, to_currency text, from_number text, branch_id uuid, from_status text, to_status text)
 LANGUAGE sql
 STABLE
AS $function$
  SELECT t.ord,
         CASE
           WHEN t.amount IS NULL OR t.amount <= 0 OR t.amount > 1000000000000 OR scale(t.amount) > 2 THEN 'validation_failed'
           WHEN f.id IS NULL OR f.kind IN ('vault', 'settlement', 'fx') OR (t.owner_id IS NOT NULL AND NOT EXISTS
                  (SELECT 1 FROM account_owners o WHERE o.account_id = f.id AND o.user_id = t.owner_id)) THEN 'no_from'
           WHEN f.number = t.to_number THEN 'same_account'
           WHEN d.id IS NULL OR d.kind IN ('vault', 'settlement', 'fx') THEN 'no_to'
           WHEN f.status <> 'active' THEN 'from_inactive'
           WHEN d.status <> 'active' THEN 'to_inactive'
           WHEN f.currency <> d.currency THEN 'currency_mismatch'
         END,
         d.id, f.currency, d.currency, f.number, f.branch_id, f.status, d.status
    FROM unnest(p_owner_ids, p_from_ids, p_to_numbers, p_amounts) WITH ORDINALITY AS t(owner_id, from_id, to_number, amount, ord)
    LEFT JOIN accounts f ON f.id = t.from_id
    LEFT JOIN accounts d ON d.number = t.to_number
   ORDER BY t.ord
$function$
;
