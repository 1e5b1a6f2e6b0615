-- /v1/RecordingSettings/Default: one row per account (stored; external S3 and encryption are refused).
CREATE TABLE recording_settings (
    account_sid          text PRIMARY KEY,
    friendly_name        text NOT NULL,
    aws_credentials_sid  text,
    aws_s3_url           text,
    aws_storage_enabled  boolean NOT NULL,
    encryption_key_sid   text,
    encryption_enabled   boolean NOT NULL,
    date_updated         timestamptz NOT NULL
);
