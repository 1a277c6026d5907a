-- Issue 18, parts 2 and 4 continued. A standing order may pay a key (the
-- contract's `"to": {"key"}`): each run places an inter-bank payment, sent to
-- the switch after the run commits. And the rules screen every way money
-- leaves, not only a single transfer. An inter-bank payment by key and a standing order's
-- run can be held for review too (a batch with a flagged item is refused
-- whole: it is all or nothing and answered at once; server/src/review.rs).
--
-- A review now says what it holds (`kind`): a transfer to an account number,
-- an inter-bank payment to a key (approved, it becomes that payment), or one
-- run of a standing order (approved, the run is done with its transfer;
-- rejected, cancelled or expired, the run is skipped). One review per run; a
-- run of an order paying a key is held as an 'interbank' review of that run.
ALTER TABLE reviews
  ADD COLUMN kind text NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'interbank', 'standing_order')),
  ADD COLUMN to_key_type text CHECK (to_key_type IN ('phone', 'email', 'national_id', 'random')),
  ADD COLUMN to_key_value text CHECK (length(to_key_value) <= 254),
  ADD COLUMN order_id uuid REFERENCES standing_orders (id),
  ADD COLUMN due_key text,
  ADD COLUMN interbank_payment_id uuid REFERENCES interbank_payments (id),
  ALTER COLUMN to_account_number DROP NOT NULL,
  DROP CONSTRAINT approved_has_its_transfer;
ALTER TABLE reviews
  ADD CONSTRAINT review_target CHECK (
       (kind = 'interbank' AND to_key_type IS NOT NULL AND to_key_value IS NOT NULL AND to_account_number IS NULL)
    OR (kind <> 'interbank' AND to_key_type IS NULL AND to_key_value IS NULL AND to_account_number IS NOT NULL)),
  ADD CONSTRAINT review_of_a_run CHECK ((order_id IS NULL) = (due_key IS NULL) AND (kind <> 'standing_order' OR order_id IS NOT NULL)),
  ADD CONSTRAINT approved_has_its_movement CHECK (
    (status = 'approved') = (transfer_id IS NOT NULL OR interbank_payment_id IS NOT NULL));
CREATE UNIQUE INDEX reviews_one_per_run ON reviews (order_id, due_key) WHERE order_id IS NOT NULL;

ALTER TABLE standing_orders
  ADD COLUMN to_key_type text CHECK (to_key_type IN ('phone', 'email', 'national_id', 'random')),
  ADD COLUMN to_key_value text CHECK (length(to_key_value) <= 254),
  ALTER COLUMN to_account_number DROP NOT NULL,
  ADD CONSTRAINT order_pays_an_account_or_a_key
    CHECK ((to_account_number IS NULL) <> (to_key_type IS NULL) AND (to_key_type IS NULL) = (to_key_value IS NULL));

ALTER TABLE standing_order_runs
  ADD COLUMN review_id uuid REFERENCES reviews (id),
  -- A run of an order paying a key is done when its payment is placed; the switch decides it.
  ADD COLUMN interbank_payment_id uuid REFERENCES interbank_payments (id),
  DROP CONSTRAINT standing_order_runs_status_check,
  DROP CONSTRAINT outcome_matches_status;
ALTER TABLE standing_order_runs
  ADD CONSTRAINT standing_order_runs_status_check CHECK (status IN ('running', 'done', 'retry', 'skipped', 'held')),
  ADD CONSTRAINT outcome_matches_status CHECK (
        (status = 'done' AND (transfer_id IS NULL) <> (interbank_payment_id IS NULL) AND refusal_code IS NULL AND retry_at IS NULL)
     OR (status <> 'done' AND transfer_id IS NULL AND interbank_payment_id IS NULL AND (
            (status = 'running' AND refusal_code IS NULL AND retry_at IS NULL)
         OR (status = 'retry' AND refusal_code IS NOT NULL AND retry_at IS NOT NULL)
         OR (status = 'skipped' AND refusal_code IS NOT NULL AND retry_at IS NULL)
         OR (status = 'held' AND refusal_code IS NULL AND retry_at IS NULL AND review_id IS NOT NULL))));
CREATE INDEX standing_order_runs_payment ON standing_order_runs (interbank_payment_id) WHERE interbank_payment_id IS NOT NULL;

-- A payment nobody waits on (a standing order's run, an approved review) that the
-- switch aborts is told to its payer (sql/functions/interbank_settle*.sql).
ALTER TABLE notification_events DROP CONSTRAINT notification_events_kind_check;
ALTER TABLE notification_events ADD CONSTRAINT notification_events_kind_check
  CHECK (kind IN ('money.debit', 'money.credit', 'balance.low', 'security.new_device', 'security.mfa_enrolled',
                  'security.mfa_reset', 'account.status', 'key.verification', 'key.registered',
                  'payee.added', 'account.opened', 'account.owner_added', 'limit.raised',
                  'standing_order.refused', 'standing_order.skipped',
                  'review.held', 'review.approved', 'review.rejected', 'interbank.aborted')) NOT VALID;
ALTER TABLE notification_events VALIDATE CONSTRAINT notification_events_kind_check;

-- The runner's functions take the review rules and the bank's consortium id now (sql/functions/run_standing_order.sql):
-- the old signatures go, the new ones are applied from sql/functions/ after this.
DROP FUNCTION IF EXISTS run_standing_order(uuid, integer, integer, text);
DROP FUNCTION IF EXISTS retry_standing_order_run(uuid, text, integer, text);
DROP FUNCTION IF EXISTS standing_order_attempt(uuid, text, integer, integer, text);
