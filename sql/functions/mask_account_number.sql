-- The one home of mask_account_number(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.mask_account_number(p_number text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$ SELECT '••••' || right(p_number, 4) $function$
;
