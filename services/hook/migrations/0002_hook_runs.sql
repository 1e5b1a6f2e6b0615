-- One row per (hook, room) the hook service acted on: a room is never composed twice by the same hook.
CREATE TABLE hook_runs (
    hook_sid        text NOT NULL,
    room_sid        text NOT NULL,
    account_sid     text NOT NULL,
    composition_sid text,
    outcome         text NOT NULL,   -- 'requested' | 'failed'
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (hook_sid, room_sid)
);
