-- The payer's memo travels to the payee (the payee bank shows it with the credit).
ALTER TABLE payments ADD COLUMN memo text NOT NULL DEFAULT '' CHECK (length(memo) <= 140);
