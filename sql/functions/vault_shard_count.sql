-- The one home of vault_shard_count(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.vault_shard_count()
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE
AS $function$SELECT 8$function$
;
