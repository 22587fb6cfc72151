"""engine.train.amp: what amp = "auto" resolves to, and that a run records its precision."""

from __future__ import annotations

import pytest
import torch

from engine.device import cpu_has_bf16
from engine.train.amp import amp_context, describe_amp, resolve_amp


def test_auto_is_bf16_only_on_cpus_with_native_bf16():
    assert resolve_amp("auto", "cpu", cpu_bf16=True) == "bf16"
    assert resolve_amp("auto", "cpu", cpu_bf16=False) == "off"
    assert resolve_amp("auto", "cpu") == ("bf16" if cpu_has_bf16() else "off")
    assert resolve_amp("auto", "mps") == "off"
    for mode in ("off", "bf16", "fp16"):
        assert resolve_amp(mode, "cpu", cpu_bf16=False) == mode  # an explicit choice wins


def test_context_autocasts_matmuls_and_keeps_float32_outside():
    ctx, scaler = amp_context("bf16", "cpu")
    assert scaler is None
    a = torch.randn(4, 4)
    with ctx():
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32
    ctx, _ = amp_context("off", "cpu")
    with ctx():
        assert (a @ a).dtype == torch.float32
    assert describe_amp("auto", "bf16") == "bf16 autocast (amp auto)"
    assert describe_amp("off", "off") == "float32"


@pytest.mark.parametrize("amp", ["auto", "off"])
def test_a_run_logs_the_precision_it_used(tmp_path, amp):
    from engine.train.config import RunConfig
    from engine.train.loop import train
    from engine.train.recorded_run import digits_feature_set
    from engine.train.run_folder import LOG_FILE

    cfg = RunConfig(
        data="digits",
        model="fc_snn",
        steps=2,
        epochs=1,
        batch=64,
        amp=amp,
        device="cpu",
        model_options={"hidden": 16},
    )
    gen = train(cfg, tmp_path, data=digits_feature_set(8, seed=0))
    for _ in gen:
        pass
    log = (tmp_path / LOG_FILE).read_text()
    want = describe_amp(amp, resolve_amp(amp, "cpu"))
    assert want in log
