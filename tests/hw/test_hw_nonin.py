"""The Nonin OEM III adapter: the real pyserial reader on a real pty, against an emulator
that speaks Serial Data Format #2 byte for byte (corrupted frames and an unplug too)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from nonin_emulator import (
    ARTIFACT,
    GREEN_PERFUSION,
    OUT_OF_TRACK,
    SENSOR_ALARM,
    SENSOR_DISCONNECT,
    NoninEmulator,
    packet,
)

from pca.controller.ports import VitalsReading
from pca.controller.respiratory import RespiratoryWatch
from pca.hw.nonin import GPRF, NoninDecoder, NoninOximeter, encode_packet
from pca.therapy.monitoring import MonitorSettings

S = 1_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 1000 * S

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def line() -> Iterator[tuple[NoninEmulator, NoninOximeter, FakeClock]]:
    emulator = NoninEmulator()
    clock = FakeClock()
    oximeter = NoninOximeter(emulator.path, period_ns=0, clock=clock, reopen_s=0.05)
    oximeter.start()
    # Opening the line flushes what was waiting (pyserial), as a module streaming all the
    # time would not notice: start the emulator's bytes once the adapter is listening.
    wait_for(lambda: oximeter.connected)
    try:
        yield emulator, oximeter, clock
    finally:
        oximeter.close()
        emulator.close()


def wait_for(what: Callable[[], bool], timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting on the serial line")
        time.sleep(0.01)


def collect_until(oximeter: NoninOximeter, marker: dict[str, int]) -> list[VitalsReading]:
    """Every reading up to and including the first with the marker's values."""
    got: list[VitalsReading] = []

    def seen() -> bool:
        got.extend(oximeter.poll(10**20))
        return any(r.values == marker for r in got)

    wait_for(seen)
    return got


MARKER = {"spo2": 93, "pulse": 61}


# ---- the bytes themselves ---------------------------------------------------------------
def test_encoder_matches_the_independent_emulator_byte_for_byte() -> None:
    pleth = [(n * 9) % 256 for n in range(1, 26)]
    for spo2, hr in ((97, 72), (85, 150), (100, 321), (0, 18)):
        assert encode_packet(spo2, hr, status=GPRF, pleth=pleth) == packet(spo2, hr)


def test_decoder_reads_spo2_d_and_a_9_bit_pulse() -> None:
    decoder = NoninDecoder()
    assert decoder.feed(packet(88, 200)) == [{"spo2": 88, "pulse": 200}]
    assert decoder.counts.packets == 1 and decoder.counts.framing_errors == 0


@pytest.mark.parametrize("flag", [SENSOR_DISCONNECT, ARTIFACT, OUT_OF_TRACK, SENSOR_ALARM])
def test_decoder_flagged_packets_are_never_a_reading(flag: int) -> None:
    decoder = NoninDecoder()
    assert decoder.feed(packet(97, 72, status=GREEN_PERFUSION | flag)) == []
    assert sum(decoder.counts.flagged.values()) == 1
    assert decoder.feed(packet(**{"spo2": 93, "hr": 61})) == [MARKER]


def test_decoder_no_data_codes_and_out_of_range_values_are_not_readings() -> None:
    decoder = NoninDecoder()
    assert decoder.feed(packet(127, 72)) == [{"pulse": 72}]  # SpO2 "no data"
    assert decoder.feed(packet(97, 511)) == [{"spo2": 97}]  # HR "no data"
    assert decoder.feed(packet(101, 10)) == []  # outside 0-100 % and 18-321 /min
    assert decoder.counts.no_data == 2 and decoder.counts.out_of_range == 2


def test_decoder_resyncs_after_garbage_split_across_reads() -> None:
    decoder = NoninDecoder()
    stream = b"\x80\x01\x02\xff" + packet(96, 70) + packet(95, 71)
    got = []
    for i in range(0, len(stream), 7):  # bytes arrive in arbitrary pieces
        got += decoder.feed(stream[i:i + 7])
    assert got == [{"spo2": 96, "pulse": 70}, {"spo2": 95, "pulse": 71}]
    assert decoder.counts.resync_bytes == 4


# ---- the real adapter on a real pty -----------------------------------------------------
def test_pty_good_packets_give_readings_with_their_time(line) -> None:
    emulator, oximeter, clock = line
    emulator.send(packet(97, 72))
    got = collect_until(oximeter, {"spo2": 97, "pulse": 72})
    assert got[-1].t_ns == clock.now_ns and oximeter.connected


def test_pty_bad_checksum_never_gives_a_reading(line) -> None:
    emulator, oximeter, _ = line
    bad = bytearray(packet(80, 140))
    bad[5 * 8 + 4] ^= 0x01  # the CHK of frame 9, the frame that carries SpO2-D
    emulator.send(bytes(bad) + packet(93, 61))
    got = collect_until(oximeter, MARKER)
    assert [r.values for r in got] == [MARKER]
    assert oximeter.decoder.counts.framing_errors >= 1


def test_pty_truncated_frame_never_gives_a_reading(line) -> None:
    emulator, oximeter, _ = line
    cut = packet(80, 140)[:5 * 12 + 3]  # 12 frames and 3 bytes of the 13th
    emulator.send(cut + packet(80, 140)[5 * 13:] + packet(93, 61))
    got = collect_until(oximeter, MARKER)
    assert [r.values for r in got] == [MARKER]
    counts = oximeter.decoder.counts
    assert counts.framing_errors + counts.short_packets >= 1


@pytest.mark.parametrize("flag", [SENSOR_DISCONNECT, SENSOR_ALARM, ARTIFACT])
def test_pty_sensor_off_no_finger_artifact_never_give_a_reading(line, flag: int) -> None:
    emulator, oximeter, _ = line
    emulator.send(packet(80, 140, status=flag) * 3 + packet(93, 61))
    got = collect_until(oximeter, MARKER)
    assert [r.values for r in got] == [MARKER]


def test_pty_a_30_s_gap_raises_monitor_lost(line) -> None:
    emulator, oximeter, clock = line
    settings = MonitorSettings(spo2_min=90, etco2_max_mmhg=None, rr_min=None, stale_s=30)
    watch = RespiratoryWatch(settings, clock.now_ns)
    for _ in range(5):  # five seconds of readings, one a second
        clock.now_ns += S
        emulator.send(packet(96, 70))
        for r in collect_until(oximeter, {"spo2": 96, "pulse": 70}):
            watch.feed(r, r.t_ns)
    last = clock.now_ns
    # The module falls silent (sensor flags only: the line is alive, no reading comes).
    emulator.send(packet(96, 70, status=SENSOR_DISCONNECT) * 3 + packet(93, 61,
                                                                     status=SENSOR_ALARM))
    wait_for(lambda: oximeter.decoder.counts.flagged["sensor_alarm"] == 1)
    assert not oximeter.poll(10**20)
    assert watch.status(last + 29 * S)["monitor_lost"] == "clear"
    assert watch.status(last + 30 * S)["monitor_lost"] == "due"


def test_pty_unplug_is_noticed_and_no_reading_arrives(line) -> None:
    emulator, oximeter, clock = line
    emulator.send(packet(96, 70))
    collect_until(oximeter, {"spo2": 96, "pulse": 70})
    watch = RespiratoryWatch(MonitorSettings(spo2_min=90, etco2_max_mmhg=None, rr_min=None),
                             clock.now_ns)
    emulator.unplug()
    wait_for(lambda: oximeter.line_errors >= 1 and not oximeter.connected)
    assert oximeter.last_error is not None and emulator.path in oximeter.last_error
    assert not oximeter.poll(10**20)
    assert watch.status(clock.now_ns + 30 * S)["monitor_lost"] == "due"


def test_a_missing_port_is_reported_not_raised() -> None:
    oximeter = NoninOximeter("/dev/pca-no-such-oximeter", reopen_s=0.05)
    with oximeter:
        wait_for(lambda: oximeter.line_errors >= 1)
        assert not oximeter.connected and "no-such-oximeter" in (oximeter.last_error or "")


def test_period_thins_three_packets_a_second_to_one_reading(line) -> None:
    emulator, oximeter, clock = line
    oximeter.period_ns = S
    for k in range(6):  # two seconds at three packets a second
        clock.now_ns += S // 3 + (1 if k == 0 else 0)
        emulator.send(packet(96, 70 + k))
        wait_for(lambda k=k: oximeter.decoder.counts.packets == k + 1)
    assert len(oximeter.poll(10**20)) == 2


def test_pty_a_packet_cut_short_at_a_frame_boundary_never_gives_a_reading(line) -> None:
    emulator, oximeter, _ = line
    emulator.send(packet(80, 140)[:5 * 12] + packet(93, 61))  # 12 frames, then a new packet
    got = collect_until(oximeter, MARKER)
    assert [r.values for r in got] == [MARKER]
    assert oximeter.decoder.counts.short_packets == 1
