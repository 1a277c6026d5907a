-- The one home of interbank_prepare_many(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

-- Phase one at the payee's bank for a group of payments in one transaction
-- (server/src/interbank/grouped.rs), each as server/src/interbank/payments.rs
-- `prepare_alone` votes: a repeat answers the first vote; a yes records the
-- pending credit. The payees' accounts are locked first, in id order, FOR
-- SHARE (a freeze or a close waits for the votes, as it does for one). One
-- answer per payment: 'yes', the no's reason, or 'e2e_id_reused' when the id
-- names another payment here. The amounts and currencies were checked by the
-- caller (positive, two decimals, the consortium's currency). The loop only
-- reads and decides; the pending credits are then one INSERT (PostgreSQL
-- prepares a table's CHECK constraints once per statement).
CREATE OR REPLACE FUNCTION public.interbank_prepare_many(p_e2e_ids text[], p_account_numbers text[], p_amounts numeric[], p_currencies text[], p_payer_banks text[], p_payer_bank_names text[], p_memos text[])
 RETURNS text[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  n int := cardinality(p_e2e_ids);
  votes text[] := '{}';
  acc record;
  existing record;
  earlier int;
  i int;
  new_items int[] := '{}';
  new_accounts uuid[] := '{}';
BEGIN
  IF n > 256 OR cardinality(p_account_numbers) <> n OR cardinality(p_amounts) <> n OR cardinality(p_currencies) <> n
     OR cardinality(p_payer_banks) <> n OR cardinality(p_payer_bank_names) <> n OR cardinality(p_memos) <> n THEN
    RAISE EXCEPTION 'a prepare group is at most 256 payments, with every field for each';
  END IF;
  PERFORM 1 FROM accounts a WHERE a.number = ANY(p_account_numbers) ORDER BY a.id FOR SHARE;
  FOR i IN 1 .. n LOOP
    earlier := NULL;
    FOR j IN 1 .. cardinality(new_items) LOOP
      IF p_e2e_ids[new_items[j]] = p_e2e_ids[i] THEN
        earlier := new_items[j];
      END IF;
    END LOOP;
    IF earlier IS NOT NULL THEN
      votes := votes || CASE WHEN p_amounts[earlier] <> p_amounts[i] THEN 'e2e_id_reused' ELSE 'yes' END;
      CONTINUE;
    END IF;
    SELECT ip.status, ip.direction, ip.amount INTO existing FROM interbank_payments ip WHERE ip.e2e_id = p_e2e_ids[i];
    IF FOUND THEN
      votes := votes || CASE WHEN existing.direction <> 'in' OR existing.amount <> p_amounts[i] THEN 'e2e_id_reused'
                             WHEN existing.status = 'aborted' THEN 'payee_refused'
                             ELSE 'yes' END;
      CONTINUE;
    END IF;
    SELECT a.id, a.kind, a.currency, a.status INTO acc FROM accounts a WHERE a.number = p_account_numbers[i];
    IF NOT FOUND OR acc.kind IN ('vault', 'settlement', 'fx') THEN
      votes := votes || 'payee_refused'::text;
    ELSIF acc.status <> 'active' THEN
      votes := votes || 'account_inactive'::text;
    ELSIF acc.currency <> p_currencies[i] THEN
      votes := votes || 'currency_mismatch'::text;
    ELSE
      new_items := new_items || i;
      new_accounts := new_accounts || acc.id;
      votes := votes || 'yes'::text;
    END IF;
  END LOOP;
  INSERT INTO interbank_payments (e2e_id, direction, account_id, amount, currency, counterparty_bank_id, counterparty_bank_name, status, memo)
  SELECT p_e2e_ids[u.k], 'in', u.account_id, p_amounts[u.k], p_currencies[u.k], p_payer_banks[u.k], p_payer_bank_names[u.k], 'prepared', p_memos[u.k]
    FROM unnest(new_items, new_accounts) AS u(k, account_id);
  RETURN votes;
END
$function$
;
