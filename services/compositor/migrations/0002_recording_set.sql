-- The recorder announces when a room's recording set is final (RoomRecordingsFinalized); hook requests may
-- name the recordings to wait for (CompositionRequested.recording_sids).
ALTER TABLE rooms ADD COLUMN recordings_finalized boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN recording_sids text[] NOT NULL DEFAULT '{}';
