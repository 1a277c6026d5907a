-- The one home of idempotency_key_hash(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.idempotency_key_hash(p_user_id uuid, p_key text)
 RETURNS bytea
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
  SELECT sha224(uuid_send(p_user_id) || convert_to(p_key, 'UTF8'))
$function$
;
