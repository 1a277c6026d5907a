-- Where the switch reaches each bank's switch-only listener (`host:port`),
-- as the bank registered it at start-up (PUT …/endpoint). NULL: never
-- registered, so the switch calls nothing and the bank votes and reads
-- decisions itself. The address only routes: TLS still checks that the
-- listener's certificate names the bank.
ALTER TABLE banks ADD COLUMN interbank_addr text CHECK (length(interbank_addr) BETWEEN 3 AND 255);
