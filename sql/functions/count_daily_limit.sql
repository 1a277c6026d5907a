-- The one home of count_daily_limit(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.count_daily_limit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  -- What this update adds to the day's outgoing total (negative: a voided hold given back).
  added numeric := NEW.limit_used - OLD.limit_used;
  today date := (now() AT TIME ZONE NEW.limit_time_zone)::date;
  -- A later day than today: the time zone moved west since; switching zones must not start a fresh day.
  used_before numeric := CASE WHEN OLD.limit_day >= today THEN OLD.limit_used ELSE 0 END;
  day_limit numeric;
BEGIN
  NEW.limit_day := greatest(OLD.limit_day, today);
  NEW.limit_used := greatest(used_before + added, 0);
  IF added <= 0 THEN
    RETURN NEW;
  END IF;
  -- A customer's raise counts from its time on.
  IF NEW.daily_limit_raise_at IS NOT NULL AND NEW.daily_limit_raise_at <= now() THEN
    NEW.daily_limit := NEW.daily_limit_raise;
    NEW.daily_limit_raise := NULL;
    NEW.daily_limit_raise_at := NULL;
  END IF;
  day_limit := NEW.daily_limit;
  IF day_limit IS NULL THEN
    SELECT d.daily_transfer_limit INTO day_limit FROM limit_defaults d WHERE d.currency = NEW.currency;
  END IF;
  IF day_limit IS NOT NULL AND NEW.limit_used > day_limit THEN
    PERFORM fb_fail('limit_exceeded', format('account %s: %s %s would pass its daily limit of %s %s (%s used today)',
                                             NEW.number, added::numeric(20, 2), NEW.currency, day_limit::numeric(20, 2),
                                             NEW.currency, used_before::numeric(20, 2)));
  END IF;
  RETURN NEW;
END
$function$
;
