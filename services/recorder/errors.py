"""Recorder errors.

RecorderError
├── MalformedPacketError   an RTP/RTCP datagram or payload that cannot be parsed (dropped, counted)
├── ChunkFormatError       a stored chunk that is truncated or not ours (finalize skips it: a gap)
├── EmptyRecordingError    nothing playable was recorded (the service marks the recording failed)
├── PortsExhaustedError    no free UDP port left in the configured range
└── UploadIncompleteError  chunks not stored by the stop deadline (object store unreachable)
"""


class RecorderError(Exception):
    """Base of every recorder media-core error."""


class MalformedPacketError(RecorderError):
    """A datagram or payload that does not parse."""


class ChunkFormatError(RecorderError):
    """A chunk object that is truncated, corrupt or of an unknown version."""


class EmptyRecordingError(RecorderError):
    """No media (or no decodable media, e.g. video without any keyframe) was recorded."""


class PortsExhaustedError(RecorderError):
    """The UDP port range has no free port left."""


class UploadIncompleteError(RecorderError):
    """Sealed chunks could not be uploaded before the deadline; the uploaded ones stay recoverable."""
