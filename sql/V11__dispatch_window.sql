-- The dispatcher's claim looks only at the oldest pending deliveries (a
-- prefix by id), not at the whole backlog every round (issue 7): under load
-- a backlog of tens of thousands was scanned and sorted up to five times a
-- second. A prefix by id holds a prefix of every recipient's queue, so the
-- order rule (a delivery goes only when every older one of its queue is due)
-- is decided the same way on it.
CREATE INDEX notification_deliveries_pending ON notification_deliveries (id) WHERE status = 'pending';
