import subprocess
import sys

from engine.models.names import MODEL_NAMES
from engine.models.registry import MODELS


def test_model_names_match_the_registry():
    assert MODEL_NAMES == tuple(MODELS)


def test_building_the_cli_parser_imports_no_torch():
    code = "import sys; from app.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_export_cli_constants_match_the_engine():
    import app.cli.export as cli
    import engine.export.job as ex
    import engine.export.nir as nir

    assert cli.FORMATS == ex.FORMATS and cli.CHECK_EXAMPLES == ex.CHECK_EXAMPLES
    assert cli.DISCRETISATIONS == nir.DISCRETISATIONS and cli.DEFAULT_DT == nir.DEFAULT_DT
