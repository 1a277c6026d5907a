-- The one home of record_login_failure(): its current definition. Edit it here, never in a migration:
-- after the versioned migrations the server re-applies this file (CREATE OR REPLACE)
-- whenever its checksum changed (server/src/stored_functions.rs).

CREATE OR REPLACE FUNCTION public.record_login_failure(p_username text, p_user_id uuid, p_step text, p_reason text, p_request_id text, p_client_addr text, p_max_failures integer, p_lock_seconds integer)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
  t login_throttle%ROWTYPE;
  window_length interval := make_interval(secs => p_lock_seconds);
BEGIN
  INSERT INTO login_throttle AS lt (username, failed_attempts, updated_at)
  VALUES (p_username, 1, now())
  ON CONFLICT (username) DO UPDATE SET
    failed_attempts = CASE
      WHEN lt.updated_at < now() - window_length OR lt.locked_until <= now() THEN 1
      ELSE lt.failed_attempts + 1 END,
    locked_until = CASE WHEN lt.locked_until <= now() THEN NULL ELSE lt.locked_until END,
    updated_at = now()
  RETURNING * INTO t;

  IF t.failed_attempts >= p_max_failures THEN
    UPDATE login_throttle
       SET locked_until = now() + window_length, failed_attempts = 0
     WHERE username = p_username
    RETURNING * INTO t;
  END IF;

  INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
  SELECT p_user_id, u.role, u.branch_id, 'auth.login', 'user:' || p_username, p_request_id, p_client_addr,
         'failure', jsonb_build_object('step', p_step, 'reason', p_reason, 'locked', t.locked_until IS NOT NULL)
    FROM (SELECT 1) one LEFT JOIN users u ON u.id = p_user_id;

  RETURN t.locked_until;
END
$function$
;

CREATE OR REPLACE FUNCTION public.record_login_failure(p_username text, p_user_id uuid, p_step text, p_reason text, p_request_id text, p_client_addr text, p_max_failures integer, p_lock_seconds integer, p_global_max_failures integer, p_global_backoff_seconds integer)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
  window_length interval := make_interval(secs => p_lock_seconds);
  source_locked timestamptz;
  backoff timestamptz;
BEGIN
  source_locked := count_login_failure(p_username, p_client_addr, p_max_failures, window_length, window_length);
  backoff := count_login_failure(p_username, NULL, p_global_max_failures, window_length,
                                 make_interval(secs => p_global_backoff_seconds));

  INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
  SELECT p_user_id, u.role, u.branch_id, 'auth.login', 'user:' || p_username, p_request_id, p_client_addr,
         'failure', jsonb_build_object('step', p_step, 'reason', p_reason,
                                       'locked', source_locked IS NOT NULL, 'backoff', backoff IS NOT NULL)
    FROM (SELECT 1) one LEFT JOIN users u ON u.id = p_user_id;

  RETURN greatest(source_locked, backoff);
END
$function$
;
