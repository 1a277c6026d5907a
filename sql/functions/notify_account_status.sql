-- The one home of notify_account_status(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.notify_account_status()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  owner record;
BEGIN
  IF coalesce(current_setting('flexibank.notifications', true), 'on') = 'off' OR OLD.status = NEW.status THEN
    RETURN NULL;
  END IF;
  FOR owner IN SELECT user_id FROM account_owners WHERE account_id = NEW.id LOOP
    PERFORM notify_user(owner.user_id, 'account.status', true,
      jsonb_build_object('account_id', NEW.id, 'account', mask_account_number(NEW.number),
                         'from', OLD.status, 'to', NEW.status));
  END LOOP;
  RETURN NULL;
END
$function$
;
