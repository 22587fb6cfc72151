"""engine.live.listen: ring buffer, sliding windows, latency, and real capture through PulseAudio."""

from __future__ import annotations

import importlib.util
import os
import threading
import time

import numpy as np
import pulsekit
import pytest
import soundfile as sf

from engine.errors import DeviceError
from engine.live.listen import (
    AudioBlock,
    AudioCapture,
    LiveConfig,
    LiveStarted,
    LiveStopped,
    RingBuffer,
    SlidingWindowClassifier,
    SoundEvent,
    WindowPrediction,
    classify_waveform,
    list_input_devices,
    listen,
    resolve_input_device,
)
from engine.live.window import LevelGate


def _pulse_module():
    return pulsekit


# ------------------------------------------------------------------------- ring buffer
def test_ring_buffer_matches_the_stream_across_wraparound():
    rng = np.random.default_rng(0)
    buf = RingBuffer(1000)
    stream = []
    for _ in range(200):
        block = rng.standard_normal(int(rng.integers(1, 400))).astype(np.float32)
        buf.write(block)
        stream.append(block)
        full = np.concatenate(stream)
        assert buf.total == len(full)
        n = int(rng.integers(1, 1001))
        end = int(rng.integers(max(len(full) - 1000 + n, 0), len(full) + 1))  # still held
        want = np.zeros(n, np.float32)
        piece = full[max(end - n, 0) : end]
        want[n - len(piece) :] = piece
        np.testing.assert_array_equal(buf.read(end, n), want)


def test_ring_buffer_reads_silence_before_the_start_and_refuses_lost_samples():
    buf = RingBuffer(10)
    buf.write(np.arange(1, 5, dtype=np.float32))
    np.testing.assert_array_equal(buf.read(4, 6), [0, 0, 1, 2, 3, 4])
    buf.write(np.arange(5, 30, dtype=np.float32))  # a block longer than the buffer
    np.testing.assert_array_equal(buf.latest(10), np.arange(20, 30))
    with pytest.raises(ValueError):
        buf.read(28, 10)  # sample 18 was overwritten
    with pytest.raises(ValueError):
        buf.read(29, 11)
    with pytest.raises(ValueError):
        buf.read(30, 2)  # not written yet


# ------------------------------------------------------------------------- sliding windows
class _Pred:
    def __init__(self, index, probs, output_spikes=None):
        self.index, self.probs, self.output_spikes = index, probs, output_spikes


class _Cfg:
    def __init__(self, sample_rate, duration):
        self.sample_rate, self.duration = sample_rate, duration


class WindowRecorder:
    """A predictor that remembers every window it was given and names the loudest quarter.

    It is no stand-in for a model: these tests are about which samples reach the model.
    """

    def __init__(self, sample_rate=100, duration=1.0, delay_s=0.0):
        self.feature_config = _Cfg(sample_rate, duration)
        self.class_names = ["q0", "q1", "q2", "q3"]
        self.windows: list[np.ndarray] = []
        self.delay_s = delay_s

    def predict_waveform(self, y, sr):
        assert sr == self.feature_config.sample_rate
        self.windows.append(np.array(y))
        if self.delay_s:
            time.sleep(self.delay_s)
        energy = np.array([np.sum(q**2) for q in np.array_split(y, 4)], dtype=np.float32)
        probs = energy / energy.sum() if energy.sum() > 0 else np.full(4, 0.25, np.float32)
        return _Pred(int(np.argmax(energy)), probs.astype(np.float32))


def test_sliding_windows_cover_the_stream_hop_by_hop():
    rec = WindowRecorder(sample_rate=100, duration=1.0)
    clf = SlidingWindowClassifier(rec, 100, hop_s=0.25, skip_stale=False, sounds=False)
    stream = np.arange(1, 351, dtype=np.float32)
    preds = []
    for start in range(0, 350, 7):  # blocks that do not line up with the hop
        preds += clf.push(stream[start : start + 7])
    assert [p.end for p in preds] == list(range(25, 351, 25))
    assert [p.index for p in preds] == list(range(len(preds)))
    for p, window in zip(preds, rec.windows):
        want = np.zeros(100, np.float32)
        piece = stream[max(p.end - 100, 0) : p.end]
        want[100 - len(piece) :] = piece
        np.testing.assert_array_equal(window, want)
        assert p.start == p.end - 100 and p.sample_rate == 100
        assert p.class_name == rec.class_names[p.label]
        assert p.latency_ms >= 0


def test_stale_windows_are_skipped_when_inference_falls_behind():
    rec = WindowRecorder(sample_rate=100, duration=1.0)
    clf = SlidingWindowClassifier(rec, 100, hop_s=0.1, skip_stale=True, sounds=False)
    preds = clf.push(np.ones(250, np.float32))  # 25 windows due at once
    assert len(preds) == 1 and preds[0].end == 250 and preds[0].dropped == 24
    assert clf.dropped == 24
    preds = clf.push(np.ones(10, np.float32))
    assert [p.end for p in preds] == [260] and preds[0].dropped == 0


def test_latency_runs_from_the_arrival_of_the_window_end():
    rec = WindowRecorder(sample_rate=100, duration=1.0, delay_s=0.02)
    clf = SlidingWindowClassifier(rec, 100, hop_s=0.5, sounds=False)
    arrived = time.perf_counter() - 0.1  # the block reached us 100 ms ago
    (pred,) = clf.push(np.ones(50, np.float32), arrived=arrived)
    assert pred.latency_ms >= 120.0  # 100 ms waiting + 20 ms of "inference"
    median, p95 = clf.summary()
    assert median == pytest.approx(pred.latency_ms) and p95 == pytest.approx(pred.latency_ms)


def test_windows_are_resampled_to_the_model_rate():
    rec = WindowRecorder(sample_rate=8000, duration=0.5)
    clf = SlidingWindowClassifier(rec, 16000, hop_s=0.25, sounds=False)
    t = np.arange(16000) / 16000
    clf.push((0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    window = rec.windows[-1]
    assert len(window) == 4000
    spectrum = np.abs(np.fft.rfft(window))
    assert np.argmax(spectrum) * 8000 / len(window) == pytest.approx(300, abs=4)


def test_classify_waveform_gives_a_short_clip_to_the_model_whole():
    rec = WindowRecorder(sample_rate=100, duration=1.0)
    clip = np.linspace(0.1, 1.0, 60).astype(np.float32)
    (pred,) = classify_waveform(rec, clip, 100)
    warm_up, given = rec.windows  # one unmeasured call of silence first, then the clip
    assert not warm_up.any()
    np.testing.assert_array_equal(given, clip)  # the predictor places it, as in training
    assert pred.label == 3 and (pred.start, pred.end) == (0, 60)
    rec2 = WindowRecorder(sample_rate=100, duration=1.0)
    preds = classify_waveform(rec2, np.ones(230, np.float32), 100, hop_s=0.5, sounds=False)
    assert [p.end for p in preds] == [100, 150, 200, 250]


def _burst(rng, seconds, rate, db):
    return (rng.standard_normal(int(seconds * rate)) * 10 ** (db / 20)).astype(np.float32)


def test_level_gate_finds_sounds_and_bridges_short_pauses():
    rate = 8000
    rng = np.random.default_rng(1)
    quiet = lambda s: _burst(rng, s, rate, -70)  # noqa: E731 - a room's noise floor
    parts = [
        quiet(0.5),
        _burst(rng, 0.3, rate, -20),
        quiet(0.5),
        _burst(rng, 0.2, rate, -25),
        quiet(0.1),  # the pause inside a word: bridged
        _burst(rng, 0.2, rate, -25),
        quiet(0.6),
        _burst(rng, 0.02, rate, -20),  # a click: too short to be a sound
        quiet(0.6),
    ]
    stream = np.concatenate(parts)
    gate = LevelGate(rate)
    found = []
    for i in range(0, len(stream), 123):
        found += gate.feed(stream[i : i + 123])
    assert len(found) == 2, found
    (s0, e0), (s1, e1) = found
    assert abs(s0 - 0.5 * rate) <= 80 and abs(e0 - 0.8 * rate) <= 80
    assert abs(s1 - 1.3 * rate) <= 80 and abs(e1 - 1.8 * rate) <= 80


def test_level_gate_follows_a_steady_hum_and_cuts_long_sounds():
    rate = 8000
    rng = np.random.default_rng(2)
    stream = np.concatenate([_burst(rng, 1.0, rate, -70), _burst(rng, 6.0, rate, -30)])
    gate = LevelGate(rate, max_s=1.0, floor_s=3.0)
    found = gate.feed(stream)
    # the hum starts as a sound, cut into 1-s pieces, until the floor's 3-s memory forgets the
    # quiet room; from then on the hum is the floor and nothing more is heard
    assert 2 <= len(found) <= 3 and all(e - s <= rate for s, e in found)
    assert found[0][0] == pytest.approx(rate, abs=80)
    assert found[-1][1] <= 4.1 * rate


def test_each_sound_is_classified_once_in_a_window_centred_on_it():
    rate = 1000
    rng = np.random.default_rng(3)
    stream = np.concatenate(
        [np.zeros(1500, np.float32), _burst(rng, 0.2, rate, -10), np.zeros(2500, np.float32)]
    )
    rec = WindowRecorder(sample_rate=rate, duration=1.0)
    clf = SlidingWindowClassifier(rec, rate, hop_s=0.5)
    events = []
    for i in range(0, len(stream), 50):
        events += clf.push(stream[i : i + 50])
    sounds = [e for e in events if isinstance(e, SoundEvent)]
    windows = [e for e in events if isinstance(e, WindowPrediction)]
    assert len(sounds) == 1 and len(windows) == 8
    (sound,) = sounds
    assert abs(sound.start - 1500) <= 10 and abs(sound.end - 1700) <= 10
    w = sound.prediction
    assert abs((w.start + w.end) / 2 - 1600) <= 10 and w.end - w.start == 1000
    # the window handed to the model holds the burst in its middle
    window = rec.windows[events.index(sound)]  # the model was called once per event, in order
    loud = np.flatnonzero(np.abs(window) > 0)
    assert abs(loud.mean() - 500) < 15
    assert clf.sound_count == 1 and len(clf.sound_latencies) == 1


def test_bad_window_settings_are_refused():
    rec = WindowRecorder()
    with pytest.raises(ValueError):
        SlidingWindowClassifier(rec, 100, hop_s=0)
    with pytest.raises(ValueError):
        LiveConfig(hop_s=-1)


# ------------------------------------------------------------------------- a real model
@pytest.fixture(scope="module")
def random_csnn(tmp_path_factory):
    """A real CSNN checkpoint with untrained (seeded) weights: shapes and plumbing, not accuracy."""
    if importlib.util.find_spec("engine.train.checkpoint") is None:
        pytest.skip("engine.train.checkpoint is not built yet")
    import torch

    from engine.audio.features import FeatureConfig
    from engine.models.registry import build_model
    from engine.train.checkpoint import Predictor, save_checkpoint
    from engine.train.config import RunConfig

    fc = FeatureConfig()
    shape = (1, *fc.shape())
    torch.manual_seed(0)
    model = build_model("csnn", shape, 10)
    path = tmp_path_factory.mktemp("ckpt") / "random_csnn.pt"
    save_checkpoint(
        path,
        config=RunConfig(data="fsdd:x", model="csnn", steps=10).to_dict(),
        model={"name": "csnn", "input_shape": list(shape), "n_classes": 10, "options": {}},
        class_names=[str(i) for i in range(10)],
        weights=model.state_dict(),
        feature_config=fc.to_dict(),
    )
    return Predictor.from_checkpoint(path)


def test_classify_waveform_equals_the_predictor_on_a_clip(random_csnn, fsdd_dir):
    from engine.audio.load import load_audio

    y, sr = load_audio(fsdd_dir / "7_jackson_3.wav")
    (pred,) = classify_waveform(random_csnn, y, sr, keep_features=True, keep_waveform=True)
    direct = random_csnn.predict_waveform(y, sr)
    assert pred.label == direct.index
    np.testing.assert_allclose(pred.probs, direct.probs, atol=1e-6)
    assert pred.output_spikes.shape == direct.output_spikes.shape
    assert pred.features.shape == random_csnn.feature_config.shape()
    assert len(pred.waveform) == random_csnn.feature_config.n_samples()


# ------------------------------------------------------------------------- no device
def test_no_capture_device_gives_a_clear_error(no_sound_server):
    assert list_input_devices() == []
    with pytest.raises(DeviceError, match="no audio capture device"):
        resolve_input_device(None)
    with pytest.raises(DeviceError, match="no audio capture device"):
        AudioCapture()


# ------------------------------------------------------------------------- real capture
def _tone(path, freq=440.0, seconds=1.0, rate=44100, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return path


def test_capture_hears_a_tone_played_into_the_sink(pulse_server, tmp_path):
    tone = _tone(tmp_path / "tone.wav", 440.0, 0.8)
    dev = resolve_input_device(None)
    assert dev.channels >= 1
    blocks = []
    with AudioCapture(None, 8000) as cap:
        assert cap.sample_rate == 8000
        player = pulse_server.play(tone, wait=False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and player.poll() is None:
            blocks += [b for b, _ in cap.read(0.05)]
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            blocks += [b for b, _ in cap.read(0.05)]
    y = np.concatenate(blocks)
    loud = y[np.abs(y) > 0.1]
    assert len(loud) > 0.5 * 8000 * 0.5, "the tone did not come back through the microphone"
    start = int(np.argmax(np.abs(y) > 0.1))
    seg = y[start + 400 : start + 400 + 4000]
    freq = np.argmax(np.abs(np.fft.rfft(seg * np.hanning(len(seg))))) * 8000 / len(seg)
    assert freq == pytest.approx(440, abs=3)
    assert 0.3 < np.max(np.abs(seg)) < 0.7  # no gain change on the way


def test_listen_streams_events_until_its_time_limit(pulse_server):
    rec = WindowRecorder(sample_rate=8000, duration=1.0)
    events = list(listen(rec, LiveConfig(hop_s=0.25, seconds=1.5)))
    assert isinstance(events[0], LiveStarted) and isinstance(events[-1], LiveStopped)
    blocks = [e for e in events if isinstance(e, AudioBlock)]
    preds = [e for e in events if isinstance(e, WindowPrediction)]
    assert sum(len(b.samples) for b in blocks) == 12000
    assert [p.end for p in preds] == list(range(2000, 12001, 2000))
    assert events[-1].reason == "time limit" and events[-1].predictions == 6
    assert 0 <= events[-1].median_ms < 1000


def test_listen_stops_on_request(pulse_server):
    rec = WindowRecorder(sample_rate=8000, duration=1.0)
    stop = threading.Event()
    gen = listen(rec, LiveConfig(hop_s=0.1), stop)
    n = 0
    for event in gen:
        n += 1
        if isinstance(event, WindowPrediction) and event.index == 2:
            stop.set()
        if isinstance(event, LiveStopped):
            break
    assert event.reason == "stopped" and event.predictions == 3


@pytest.mark.skipif(
    os.environ.get("CI") == "true",
    reason="PortAudio's Pa_Terminate can hang once its PulseAudio server is killed; run locally",
)
def test_a_vanishing_device_raises_device_error(pulse_server):
    """A second private daemon is killed while we listen to it."""
    server = _pulse_module().start_pulse()
    try:
        rec = WindowRecorder(sample_rate=8000, duration=1.0)
        gen = listen(rec, LiveConfig(hop_s=0.25))
        started = time.monotonic()
        with pytest.raises(DeviceError, match="stopped delivering sound"):
            for event in gen:
                if isinstance(event, WindowPrediction) and server.daemon.poll() is None:
                    server.daemon.kill()
                    server.daemon.wait(5)
                assert time.monotonic() - started < 30
    finally:
        server.stop()


# ------------------------------------------------------------------------- done-when: FSDD live
def _pick_fsdd_test_clips(fsdd_dir, n_per_digit=2, seed=0):
    """Clips of the official test split (index 0-4), ``n_per_digit`` per digit, seeded."""
    rng = np.random.default_rng(seed)
    picked = []
    for digit in range(10):
        files = sorted(
            p for p in fsdd_dir.glob(f"{digit}_*.wav") if int(p.stem.rsplit("_", 1)[1]) < 5
        )
        picked += [files[i] for i in rng.choice(len(files), n_per_digit, replace=False)]
    order = rng.permutation(len(picked))
    return [picked[i] for i in order]


@pytest.mark.slow
def test_fsdd_digits_played_into_the_sink_are_classified_live(
    pulse_server, fsdd_checkpoint, fsdd_dir
):
    from engine.train.checkpoint import Predictor

    predictor = Predictor.from_checkpoint(fsdd_checkpoint.path)
    clips = _pick_fsdd_test_clips(fsdd_dir)
    stop = threading.Event()
    events: list = []  # (perf_counter when the event reached us, event)
    failure: list = []

    def drive():
        try:
            for event in listen(predictor, LiveConfig(hop_s=0.1), stop):
                events.append((time.perf_counter(), event))
        except Exception as exc:  # handed to the test thread
            failure.append(exc)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    time.sleep(0.5)
    starts = []  # stream sample index when each clip began playing
    for path in clips:
        blocks = [e for _, e in events if isinstance(e, AudioBlock)]
        starts.append(blocks[-1].end if blocks else 0)
        pulse_server.play(path)
        time.sleep(0.6)
    time.sleep(1.2)  # the last sound's window must fill
    stop.set()
    thread.join(10)
    assert not failure, failure
    sounds = [e for _, e in events if isinstance(e, SoundEvent)]
    windows = [e for _, e in events if isinstance(e, WindowPrediction)]
    bounds = starts + [10**12]
    right, heard = 0, []
    for k, path in enumerate(clips):
        mine = [s for s in sounds if bounds[k] <= s.start < bounds[k + 1]]
        if not mine:
            heard.append((path.name, None))
            continue
        main = max(mine, key=lambda s: s.end - s.start)  # the word, not a breath after it
        heard.append((path.name, main.class_name, round(main.confidence, 2), len(mine)))
        right += main.class_name == path.name.split("_")[0]
    print(
        f"\nlive FSDD: {right}/20 right; checkpoint test accuracy {fsdd_checkpoint.test_acc:.3f}"
        f" (trained in {fsdd_checkpoint.seconds:.1f} s); {len(windows)} windows, "
        f"{len(sounds)} sounds; latency median {np.median([w.latency_ms for w in windows]):.1f} ms"
    )
    for h in heard:
        print("  ", h)
    assert right >= 16, heard


def test_live_latency_bench_reports_median_and_p95(random_csnn):
    import json

    from engine.bench.live_latency import live_latency

    result = live_latency(random_csnn, n=8, warmup=2)
    assert result["n"] == 8 and result["window_s"] == 1.0 and result["model"] == "csnn"
    assert 0 < result["median_ms"] <= result["p95_ms"] <= result["max_ms"]
    json.dumps(result)  # the bench writes it as JSON
    default = live_latency(n=3, warmup=1)  # no checkpoint: the untrained CSNN
    assert default["model"] == "csnn" and default["n"] == 3
