-- Login throttling and its audit trail, one statement each.

-- Records one failed password or code attempt against a username, whether or
-- not such a user exists (so lockout cannot reveal which usernames exist), and
-- audits it in the same transaction. Failures older than the lock window are
-- forgotten. Returns the lock's expiry when this failure locked the username.
CREATE FUNCTION record_login_failure(
    p_username text, p_user_id uuid, p_step text, p_reason text,
    p_request_id text, p_client_addr text, p_max_failures int, p_lock_seconds int
) RETURNS timestamptz
LANGUAGE plpgsql AS $$
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
$$;

GRANT EXECUTE ON FUNCTION record_login_failure(text, uuid, text, text, text, text, int, int) TO flexibank_app;
