-- The one home of count_login_failure(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.count_login_failure(p_row_username text, p_row_addr text, p_limit integer, p_window interval, p_lock interval)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
  attempts int;
  until timestamptz;
BEGIN
  IF p_row_addr IS NULL THEN
    INSERT INTO login_throttle AS lt (username, failed_attempts, updated_at)
    VALUES (p_row_username, 1, now())
    ON CONFLICT (username) DO UPDATE SET
      failed_attempts = CASE WHEN lt.updated_at < now() - p_window OR lt.locked_until <= now() THEN 1
                             ELSE lt.failed_attempts + 1 END,
      locked_until = CASE WHEN lt.locked_until <= now() THEN NULL ELSE lt.locked_until END,
      updated_at = now()
    RETURNING failed_attempts, locked_until INTO attempts, until;
    IF attempts >= p_limit THEN
      UPDATE login_throttle SET locked_until = now() + p_lock, failed_attempts = 0
       WHERE username = p_row_username RETURNING locked_until INTO until;
    END IF;
  ELSE
    INSERT INTO login_throttle_by_source AS lt (username, client_addr, failed_attempts, updated_at)
    VALUES (p_row_username, p_row_addr, 1, now())
    ON CONFLICT (username, client_addr) DO UPDATE SET
      failed_attempts = CASE WHEN lt.updated_at < now() - p_window OR lt.locked_until <= now() THEN 1
                             ELSE lt.failed_attempts + 1 END,
      locked_until = CASE WHEN lt.locked_until <= now() THEN NULL ELSE lt.locked_until END,
      updated_at = now()
    RETURNING failed_attempts, locked_until INTO attempts, until;
    IF attempts >= p_limit THEN
      UPDATE login_throttle_by_source SET locked_until = now() + p_lock, failed_attempts = 0
       WHERE username = p_row_username AND client_addr = p_row_addr RETURNING locked_until INTO until;
    END IF;
  END IF;
  RETURN until;
END
$function$
;
