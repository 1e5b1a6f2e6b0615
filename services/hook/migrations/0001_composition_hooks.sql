-- Composition Hooks: composition templates applied to every completed Group Room of the account.
CREATE TABLE composition_hooks (
    sid                    text PRIMARY KEY,
    account_sid            text NOT NULL,
    friendly_name          text NOT NULL,
    enabled                boolean NOT NULL,
    video_layout           jsonb NOT NULL,
    audio_sources          text[] NOT NULL,
    audio_sources_excluded text[] NOT NULL,
    resolution             text NOT NULL,
    format                 text NOT NULL,
    trim                   boolean NOT NULL,
    status_callback        text,
    status_callback_method text NOT NULL,
    date_created           timestamptz NOT NULL,
    date_updated           timestamptz
);
-- FriendlyName is unique within the account, compared case-insensitively (as the list filter is).
CREATE UNIQUE INDEX composition_hooks_friendly_name ON composition_hooks (account_sid, lower(friendly_name));
CREATE INDEX composition_hooks_account_created ON composition_hooks (account_sid, date_created, sid);
