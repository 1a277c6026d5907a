-- The one home of move_money(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.move_money(p_actor_id uuid, p_actor_role text, p_scope_owner uuid, p_scope_branch uuid, p_idempotency_key text, p_request_hash bytea, p_kind text, p_account_id uuid, p_to_number text, p_amount numeric, p_memo text, p_request_id text, p_client_addr text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
DECLARE
  body jsonb;
BEGIN
  IF p_kind NOT IN ('deposit', 'withdrawal', 'transfer') THEN
    RAISE EXCEPTION 'unknown movement kind %', p_kind;
  END IF;
  body := apply_movement(p_actor_id, p_actor_role, p_scope_owner, p_scope_branch,
                         p_kind, p_account_id, p_to_number, p_amount, p_memo,
                         NULL, NULL, p_request_id, p_client_addr);
  INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
  VALUES (idempotency_key_hash(p_actor_id, p_idempotency_key), p_actor_id, p_idempotency_key, p_request_hash, 201, body);
  RETURN jsonb_build_object('replayed', false, 'status', 201, 'body', body);
END
$function$
;
