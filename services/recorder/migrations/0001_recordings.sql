-- The recorder's projection of rooms and tracks (from room.events) and its Recording resources.
CREATE TABLE rooms (
    room_sid               text PRIMARY KEY,
    account_sid            text NOT NULL,
    room_name              text NOT NULL,
    room_type              text NOT NULL,
    status_callback        text,
    status_callback_method text NOT NULL,
    rules                  jsonb NOT NULL,      -- list of {type, all, publisher, track, kind}
    created_at             timestamptz NOT NULL,
    ended_at               timestamptz,
    finalized_at           timestamptz          -- RoomRecordingsFinalized emitted
);
CREATE INDEX rooms_unfinalized ON rooms (room_sid) WHERE finalized_at IS NULL;

CREATE TABLE tracks (
    track_sid            text PRIMARY KEY,
    room_sid             text NOT NULL,
    participant_sid      text NOT NULL,
    participant_identity text NOT NULL,
    track_name           text NOT NULL,
    kind                 text NOT NULL,
    codec                text,
    janus_publisher_id   text,
    stream_mid           text,
    published            boolean NOT NULL
);
CREATE INDEX tracks_room ON tracks (room_sid);

CREATE TABLE recordings (
    sid                    text PRIMARY KEY,
    account_sid            text NOT NULL,
    room_sid               text NOT NULL,
    room_name              text NOT NULL,
    room_type              text NOT NULL,
    participant_sid        text NOT NULL,
    participant_identity   text NOT NULL,
    source_sid             text NOT NULL,
    track_name             text NOT NULL,
    kind                   text NOT NULL,
    codec                  text NOT NULL,
    container              text NOT NULL,
    status                 text NOT NULL,       -- processing | completed | failed | deleted
    date_created           timestamptz NOT NULL,
    date_updated           timestamptz NOT NULL,
    offset_ms              bigint NOT NULL,
    prefix                 text NOT NULL,
    status_callback        text,
    status_callback_method text NOT NULL,
    capture_open           boolean NOT NULL,    -- RTP is (or should be) flowing into this recording
    owner_key              bigint,              -- advisory-lock key of the owning recorder process
    janus_room             text,                -- the Janus forwarder to stop when the owner is gone
    janus_publisher_id     text,
    janus_stream_id        bigint,
    duration_s             integer NOT NULL DEFAULT 0,
    size_bytes             bigint NOT NULL DEFAULT 0,
    object_key             text,
    start_time             timestamptz,
    end_time               timestamptz,
    deleted_at             timestamptz
);
-- At most one open capture per track, across every recorder process: the claim.
CREATE UNIQUE INDEX recordings_one_open_capture ON recordings (source_sid) WHERE capture_open;
CREATE INDEX recordings_account_created ON recordings (account_sid, date_created, sid);
CREATE INDEX recordings_room ON recordings (room_sid);
CREATE INDEX recordings_processing ON recordings (owner_key) WHERE status = 'processing';
