-- The one home of store_idempotent_response(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.store_idempotent_response(p_actor_id uuid, p_key text, p_request_hash bytea, p_body jsonb)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
  VALUES (idempotency_key_hash(p_actor_id, p_key), p_actor_id, p_key, p_request_hash, 201, p_body);
END
$function$
;
