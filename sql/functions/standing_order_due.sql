-- The one home of standing_order_due(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.standing_order_due(p_every text, p_every_n integer, p_start_on date, p_time_of_day time without time zone, p_time_zone text, p_anchor_at timestamp with time zone, p_k integer, OUT due_key text, OUT due_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
  month_start date;
  month_days int;
  due_on date;
BEGIN
  IF p_every = 'second' THEN
    due_at := p_anchor_at + make_interval(secs => p_k::double precision * p_every_n);
    due_key := to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
    RETURN;
  END IF;
  IF p_every = 'day' THEN
    due_on := p_start_on + p_k * p_every_n;
  ELSIF p_every = 'week' THEN
    due_on := p_start_on + 7 * p_k * p_every_n;
  ELSE
    -- Counted from the start date every time: 31 Jan, 28 Feb, 31 Mar (never drifting to the 28th).
    month_start := (date_trunc('month', p_start_on) + make_interval(months => p_k * p_every_n))::date;
    month_days := extract(day FROM month_start + interval '1 month' - interval '1 day')::int;
    due_on := month_start + (least(extract(day FROM p_start_on)::int, month_days) - 1);
  END IF;
  due_key := to_char(due_on, 'YYYY-MM-DD');
  -- Wall-clock time in the customer's zone, whatever its offset that day.
  due_at := (due_on + p_time_of_day) AT TIME ZONE p_time_zone;
END
$function$
;
