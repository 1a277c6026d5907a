-- The settlement account in shards, like the vault (sql/V1): every
-- inter-bank payment's phase two updates it, and a single row serialized
-- them all behind one row lock held through each commit's synchronous
-- replication (measured: interbank_settle averaged 20 ms, nearly all of it
-- waiting, and payments stalled near 85/s). The bank's settlement balance is
-- the sum of its shards.
-- The old rule first: under it a settlement row with a shard is invalid.
ALTER TABLE accounts DROP CONSTRAINT vaults_have_shards;
UPDATE accounts SET vault_shard = 0 WHERE kind = 'settlement' AND vault_shard IS NULL;
ALTER TABLE accounts ADD CONSTRAINT vaults_have_shards CHECK ((kind IN ('vault', 'settlement')) = (vault_shard IS NOT NULL));
DROP INDEX accounts_one_settlement;
CREATE UNIQUE INDEX accounts_settlement_shards ON accounts (currency, vault_shard) WHERE kind = 'settlement';
