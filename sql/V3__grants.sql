-- The server connects as flexibank_app: it may read and write the bank's
-- tables but owns none of them, so it cannot disable the audit trigger, and it
-- has no UPDATE or DELETE on audit_log at all.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flexibank_app') THEN
    CREATE ROLE flexibank_app LOGIN;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO flexibank_app;
GRANT SELECT, INSERT, UPDATE ON branches, users, accounts, account_owners, transfers, entries TO flexibank_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle, mfa_challenges, recovery_codes, sessions, idempotency_keys TO flexibank_app;
GRANT SELECT, INSERT ON audit_log TO flexibank_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO flexibank_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO flexibank_app;
