-- The one home of notify_mfa_change(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.notify_mfa_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' THEN
    RETURN NULL;
  END IF;
  IF OLD.totp_enrolled_at IS NOT NULL AND NEW.totp_enrolled_at IS NULL THEN
    PERFORM notify_user(NEW.id, 'security.mfa_reset', true, '{}'::jsonb);
  ELSIF OLD.totp_enrolled_at IS NULL AND NEW.totp_enrolled_at IS NOT NULL THEN
    PERFORM notify_user(NEW.id, 'security.mfa_enrolled', true, '{}'::jsonb);
  END IF;
  RETURN NULL;
END
$function$
;
