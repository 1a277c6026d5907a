-- The one home of local_minutes(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.local_minutes(p_time_zone text)
 RETURNS integer
 LANGUAGE sql
 STABLE
AS $function$
  SELECT extract(hour FROM now() AT TIME ZONE p_time_zone)::int * 60 + extract(minute FROM now() AT TIME ZONE p_time_zone)::int
$function$
;
