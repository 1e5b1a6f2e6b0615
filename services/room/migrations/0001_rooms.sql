-- Group Rooms: rooms (configuration + lifecycle state + timer deadline), participants and their
-- subscribe rules, published tracks. Written only by the room service.

CREATE TABLE IF NOT EXISTS rooms (
    sid                       text PRIMARY KEY,
    account_sid               text NOT NULL,
    unique_name               text,
    status                    text NOT NULL,
    spec                      jsonb NOT NULL,
    recording_rules           jsonb NOT NULL DEFAULT '[]'::jsonb,
    recording_rules_updated   timestamptz,
    janus_secret              text NOT NULL,
    ad_hoc                    boolean NOT NULL DEFAULT false,
    date_created              timestamptz NOT NULL,
    date_updated              timestamptz NOT NULL,
    end_time                  timestamptz,
    end_reason                text,
    ever_joined               boolean NOT NULL DEFAULT false,
    emptied_at                timestamptz,
    next_sequence             integer NOT NULL DEFAULT 0,
    next_deadline             timestamptz
);

-- 53113: a UniqueName is unique among the account's in-progress rooms.
CREATE UNIQUE INDEX IF NOT EXISTS rooms_in_progress_name
    ON rooms (account_sid, unique_name) WHERE status = 'in-progress' AND unique_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS rooms_account_created ON rooms (account_sid, date_created, sid);
CREATE INDEX IF NOT EXISTS rooms_due ON rooms (next_deadline) WHERE status = 'in-progress';

CREATE TABLE IF NOT EXISTS participants (
    sid                       text PRIMARY KEY,
    room_sid                  text NOT NULL REFERENCES rooms (sid),
    account_sid               text NOT NULL,
    identity                  text NOT NULL,
    status                    text NOT NULL,
    date_created              timestamptz NOT NULL,
    date_updated              timestamptz NOT NULL,
    start_time                timestamptz NOT NULL,
    end_time                  timestamptz,
    duration                  integer,
    subscribe_rules           jsonb,
    subscribe_rules_updated   timestamptz
);
CREATE INDEX IF NOT EXISTS participants_room ON participants (room_sid, date_created, sid);

CREATE TABLE IF NOT EXISTS tracks (
    sid                       text PRIMARY KEY,
    room_sid                  text NOT NULL REFERENCES rooms (sid),
    participant_sid           text NOT NULL REFERENCES participants (sid),
    name                      text NOT NULL,
    kind                      text NOT NULL,
    mid                       text NOT NULL,
    codec                     text,
    enabled                   boolean NOT NULL DEFAULT true,
    published                 boolean NOT NULL DEFAULT true,
    date_created              timestamptz NOT NULL,
    date_updated              timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_participant ON tracks (participant_sid, date_created, sid);
CREATE INDEX IF NOT EXISTS tracks_room ON tracks (room_sid) WHERE published;
