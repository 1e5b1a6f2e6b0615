-- When the compositor learnt that a room is over: without RoomRecordingsFinalized, a job waits a short
-- settle time after that so recording facts (another topic) can catch up.
ALTER TABLE rooms ADD COLUMN ended_seen_at timestamptz;
UPDATE rooms SET ended_seen_at = updated_at WHERE status <> 'in-progress';
