-- Phase two records an outgoing payment's payee in the same write as its
-- decision (sql/functions/interbank_settle_many.sql): the function takes the
-- payees now. The old signature goes; the new one is applied from
-- sql/functions/ after this.
DROP FUNCTION IF EXISTS interbank_settle_many(text[], text[], text[]);
