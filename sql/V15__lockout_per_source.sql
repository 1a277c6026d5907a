-- Lockout that strangers cannot use as a lever (issue 14). Before, five
-- failures from anywhere locked a username for the whole lock window, so a
-- storm naming real usernames locked real customers out. Now:
-- * failures are counted per username *and* client address: five from one
--   address lock that address out of that username for the lock window;
-- * all addresses together get a slower, short backoff per username (say 50
--   failures in the window: a minute's pause), which bounds a distributed
--   guessing attack to a few dozen guesses per window without letting
--   anyone lock a customer out for long.
CREATE TABLE login_throttle_by_source (
    username        text NOT NULL,
    client_addr     text NOT NULL,
    failed_attempts int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, client_addr)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle_by_source TO flexibank_app;

-- One counter row: a failure inside the window counts on, one after it (or
-- after a lock ran out) starts again; `p_limit` failures set `locked_until`.
CREATE FUNCTION count_login_failure(
    p_row_username text, p_row_addr text, p_limit int, p_window interval, p_lock interval
) RETURNS timestamptz
LANGUAGE plpgsql AS $$
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
$$;

-- Records one failed password or code attempt (whether or not the user
-- exists, so lockout reveals nothing), counts it for its address and for the
-- username, and audits it, in one transaction. Returns until when the
-- attempt's address, or the username, is now held back.
CREATE FUNCTION record_login_failure(
    p_username text, p_user_id uuid, p_step text, p_reason text,
    p_request_id text, p_client_addr text, p_max_failures int, p_lock_seconds int,
    p_global_max_failures int, p_global_backoff_seconds int
) RETURNS timestamptz
LANGUAGE plpgsql AS $$
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
$$;

GRANT EXECUTE ON FUNCTION count_login_failure(text, text, int, interval, interval) TO flexibank_app;
GRANT EXECUTE ON FUNCTION record_login_failure(text, uuid, text, text, text, text, int, int, int, int) TO flexibank_app;
