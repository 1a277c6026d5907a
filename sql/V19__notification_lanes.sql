-- Issue 17, a busy recipient: security notices never wait behind money messages,
-- and a recipient's money SMS / e-mail backlog goes out as one digest.
--
-- `critical` copies the event's flag onto its deliveries, so that the dispatcher
-- keeps two lanes per recipient and channel (server/src/notify/dispatch.rs): the
-- critical lane is claimed on its own, through its own small index, and never
-- queues behind the ordinary one. Order holds within a lane.
--
-- 'coalesced': a money message that reached its recipient inside a digest (the
-- delivery of the digest itself is the last one it covers, marked 'sent');
-- `carried_by` names that delivery, so that each event's delivery time is known.

ALTER TABLE notification_deliveries ADD COLUMN critical boolean NOT NULL DEFAULT false;
ALTER TABLE notification_deliveries ADD COLUMN carried_by bigint;

UPDATE notification_deliveries d SET critical = true
  FROM notification_events e
 WHERE e.id = d.event_id AND e.critical AND d.status = 'pending';

ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_status_check;
ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_status_check
  CHECK (status IN ('pending', 'sent', 'dead', 'coalesced'));

CREATE INDEX notification_deliveries_pending_critical ON notification_deliveries (id) WHERE status = 'pending' AND critical;
