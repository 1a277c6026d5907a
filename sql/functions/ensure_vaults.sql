-- The one home of ensure_vaults(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.ensure_vaults(p_branch_id uuid, p_currency text)
 RETURNS void
 LANGUAGE sql
AS $function$
  INSERT INTO accounts (branch_id, kind, currency, vault_shard)
  SELECT p_branch_id, 'vault', p_currency, shard FROM generate_series(0, vault_shard_count() - 1) AS shard
  ON CONFLICT (branch_id, currency, vault_shard) WHERE kind = 'vault' DO NOTHING
$function$
;
