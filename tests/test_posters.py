"""Poster frames, made by the real ffmpeg from the imageio-ffmpeg wheel."""

import io
import os
import subprocess
import threading
import time

import pytest

from runway_simulator import SAMPLE_VIDEO
from videos import posters
from videos.posters import PosterError, poster_from_video

SAMPLE = SAMPLE_VIDEO  # 3 s, 640x360


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "not a whole JPEG"
    at = 2
    while at < len(data):
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xC3:  # SOF0..SOF3: precision, height, width
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")
        at += 2 + length
    raise AssertionError("no start-of-frame marker")


def test_poster_is_a_jpeg_of_the_video_size():
    assert jpeg_size(poster_from_video(SAMPLE)) == (640, 360)


def test_poster_is_scaled_to_the_width_keeping_the_ratio():
    assert jpeg_size(poster_from_video(SAMPLE, width=320)) == (320, 180)


def test_poster_from_a_file_object_matches_the_poster_from_its_path():
    with SAMPLE.open("rb") as video:
        from_file = poster_from_video(video, width=320)
    assert from_file == poster_from_video(str(SAMPLE), width=320)
    assert poster_from_video(io.BytesIO(SAMPLE.read_bytes()), width=320) == from_file


def test_poster_shows_the_frame_at_the_asked_time():
    assert poster_from_video(SAMPLE, at_seconds=1.5) != poster_from_video(SAMPLE, at_seconds=0)


def test_poster_past_the_end_falls_back_to_the_first_frame():
    first = poster_from_video(SAMPLE, at_seconds=0)
    assert poster_from_video(SAMPLE, at_seconds=10) == first
    assert poster_from_video(SAMPLE, at_seconds=2.99) == first  # after the last frame (2.958 s)


def test_poster_of_a_text_file_raises_poster_error(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(PosterError, match=r"ffmpeg could not make a poster: .*Invalid data"):
        poster_from_video(text)


def test_poster_of_an_empty_file_object_raises_poster_error():
    with pytest.raises(PosterError, match="could not make a poster"):
        poster_from_video(io.BytesIO(b""))


def test_poster_stops_ffmpeg_after_the_timeout(monkeypatch):
    seen = []

    class Hanging:
        pid = 4_194_305  # past any pid_max: renicing it fails quietly, as for a process already gone
        returncode = -9

        def __init__(self, command, **kwargs):
            self.killed = False

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return None

        def communicate(self, timeout=None):
            if not self.killed:
                seen.append(timeout)
                raise subprocess.TimeoutExpired("ffmpeg", timeout)
            return b"", b""

        def kill(self):
            self.killed = True

    monkeypatch.setattr(posters.subprocess, "Popen", Hanging)
    with pytest.raises(PosterError, match="took too long"):
        poster_from_video(SAMPLE, timeout=7)
    assert len(seen) == 1 and 6 < seen[0] <= 7  # no second try once the time is spent


def test_ffmpeg_runs_at_a_lower_cpu_priority_than_the_worker(monkeypatch, tmp_path):
    # A stand-in ffmpeg that answers a "JPEG" only once it sees itself reniced, and fails otherwise.
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\n"
        "for i in $(seq 250); do\n"
        "  [ \"$(cut -d' ' -f19 /proc/$$/stat)\" -ge 10 ] && { printf 'JPEG'; exit 0; }\n"
        "  sleep 0.02\n"
        "done\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(posters.imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(fake))
    assert poster_from_video(SAMPLE) == b"JPEG"
    assert os.getpriority(os.PRIO_PROCESS, 0) < 10  # the worker itself keeps its priority


def test_poster_stops_a_real_ffmpeg_that_hangs(tmp_path):
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)  # ffmpeg blocks opening it: nobody ever writes
    started = time.monotonic()
    with pytest.raises(PosterError, match="took too long"):
        poster_from_video(fifo, timeout=0.5)
    assert time.monotonic() - started < 5


def test_poster_without_an_ffmpeg_binary_raises_poster_error(monkeypatch):
    def missing():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(posters.imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(PosterError, match="ffmpeg is not available"):
        poster_from_video(SAMPLE)


def test_a_worker_process_runs_at_most_one_ffmpeg_per_core_and_says_when_busy(monkeypatch):
    # The worker's pool has dozens of threads; posters for all of them at once would each start an
    # ffmpeg. A stand-in ffmpeg holds until released, so the test sees what a further call does.
    limit = os.cpu_count() or 1
    entered, release = threading.Semaphore(0), threading.Event()

    def fake_ffmpeg(path, **kwargs):
        entered.release()
        release.wait(10)
        return subprocess.CompletedProcess([], 0, b"JPEG", b"")

    monkeypatch.setattr(posters, "_ffmpeg", fake_ffmpeg)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(poster_from_video(SAMPLE))) for _ in range(limit)]
    for thread in threads:
        thread.start()
    assert all(entered.acquire(timeout=5) for _ in range(limit))
    with pytest.raises(posters.PosterBusy):  # at once, not after waiting for a free one
        poster_from_video(SAMPLE)
    release.set()
    for thread in threads:
        thread.join(10)
    after = poster_from_video(SAMPLE)

    assert results == [b"JPEG"] * limit
    assert after == b"JPEG"  # each one ended gave its place back
