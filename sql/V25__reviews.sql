-- Issue 18, part 4: review of unusual movements.
--
-- A transfer the bank's rules flag (server/src/review.rs) does not move: its
-- amount is held on the payer's account (holds, sql/V16: the available balance
-- drops, the balance does not) and a review waits for a branch admin who had
-- no hand in the customer, the account, its limit or the payee (maker-checker).
-- Approved, the transfer happens once, in the approval's transaction; rejected,
-- cancelled by the customer or left undecided for 24 h, the hold is released.
CREATE TABLE reviews (
    id                uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id           uuid NOT NULL REFERENCES users (id),
    branch_id         uuid NOT NULL REFERENCES branches (id),
    from_account_id   uuid NOT NULL REFERENCES accounts (id),
    to_account_number text NOT NULL,
    amount            numeric(20, 2) NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    memo              text NOT NULL DEFAULT '',
    -- Which rule flagged it, in words the reviewer reads.
    reason            text NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    decided_by        uuid REFERENCES users (id),
    decided_at        timestamptz,
    transfer_id       uuid REFERENCES transfers (id),
    CONSTRAINT decided_when_not_pending CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT approved_has_its_transfer CHECK ((status = 'approved') = (transfer_id IS NOT NULL))
);
CREATE INDEX reviews_pending_by_branch ON reviews (branch_id, created_at) WHERE status = 'pending';
CREATE INDEX reviews_by_branch ON reviews (branch_id, created_at DESC);
CREATE INDEX reviews_of_user ON reviews (user_id, created_at DESC);
CREATE INDEX reviews_expiring ON reviews (expires_at) WHERE status = 'pending';

GRANT SELECT, INSERT, UPDATE ON reviews TO flexibank_app;

ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered',
                  'payee.added', 'account.opened', 'account.owner_added', 'limit.raised',
                  'standing_order.refused', 'standing_order.skipped',
                  'review.held', 'review.approved', 'review.rejected')) NOT VALID;
ALTER TABLE notification_events VALIDATE CONSTRAINT notification_events_kind_check;
