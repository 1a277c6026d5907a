-- The one home of idempotency_lookup(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.idempotency_lookup(p_user_id uuid, p_key text, p_request_hash bytea)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
  k idempotency_keys%ROWTYPE;
BEGIN
  SELECT * INTO k FROM idempotency_keys WHERE key_hash = idempotency_key_hash(p_user_id, p_key);
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF k.created_at < now() - interval '24 hours' THEN
    DELETE FROM idempotency_keys WHERE key_hash = k.key_hash;
    RETURN NULL;
  END IF;
  IF k.request_hash <> p_request_hash THEN
    PERFORM fb_fail('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
  END IF;
  RETURN jsonb_build_object('replayed', true, 'status', k.response_status, 'body', k.response_body);
END
$function$
;
