"""End-to-end media tests: synthesize tiny recordings, compose, decode the output and check colours per tile
over time, tones, sync, trim, formats and determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from services.compositor.errors import NoSourcesError
from services.compositor.job import CompositionJob, EncoderOptions, SourceTrack
from services.compositor.media_io import DecodedOutput, decode_output
from services.compositor.render import compose
from services.compositor.tests.media.synth import COLOURS, write_audio, write_video

pytestmark = pytest.mark.media

BLACK = (16, 128, 128)
Frame = npt.NDArray[np.uint8]


def colour_at(frame: Frame, x: int, y: int, width: int, height: int) -> tuple[int, int, int]:
    """Mean Y, U, V of a 4x4 (2x2 chroma) patch around (x, y) of a decoded (H*3/2, W) yuv420p frame."""
    flat = frame.reshape(-1)
    luma = width * height
    u = flat[luma : luma + luma // 4].reshape(height // 2, width // 2)
    v = flat[luma + luma // 4 :].reshape(height // 2, width // 2)
    ys = frame[y - 2 : y + 2, x - 2 : x + 2].mean()
    us = u[y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean()
    vs = v[y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean()
    return round(float(ys)), round(float(us)), round(float(vs))


def is_colour(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 14) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def frame_at(out: DecodedOutput, t: float) -> Frame:
    return min(out.frames, key=lambda item: abs(item[0] - t))[1]


def dominant_hz(samples: npt.NDArray[np.float32], rate: int = 48000) -> set[int]:
    """Frequencies (rounded to 10 Hz) whose FFT magnitude is above a third of the peak."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    peaks = freqs[spectrum > spectrum.max() / 3]
    return {int(round(f / 10) * 10) for f in peaks}


def job(**kwargs: object) -> CompositionJob:
    defaults: dict[str, object] = {"resolution": "320x240", "format": "mp4"}
    defaults.update(kwargs)
    encoder = defaults.pop("encoder", EncoderOptions(max_hold_ms=500))
    return CompositionJob.create(encoder=encoder, **defaults)  # type: ignore[arg-type]  # test shorthand


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    write_video(root / "red.mkv", [(0, 4, "red", 160, 120)])
    write_video(root / "blue-wide.mkv", [(0, 3, "blue", 320, 180)])  # 16:9 into a 4:3 cell: letterbox
    write_video(root / "green-gap.mkv", [(0, 1, "green", 160, 120), (2.5, 4, "green", 160, 120)])
    write_video(root / "white.mkv", [(0, 2, "white", 160, 120)])
    write_video(root / "yellow.mkv", [(0, 2, "yellow", 160, 120)])
    write_video(root / "resize.mkv", [(0, 2, "magenta", 160, 120), (2, 4, "magenta", 320, 120)])
    write_audio(root / "a440.mka", [(0, 4, 440.0)])
    write_audio(root / "a1000.mka", [(0, 3, 1000.0)])
    return root


def test_grid_late_joiner_gap_and_letterbox(media: Path, tmp_path: Path) -> None:
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "alice", 1000),
        SourceTrack(str(media / "blue-wide.mkv"), "video", "bob", 2000),  # joins 1 s late
        SourceTrack(str(media / "green-gap.mkv"), "video", "carol", 1000),  # gap 1..2.5 s
    ]
    out_path = tmp_path / "grid.mp4"
    result = compose(job(video_layout={"grid": {"video_sources": ["*"]}}), sources, out_path, workers=1)
    assert result.has_video and not result.has_audio
    assert result.duration == 4 and result.size == out_path.stat().st_size and result.bitrate_kbps > 0
    out = decode_output(out_path)
    assert out.video_codec == "h264" and out.audio_codec is None
    assert abs(len(out.frames) - 120) <= 1
    # 2x2 grid of 160x120 cells: alice cell 0, carol cell 1 (same start, key order), bob cell 2 (later start)
    early, mid, late = frame_at(out, 0.5), frame_at(out, 2.0), frame_at(out, 3.5)
    assert is_colour(colour_at(early, 80, 60, 320, 240), COLOURS["red"])
    assert is_colour(colour_at(early, 240, 60, 320, 240), COLOURS["green"])
    assert is_colour(colour_at(early, 80, 180, 320, 240), BLACK)  # bob has not joined yet
    assert is_colour(colour_at(mid, 80, 180, 320, 240), COLOURS["blue"])
    assert is_colour(colour_at(mid, 80, 126, 320, 240), BLACK)  # letterbox bar above the 160x90 picture
    assert is_colour(colour_at(mid, 80, 234, 320, 240), BLACK)  # and below
    assert is_colour(colour_at(mid, 240, 60, 320, 240), BLACK)  # carol's gap, beyond the 0.5 s hold
    assert is_colour(colour_at(late, 240, 60, 320, 240), COLOURS["green"])  # carol is back
    assert is_colour(colour_at(late, 240, 180, 320, 240), BLACK)  # cell 3 never used


@pytest.mark.parametrize(
    ("reuse", "at_1_5", "at_2_5"),
    [("show_oldest", "white", "yellow"), ("show_newest", "yellow", "yellow"), ("none", "white", None)],
)
def test_reuse_modes(media: Path, tmp_path: Path, reuse: str, at_1_5: str, at_2_5: str | None) -> None:
    # example G scaled: red 0-4 s, white 0.5-2.5 s, yellow 1-3 s in a 1x2 region
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "c", 0),
        SourceTrack(str(media / "white.mkv"), "video", "a", 500),
        SourceTrack(str(media / "yellow.mkv"), "video", "b", 1000),
    ]
    layout = {"r": {"max_rows": 1, "max_columns": 2, "reuse": reuse, "video_sources": ["*"]}}
    out_path = tmp_path / f"{reuse}.mp4"
    compose(job(video_layout=layout), sources, out_path, workers=1)
    out = decode_output(out_path)
    # 1x2 grid: cells are 160x240, a 160x120 source sits centred at y 60..180
    assert is_colour(colour_at(frame_at(out, 1.5), 80, 120, 320, 240), COLOURS["red"])
    assert is_colour(colour_at(frame_at(out, 1.5), 240, 120, 320, 240), COLOURS[at_1_5])
    expected = COLOURS[at_2_5] if at_2_5 else BLACK
    assert is_colour(colour_at(frame_at(out, 2.7), 240, 120, 320, 240), expected)
    assert is_colour(colour_at(frame_at(out, 3.5), 240, 120, 320, 240), BLACK)


def test_z_order_cells_excluded_and_exclusions(media: Path, tmp_path: Path) -> None:
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "alice", 0),
        SourceTrack(str(media / "white.mkv"), "video", "bob", 0),
        SourceTrack(str(media / "yellow.mkv"), "video", "screen", 0),
    ]
    layout = {
        "pip": {
            "z_pos": 5,
            "x_pos": 200,
            "y_pos": 140,
            "width": 80,
            "height": 60,
            "video_sources": ["screen"],
        },
        "grid": {
            "z_pos": 1,
            "cells_excluded": [0],
            "video_sources": ["*"],
            "video_sources_excluded": ["screen"],
        },
    }
    out_path = tmp_path / "z.mp4"
    compose(job(video_layout=layout), sources, out_path, workers=1)
    frame = frame_at(out_path_decoded := decode_output(out_path), 1.0)
    assert out_path_decoded.frames
    # grid: n = 2 sources + 1 excluded = 3 -> 2x2; cell 0 excluded, alice cell 1, bob cell 2, cell 3 black
    assert is_colour(colour_at(frame, 80, 60, 320, 240), BLACK)
    assert is_colour(colour_at(frame, 240, 60, 320, 240), COLOURS["red"])
    assert is_colour(colour_at(frame, 80, 180, 320, 240), COLOURS["white"])
    # the pip (z 5) covers part of cell 3 and is drawn on top of the grid (z 1)
    assert is_colour(colour_at(frame, 240, 170, 320, 240), COLOURS["yellow"])
    assert is_colour(colour_at(frame, 300, 220, 320, 240), BLACK)


def test_audio_mix_tones_and_av_sync(media: Path, tmp_path: Path) -> None:
    flash = write_video(tmp_path / "flash.mkv", [(0, 2, "red", 160, 120), (2, 3, "white", 160, 120)])
    beep = write_audio(tmp_path / "beep.mka", [(2, 3, 2000.0)], amplitude=0.5)
    sources = [
        SourceTrack(str(flash), "video", "cam", 1000),
        SourceTrack(str(beep), "audio", "mic", 1000),
        SourceTrack(str(media / "a440.mka"), "audio", "a", 1000),
        SourceTrack(str(media / "a1000.mka"), "audio", "b", 1000),
    ]
    out_path = tmp_path / "av.mp4"
    result = compose(
        job(video_layout={"grid": {"video_sources": ["*"]}}, audio_sources=["a", "mic", "b"]),
        sources,
        out_path,
        workers=1,
    )
    assert result.has_audio and result.has_video
    out = decode_output(out_path)
    assert out.audio_codec == "aac"
    assert {440, 1000} <= dominant_hz(out.audio[24000:72000])
    assert 2000 not in dominant_hz(out.audio[24000:72000])
    assert 2000 in dominant_hz(out.audio[int(2.2 * 48000) : int(2.8 * 48000)])
    # sync: first white frame vs onset of the 2 kHz burst (isolated with a crude band-pass: difference filter)
    white_at = next(t for t, f in out.frames if is_colour(colour_at(f, 160, 120, 320, 240), COLOURS["white"]))
    hp = np.abs(np.diff(out.audio, n=2))
    envelope = np.convolve(hp, np.ones(240) / 240, mode="same")
    onset = int(np.argmax(envelope > envelope[int(2.4 * 48000)] / 2)) / 48000
    assert abs(white_at - onset) <= 1 / 30 + 0.005


def test_trim_removes_the_empty_interval(media: Path, tmp_path: Path) -> None:
    sources = [
        SourceTrack(str(media / "white.mkv"), "video", "first", 0),  # 0-2 s
        SourceTrack(str(media / "yellow.mkv"), "video", "second", 5000),  # 5-7 s
    ]
    layout = {"one": {"max_rows": 1, "max_columns": 1, "video_sources": ["*"]}}
    trimmed = compose(job(video_layout=layout, trim=True), sources, tmp_path / "t.mp4", workers=1)
    assert abs(trimmed.duration_s - 4.0) < 0.1
    out = decode_output(tmp_path / "t.mp4")
    assert is_colour(colour_at(frame_at(out, 1.9), 160, 120, 320, 240), COLOURS["white"])
    assert is_colour(colour_at(frame_at(out, 2.1), 160, 120, 320, 240), COLOURS["yellow"])
    full = compose(job(video_layout=layout, trim=False), sources, tmp_path / "f.mp4", workers=1)
    assert abs(full.duration_s - 7.0) < 0.1
    gap = decode_output(tmp_path / "f.mp4")
    assert is_colour(colour_at(frame_at(gap, 3.5), 160, 120, 320, 240), BLACK)


@pytest.mark.parametrize(
    ("fmt", "video_codec", "audio_codec"), [("mp4", "h264", "aac"), ("webm", "vp8", "opus")]
)
def test_formats_and_audio_only(
    media: Path, tmp_path: Path, fmt: str, video_codec: str, audio_codec: str
) -> None:
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "cam", 0),
        SourceTrack(str(media / "a440.mka"), "audio", "mic", 0),
    ]
    both = tmp_path / f"both.{fmt}"
    compose(job(video_layout={"g": {"video_sources": ["*"]}}, audio_sources=["*"], format=fmt), sources, both)
    decoded = decode_output(both)
    assert (decoded.video_codec, decoded.audio_codec) == (video_codec, audio_codec)
    assert is_colour(colour_at(frame_at(decoded, 1.0), 160, 120, 320, 240), COLOURS["red"])
    audio_only = tmp_path / f"audio.{fmt}"
    result = compose(job(audio_sources=["mic"], format=fmt), sources, audio_only)
    assert not result.has_video and result.has_audio and result.video_frames == 0
    decoded = decode_output(audio_only)
    assert decoded.video_codec is None and decoded.audio_codec == audio_codec
    assert 440 in dominant_hz(decoded.audio[48000:96000])
    assert abs(decoded.audio.size / 48000 - 4.0) < 0.1


def test_resolution_change_mid_track(media: Path, tmp_path: Path) -> None:
    sources = [SourceTrack(str(media / "resize.mkv"), "video", "cam", 0)]
    out_path = tmp_path / "resize.mp4"
    compose(job(video_layout={"g": {"video_sources": ["*"]}}), sources, out_path, workers=1)
    out = decode_output(out_path)
    before, after = frame_at(out, 1.0), frame_at(out, 3.0)
    assert is_colour(colour_at(before, 160, 10, 320, 240), COLOURS["magenta"])  # 4:3 fills the canvas
    assert is_colour(colour_at(after, 160, 120, 320, 240), COLOURS["magenta"])
    assert is_colour(colour_at(after, 160, 10, 320, 240), BLACK)  # 8:3 is letterboxed: bars on top


def test_no_matching_sources_is_53630(media: Path, tmp_path: Path) -> None:
    sources = [SourceTrack(str(media / "red.mkv"), "video", "cam", 0)]
    with pytest.raises(NoSourcesError) as info:
        compose(job(video_layout={"g": {"video_sources": ["nobody"]}}), sources, tmp_path / "x.mp4")
    assert info.value.code == 53630


def test_deterministic_and_parallel_chunks_match_single_worker(media: Path, tmp_path: Path) -> None:
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "alice", 0),
        SourceTrack(str(media / "blue-wide.mkv"), "video", "bob", 700),
        SourceTrack(str(media / "green-gap.mkv"), "video", "carol", 0),
        SourceTrack(str(media / "a440.mka"), "audio", "mic", 0),
    ]
    small_chunks = EncoderOptions(chunk_seconds=1, max_hold_ms=500)
    layout = {"grid": {"video_sources": ["*"]}}
    outputs = []
    for name, workers in (("one-a", 1), ("one-b", 1), ("two", 2)):
        path = tmp_path / f"{name}.mp4"
        compose(
            job(video_layout=layout, audio_sources=["*"], encoder=small_chunks),
            sources,
            path,
            workers=workers,
        )
        outputs.append(decode_output(path))
    first = outputs[0]
    assert len(first.frames) in (120, 121)  # the Opus track ends a few ms after the video
    assert is_colour(colour_at(first.frames[0][1], 80, 60, 320, 240), COLOURS["red"])
    for other in outputs[1:]:
        assert len(other.frames) == len(first.frames)
        for (t1, f1), (t2, f2) in zip(first.frames, other.frames, strict=True):
            assert t1 == t2
            assert np.array_equal(f1, f2)
        assert np.array_equal(first.audio, other.audio)
    # the chunked render shows the right pictures across chunk boundaries too
    assert is_colour(colour_at(frame_at(first, 2.0), 80, 180, 320, 240), COLOURS["blue"])
    assert is_colour(colour_at(frame_at(first, 1.0), 80, 60, 320, 240), COLOURS["red"])


def test_cli_composes_a_twilio_recordings_directory(media: Path, tmp_path: Path) -> None:
    import argparse
    import io
    import json
    import shutil

    from services.compositor import cli

    room = tmp_path / "room"
    room.mkdir()
    for sid, src, kind, name, offset in (
        ("RT" + "1" * 32, "red.mkv", "video", "alice-cam", 1000),
        ("RT" + "2" * 32, "a440.mka", "audio", "alice-mic", 1000),
        ("RT" + "3" * 32, "white.mkv", "video", "bob-cam", 2000),
    ):
        shutil.copy(media / src, room / f"{sid}{Path(src).suffix}")
        meta = {"sid": sid, "type": kind, "track_name": name, "offset": offset, "codec": "VP8"}
        (room / f"{sid}.json").write_text(json.dumps(meta))
    err = io.StringIO()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "out.webm"
    code = cli.run(
        parser.parse_args([str(room), "-o", str(out), "--layout", "speaker", "--resolution", "320x240"]), err
    )
    assert code == cli.EXIT_OK, err.getvalue()
    assert "100.0%" in err.getvalue() and "kbit/s" in err.getvalue()
    decoded = decode_output(out)
    assert (decoded.video_codec, decoded.audio_codec) == ("vp8", "opus")
    # speaker: alice (earliest) fills the canvas, bob appears in the picture-in-picture at the bottom right
    assert is_colour(colour_at(frame_at(decoded, 1.5), 100, 100, 320, 240), COLOURS["red"])
    assert is_colour(colour_at(frame_at(decoded, 1.5), 260, 200, 320, 240), COLOURS["white"])
    code = cli.run(
        parser.parse_args(
            [
                str(room),
                "-o",
                str(out),
                "--layout",
                '{"g": {"video_sources": ["zed"]}}',
                "--audio-sources",
                "zed",
                "--quiet",
            ]
        ),
        err,
    )
    assert code == cli.EXIT_NO_SOURCES and "53630" in err.getvalue()


def test_unreadable_source_is_a_media_error(media: Path, tmp_path: Path) -> None:
    from services.compositor.errors import MediaError, PermanentError

    garbage = tmp_path / "RTbroken.mkv"
    garbage.write_bytes(bytes(range(256)) * 64)
    sources = [
        SourceTrack(str(media / "red.mkv"), "video", "cam", 0),
        SourceTrack(str(garbage), "video", "broken", 0),
    ]
    with pytest.raises(MediaError) as info:
        compose(job(video_layout={"g": {"video_sources": ["*"]}}), sources, tmp_path / "x.mp4")
    assert isinstance(info.value, PermanentError) and "RTbroken.mkv" in info.value.message
