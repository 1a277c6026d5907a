-- Most audit rows of money movements have no branch (a customer's own payments, the switch's
-- credits) and an inter-bank credit has no actor. Their NULLs took an index entry per row in
-- audit_log_branch and audit_log_actor that no look-up reads: the audit trail filters with
-- `branch_id = $1` or `actor_id = $1`, which imply NOT NULL (server/src/admin.rs, approvals.rs).
-- An inter-bank payment wrote ~1.5 such entries at each bank (docs/benchmarks.md, session 24).
DROP INDEX audit_log_branch;
CREATE INDEX audit_log_branch ON audit_log (branch_id, id DESC) WHERE branch_id IS NOT NULL;
DROP INDEX audit_log_actor;
CREATE INDEX audit_log_actor ON audit_log (actor_id, id DESC) WHERE actor_id IS NOT NULL;
