"""Recorder errors.

RecorderError
├── MalformedPacketError   an RTP/RTCP datagram or payload that cannot be parsed (dropped, counted)
├── ChunkFormatError       a stored chunk that is truncated or not ours (finalize stops at the damage)
├── EmptyRecordingError    nothing playable was recorded (the service marks the recording failed)
└── PortsExhaustedError    no free UDP port left in the configured range
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
