-- The one home of notify_session(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.notify_session()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = NEW.user_id
                    AND s.client_addr IS NOT DISTINCT FROM NEW.client_addr AND s.token_hash <> NEW.token_hash) THEN
    PERFORM notify_user(NEW.user_id, 'security.new_device', true,
      jsonb_build_object('client_addr', NEW.client_addr, 'at', rfc3339(NEW.created_at)));
  END IF;
  RETURN NULL;
END
$function$
;
