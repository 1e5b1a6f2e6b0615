-- The compositor's own tables: projections of room and recording facts, compositions, and the job queue.

-- Rooms as learnt from room.events (and recording.events, which may arrive first).
CREATE TABLE rooms (
    room_sid     text PRIMARY KEY,
    account_sid  text NOT NULL,
    room_name    text,
    status       text NOT NULL,              -- in-progress | completed | failed
    end_time     timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per recorded track, from recording.events.
CREATE TABLE recordings (
    recording_sid   text PRIMARY KEY,
    room_sid        text NOT NULL,
    account_sid     text NOT NULL,
    participant_sid text NOT NULL,
    source_sid      text NOT NULL,
    track_name      text NOT NULL,
    kind            text NOT NULL,           -- audio | video
    codec           text NOT NULL,
    container       text NOT NULL,
    status          text NOT NULL,           -- started | completed | failed | deleted
    object_key      text,
    offset_ms       bigint NOT NULL DEFAULT 0,
    duration_s      integer,
    size_bytes      bigint,
    start_time      timestamptz,
    end_time        timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_room ON recordings (room_sid);

CREATE TABLE compositions (
    sid                    text PRIMARY KEY,
    account_sid            text NOT NULL,
    room_sid               text NOT NULL,
    status                 text NOT NULL,    -- enqueued | processing | completed | failed | deleted
    hook_sid               text,
    hook_friendly_name     text,
    video_layout           jsonb NOT NULL,
    audio_sources          text[] NOT NULL,
    audio_sources_excluded text[] NOT NULL,
    resolution             text NOT NULL,
    format                 text NOT NULL,
    trim                   boolean NOT NULL,
    status_callback        text,
    status_callback_method text NOT NULL,
    bitrate                integer NOT NULL DEFAULT 0,
    size                   bigint NOT NULL DEFAULT 0,
    duration               integer NOT NULL DEFAULT 0,
    object_key             text,
    progress_reported      integer NOT NULL DEFAULT 0,
    error_code             integer,
    error_message          text,
    date_created           timestamptz NOT NULL,
    date_completed         timestamptz,
    date_deleted           timestamptz
);
CREATE INDEX compositions_account_created ON compositions (account_sid, date_created, sid);
CREATE INDEX compositions_deleted ON compositions (date_deleted) WHERE status = 'deleted';

-- The durable work queue fed by composition.jobs. A job is claimed with a lease (lease_id, lease_expires);
-- an expired lease may be claimed by any instance.
CREATE TABLE jobs (
    composition_sid text PRIMARY KEY,
    account_sid     text NOT NULL,
    room_sid        text NOT NULL,
    state           text NOT NULL,           -- queued | running | done
    attempts        integer NOT NULL DEFAULT 0,
    lease_id        uuid,
    lease_owner     text,
    lease_expires   timestamptz,
    enqueued_at     timestamptz NOT NULL,
    finished_at     timestamptz
);
CREATE INDEX jobs_open ON jobs (account_sid, enqueued_at) WHERE state <> 'done';

-- When each account was last served by a claim: the round-robin order across accounts.
CREATE TABLE account_turns (
    account_sid     text PRIMARY KEY,
    last_claimed_at timestamptz NOT NULL
);
