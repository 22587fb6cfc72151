"""Fixtures for these tests: the private PulseAudio daemon from ``tests/conftest_pulse.py``.

With ``--import-mode=importlib`` the tests folder is no package, so the shared module is loaded
by path, once per session, under one name (both conftests then share its daemon).
"""

import importlib.util
import pathlib
import sys

import pytest

_NAME = "snn_explorer_tests_conftest_pulse"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _NAME, pathlib.Path(__file__).resolve().parents[1] / "conftest_pulse.py"
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

pulse_server = sys.modules[_NAME].pulse_server
fsdd_checkpoint = sys.modules[_NAME].fsdd_checkpoint
no_sound_server = sys.modules[_NAME].no_sound_server


# ----- the Range-capable media server of tests/mediaserver.py (AudioSet download tests)
_MEDIA = "snn_explorer_tests_mediaserver"
if _MEDIA not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _MEDIA, pathlib.Path(__file__).resolve().parents[1] / "mediaserver.py"
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_MEDIA] = _module
    _spec.loader.exec_module(_module)


@pytest.fixture
def media_server():
    """``start(folder, behaviours=None, **kw) -> MediaServer`` on 127.0.0.1, stopped afterwards."""
    servers = []

    def start(folder, behaviours=None, **kw):
        server = sys.modules[_MEDIA].MediaServer(folder, behaviours, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ----- the fuzzing tests' shared fixtures (tests/fuzzkit.py)
@pytest.fixture(scope="module")
def tally(request):
    """Inputs tried per reader and outcome in one test module; reported when the module ends
    under the module's name (``test_fuzz_audio`` -> ``audio``)."""
    from collections import Counter

    from fuzzkit import report

    counts: Counter[tuple[str, str]] = Counter()
    yield counts
    report(counts, request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_fuzz_"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Unique file names in one module-wide folder (see ``fuzzkit.Files``)."""
    from fuzzkit import Files

    return Files(tmp_path_factory.mktemp("fuzz"))
