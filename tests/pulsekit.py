"""A private PulseAudio daemon with a null sink and a virtual microphone, for live-audio tests.

Imported by ``tests/conftest.py`` (``tests`` is on pytest's ``pythonpath``), which re-exports its
fixtures to every test. One daemon serves the whole test session; it is stopped, with the
``pacat`` that keeps its sink awake, by PID when the session ends.

Audio played into the sink ``vsink`` (``PulseServer.play(path)``) comes back through
``sounddevice.InputStream`` on the default input device: the source ``vmic`` remaps the sink's
monitor to one channel (recipe in ../shared/docs/recipes.md).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest

SINK = "vsink"
SOURCE = "vmic"
RATE = 44100

_CONFIG = f"""\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name={SINK} rate={RATE} channels=2
load-module module-remap-source source_name={SOURCE} master={SINK}.monitor channels=1
set-default-sink {SINK}
set-default-source {SOURCE}
"""

# pytest's config stash: one daemon per session whichever conftest asks first
_STASH_KEY = pytest.StashKey["PulseServer"]()


@dataclass
class PulseServer:
    """A running private daemon: where it listens, its PIDs and the client environment."""

    runtime_dir: str
    daemon: subprocess.Popen
    keep_awake: subprocess.Popen | None = None
    sink: str = SINK
    source: str = SOURCE
    env: dict = field(default_factory=dict)
    _saved_env: dict = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"unix:{os.path.join(self.runtime_dir, 'pulse', 'native')}"

    def play(self, path: str, *, wait: bool = True, volume: int | None = None):
        """Play an audio file into the sink with ``paplay``; returns the process when not waiting."""
        cmd = ["paplay", "-d", self.sink]
        if volume is not None:
            cmd += [f"--volume={volume}"]
        proc = subprocess.Popen(
            cmd + [str(path)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if wait:
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                raise RuntimeError(f"paplay {path} failed: {err.decode(errors='replace')}")
        return proc

    def stop(self) -> None:
        for proc in (self.keep_awake, self.daemon):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reinit_portaudio()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _reinit_portaudio() -> None:
    """PortAudio reads the device list once: re-read it after the daemon starts or stops."""
    try:
        import sounddevice as sd
    except OSError:  # no PortAudio library: nothing to refresh
        return
    sd._terminate()
    sd._initialize()


def _wait_for(env: dict, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ok = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=10)
        if ok.returncode == 0:
            return True
        time.sleep(0.05)
    return False


def start_pulse() -> PulseServer:
    """Start the daemon, point this process's PulseAudio clients at it, refresh PortAudio."""
    missing = [t for t in ("pulseaudio", "pactl", "paplay", "pacat") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install pulseaudio pulseaudio-utils)"
        )
    runtime = tempfile.mkdtemp(prefix="snn-pulse-")
    os.chmod(runtime, 0o700)
    conf = os.path.join(runtime, "daemon.pa")
    with open(conf, "w") as fh:
        fh.write(_CONFIG)
    client_conf = os.path.join(runtime, "client.conf")
    with open(client_conf, "w") as fh:
        fh.write("autospawn = no\n")  # never let a client start the user's own daemon
    env = dict(os.environ)
    env.update(
        XDG_RUNTIME_DIR=runtime,
        HOME=runtime,  # the daemon writes its cookie and state under HOME
        PULSE_SERVER=f"unix:{os.path.join(runtime, 'pulse', 'native')}",
        PULSE_CLIENTCONFIG=client_conf,
    )
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "-F",
            conf,
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-exit",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = PulseServer(runtime_dir=runtime, daemon=daemon, env=env)
    if not _wait_for(env, 10.0):
        err = b""
        if daemon.poll() is not None:
            err = daemon.stderr.read() if daemon.stderr else b""
        server.stop()
        pytest.skip(f"PulseAudio did not start: {err.decode(errors='replace').strip()[-300:]}")
    # keep the sink running: an idle sink's monitor delivers its first block only after ~2 s
    server.keep_awake = subprocess.Popen(
        [
            "pacat",
            "-p",
            "--latency-msec=20",
            "--raw",
            "--format=s16le",
            f"--rate={RATE}",
            "--channels=2",
            "-d",
            SINK,
            "/dev/zero",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for key in ("PULSE_SERVER", "PULSE_CLIENTCONFIG"):
        server._saved_env[key] = os.environ.get(key)
        os.environ[key] = env[key]
    _reinit_portaudio()
    return server


@pytest.fixture(scope="session")
def pulse_server(request) -> PulseServer:
    """The session's private PulseAudio daemon (skips with the reason when it cannot run)."""
    stash = request.config.stash
    server = stash.get(_STASH_KEY, None)
    if server is None or server.daemon.poll() is not None:
        server = start_pulse()
        stash[_STASH_KEY] = server
        request.config.add_cleanup(server.stop)
    return server


# ------------------------------------------------------------------------- a trained checkpoint
#: the quickest real FSDD model that is accurate: the CSNN's ReLU twin, 8 epochs (about 10 s
#: on 2 cores, 97-98 % test accuracy); the CSNN itself needs minutes for the same accuracy
FSDD_TRAINING = {"model": "cnn", "epochs": 8, "batch": 64, "lr": 3e-3, "seed": 0}
_ROOT = pathlib.Path(__file__).resolve().parents[1]
_SHARED = pathlib.Path(os.environ.get("SNN_SHARED_DATA", _ROOT.parent / "shared" / "data"))
FSDD = _SHARED / "fsdd" / "recordings"


@dataclass(frozen=True)
class TrainedCheckpoint:
    path: str
    test_acc: float
    seconds: float


def run_training(cfg, run_dir):
    """Drive ``engine.train.loop.train`` to its end; returns its TrainResult."""
    from engine.train.loop import train

    gen = train(cfg, run_dir)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


_CKPT_KEY = pytest.StashKey["TrainedCheckpoint"]()


@pytest.fixture(scope="session")
def fsdd_checkpoint(request, tmp_path_factory) -> TrainedCheckpoint:
    """An FSDD digit model trained once per session by the real training engine.

    Both conftests define this fixture; the config stash makes them share one training run.
    """
    done = request.config.stash.get(_CKPT_KEY, None)
    if done is None:
        done = _train_fsdd(tmp_path_factory)
        request.config.stash[_CKPT_KEY] = done
    return done


def _train_fsdd(tmp_path_factory) -> TrainedCheckpoint:
    if not FSDD.exists():
        pytest.skip(f"{FSDD} is absent (the shared data folder is not beside this checkout)")
    if importlib.util.find_spec("engine.train.loop") is None:
        pytest.skip("engine.train.loop is not built yet")
    from engine.train.config import RunConfig

    base = tmp_path_factory.mktemp("fsdd_run")
    cfg = RunConfig(data=f"fsdd:{FSDD}", **FSDD_TRAINING)
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:  # session fixtures run before the per-test env
        mp.setenv("SNN_EXPLORER_CACHE", str(base / "cache"))
        result = run_training(cfg, base / "run")
    seconds = time.perf_counter() - started
    best = base / "run" / "best.pt"
    assert result.status == "completed" and best.exists(), result
    return TrainedCheckpoint(str(best), float(result.test_acc), seconds)


@pytest.fixture
def no_sound_server(monkeypatch, tmp_path):
    """PortAudio re-read with PulseAudio pointed at nothing: the device list of a bare machine.

    Skips when this machine still lists a capture device (real hardware).
    """
    conf = tmp_path / "no-autospawn.conf"
    conf.write_text("autospawn = no\n")
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/snn-explorer-no-pulse")
    monkeypatch.setenv("PULSE_CLIENTCONFIG", str(conf))
    _reinit_portaudio()
    try:
        import sounddevice as sd

        has_input = any(d["max_input_channels"] > 0 for d in sd.query_devices())
    except OSError:
        has_input = False
    if has_input:
        monkeypatch.undo()
        _reinit_portaudio()
        pytest.skip("this machine has a real capture device")
    yield
    monkeypatch.undo()
    _reinit_portaudio()
