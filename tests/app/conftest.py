"""Fixtures for these tests: the private PulseAudio daemon from ``tests/conftest_pulse.py``.

With ``--import-mode=importlib`` the tests folder is no package, so the shared module is loaded
by path, once per session, under one name (both conftests then share its daemon).
"""

import importlib.util
import pathlib
import sys

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
