-- The one home of quiet_hours_send_at(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.quiet_hours_send_at(p_start_min smallint, p_end_min smallint, p_time_zone text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
  SELECT CASE
    WHEN p_start_min IS NULL OR p_end_min IS NULL OR p_start_min = p_end_min THEN now()
    -- Inside the window (also one that wraps past midnight): wait for its end.
    WHEN (local_minutes(p_time_zone) - p_start_min + 1440) % 1440 < (p_end_min - p_start_min + 1440) % 1440
      THEN now() + make_interval(mins => ((p_end_min - local_minutes(p_time_zone) + 1440) % 1440))
    ELSE now()
  END
$function$
;
