-- Two partial indexes of pending deliveries that no query uses any more:
-- since V11 the dispatcher claims from a window of the oldest pending
-- deliveries by id (notification_deliveries_pending) and orders each
-- recipient's queue and checks due times inside that window. Every money
-- event inserted an entry into both (four per transfer), for nothing.
DROP INDEX notification_deliveries_due;
DROP INDEX notification_deliveries_queue;
