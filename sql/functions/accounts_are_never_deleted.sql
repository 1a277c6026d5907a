-- The one home of accounts_are_never_deleted(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.accounts_are_never_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  RAISE EXCEPTION 'accounts are never deleted: close them (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$function$
;
