"""Export: NIR, ONNX and TorchScript files of really trained models, read back and compared.

The models are trained here by the real training engine on scikit-learn's 8x8 digits (shipped
with scikit-learn, so these tests always run): a CSNN with average pooling and reset to zero
(the NIR-exportable variant) and its ReLU twin. One test also exports the session's FSDD model
and checks it on FSDD test recordings (skipped when ../shared/data is absent).
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError, ExportError
from engine.export.job import (
    available_formats,
    check_inputs,
    default_export_path,
    export_checkpoint,
    export_job,
)
from engine.export.nir import model_to_nir
from engine.export.nir_run import read_nir, simulate_nir
from engine.train.checkpoint import Predictor, load_checkpoint, save_checkpoint
from engine.train.config import RunConfig

nir = pytest.importorskip("nir")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

SMALL_CNN = {"channels": [8, 16], "kernels": [3, 3], "padding": "same"}


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    splits = {"test": np.sort(perm[:200]), "val": np.sort(perm[200:350]), "train": perm[350:]}
    return types.SimpleNamespace(
        x=x,
        y=y,
        splits={k: np.sort(v) for k, v in splits.items()},
        class_names=[str(i) for i in range(10)],
        feature_config={"kind": "image"},
    )


def _train(cfg: RunConfig, run_dir, data) -> str:
    from engine.train.loop import train

    gen = train(cfg, run_dir, data=data)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            assert done.value.status == "completed", done.value
            return str(run_dir / "best.pt")


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def x_test(digits):
    return digits.x[digits.splits["test"]][:96]


@pytest.fixture(scope="module")
def snn_ckpt(tmp_path_factory, digits):
    """csnn_avg (reset to zero) trained for 2 epochs on the digits: NIR can express it."""
    cfg = RunConfig(
        model="csnn_avg",
        model_options=SMALL_CNN,
        reset="zero",
        steps=8,
        epochs=2,
        batch=64,
        lr=5e-3,
        seed=0,
        device="cpu",
    )
    return _train(cfg, tmp_path_factory.mktemp("snn") / "run", digits)


@pytest.fixture(scope="module")
def ann_ckpt(tmp_path_factory, digits):
    """The CSNN's ReLU twin, trained for 2 epochs on the digits."""
    cfg = RunConfig(
        model="cnn", model_options=SMALL_CNN, epochs=2, batch=64, lr=5e-3, seed=0, device="cpu"
    )
    return _train(cfg, tmp_path_factory.mktemp("ann") / "run", digits)


def _resave(src: str, dst, **changes) -> str:
    """A copy of checkpoint ``src`` with some of its parts replaced."""
    ck = load_checkpoint(src)
    parts = {
        "config": ck.config,
        "model": ck.model,
        "class_names": ck.class_names,
        "weights": ck.weights,
        "feature_config": ck.feature_config,
        "metrics": ck.metrics,
    }
    parts.update(changes)
    save_checkpoint(dst, **parts)
    return str(dst)


def _cli(*args) -> subprocess.CompletedProcess:
    code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


# ----------------------------------------------------------------------------- NIR
def test_nir_file_of_a_trained_csnn_gives_identical_spike_counts(snn_ckpt, x_test, tmp_path):
    out = tmp_path / "digits.nir"
    result = export_checkpoint(snn_ckpt, "nir", out, inputs=x_test)
    assert result.ok, result.summary()
    nir_check = result.checks[0]
    assert nir_check.passed and nir_check.mismatched == 0 and nir_check.n_inputs == len(x_test)
    assert "3/3 layers" in nir_check.detail

    # independently of the export's own check: read the file, simulate, compare with the
    # Predictor (the path classify and the Live tab use)
    graph = nir.read(str(out))
    kinds = {k: type(n).__name__ for k, n in graph.nodes.items()}
    assert kinds == {
        "input": "Input",
        "convs.0": "Conv2d",
        "pools.0": "AvgPool2d",
        "lifs.0": "LIF",
        "convs.1": "Conv2d",
        "pools.1": "AvgPool2d",
        "lifs.1": "LIF",
        "flatten": "Flatten",
        "fc": "Affine",
        "out": "LIF",
        "output": "Output",
    }
    model = load_checkpoint(snn_ckpt).build()
    beta, dt = model.lifs[0].beta_value(), float(graph.metadata["dt"])
    lif = graph.nodes["lifs.0"]
    np.testing.assert_allclose(lif.tau, -dt / math.log(beta))  # beta = exp(-dt / tau)
    np.testing.assert_allclose(lif.r, 1.0 / (1.0 - beta))
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0) and np.all(lif.v_threshold == 1)
    assert graph.metadata["discretisation"] == "exact"
    assert graph.metadata["steps"] == 8 and graph.metadata["encoder"] == "direct"

    pred = Predictor.from_checkpoint(snn_ckpt)
    want = np.stack([p.output_spikes for p in pred.predict_batch(x_test)], 1).sum(0)
    scaled = model.input_norm(torch.from_numpy(x_test))
    run = simulate_nir(graph, scaled.unsqueeze(0).expand(8, *scaled.shape))
    got = run.output.sum(0).numpy()
    assert want.sum() > len(x_test)  # the output layer really fires
    np.testing.assert_array_equal(got, want)
    # the trained network separates the classes: spike counts differ between inputs
    assert len({tuple(r) for r in want.tolist()}) > 10

    # the comparison can fail: a threshold off by 10 % changes the counts
    graph.nodes["out"].v_threshold = graph.nodes["out"].v_threshold * 1.1
    moved = simulate_nir(graph, scaled.unsqueeze(0).expand(8, *scaled.shape)).output.sum(0)
    assert not np.array_equal(moved.numpy(), want)


def test_nir_file_of_a_trained_fc_snn_gives_identical_spike_counts(digits, x_test, tmp_path):
    cfg = RunConfig(
        model="fc_snn",
        model_options={"hidden": 64},
        reset="zero",
        steps=8,
        epochs=1,
        batch=64,
        lr=5e-3,
        device="cpu",
    )
    ckpt = _train(cfg, tmp_path / "run", digits)
    result = export_checkpoint(ckpt, "nir", tmp_path / "fc.nir", inputs=x_test)
    assert result.ok and "2/2 layers" in result.checks[0].detail, result.summary()
    graph = read_nir(tmp_path / "fc.nir")
    assert [type(graph.nodes[k]).__name__ for k in ("flatten", "fc1", "lif1", "fc2", "out")] == [
        "Flatten",
        "Affine",
        "LIF",
        "Affine",
        "LIF",
    ]
    # batch norm is folded into fc1: the Affine's weights are not the raw Linear's
    model = load_checkpoint(ckpt).build()
    assert not np.allclose(graph.nodes["fc1"].weight, model.fc1.weight.detach().numpy())
    spikes = simulate_nir(
        graph, model.input_norm(torch.from_numpy(x_test)).unsqueeze(0).expand(8, -1, -1, -1, -1)
    ).output
    assert spikes.sum() > 0


def test_euler_nir_file_matches_snntorchs_own_import(snn_ckpt, x_test, tmp_path):
    pytest.importorskip("nirtorch", reason="snnTorch's NIR import needs nirtorch")
    result = export_checkpoint(
        snn_ckpt, "nir", tmp_path / "euler.nir", inputs=x_test, discretisation="euler"
    )
    assert result.ok, result.summary()
    by_name = {c.name: c for c in result.checks}
    snn = by_name["snnTorch import_from_nir"]
    assert snn.passed and snn.mismatched == 0 and snn.n_inputs == len(x_test), snn.detail
    graph = read_nir(tmp_path / "euler.nir")
    beta = load_checkpoint(snn_ckpt).build().lifs[0].beta_value()
    np.testing.assert_allclose(graph.nodes["lifs.0"].tau, 1e-4 / (1.0 - beta))  # 1 - dt/tau


def test_simulator_lif_matches_the_closed_form():
    """beta 0.5, threshold 1, input 0.6: v = 0.6, 0.9, 1.05 (fires, reset), 0.6, ..."""
    from engine.export.nir import _lif_node
    from engine.models.snn import LIF

    for method in ("exact", "euler"):
        lif = LIF(beta=0.5, threshold=1.0, reset="zero")
        node = _lif_node(lif, "lif", (1,), 1e-3, method, False)
        graph = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([1])}),
                "lif": node,
                "output": nir.Output(output_type={"output": np.array([1])}),
            },
            edges=[("input", "lif"), ("lif", "output")],
            metadata={"dt": 1e-3, "discretisation": method},
        )
        x = torch.full((9, 1, 1), 0.6)
        spikes = simulate_nir(graph, x).output[:, 0, 0].tolist()
        assert spikes == [0, 0, 1, 0, 0, 1, 0, 0, 1], method


def test_max_pool_csnn_is_refused_with_one_line(tmp_path):
    torch.manual_seed(0)
    cfg = RunConfig(model="csnn", model_options=SMALL_CNN, reset="zero", steps=4)
    from engine.models.registry import build_model, model_options

    opts = model_options(cfg)
    model = build_model("csnn", (1, 8, 8), 10, **opts)
    ckpt = tmp_path / "maxpool.pt"
    save_checkpoint(
        ckpt,
        config=cfg.to_dict(),
        model={"name": "csnn", "input_shape": [1, 8, 8], "n_classes": 10, "options": opts},
        class_names=[str(i) for i in range(10)],
        weights=model.state_dict(),
    )
    with pytest.raises(ExportError, match=r"layer pools\.0 \(MaxPool2d\): NIR has no max pool"):
        export_checkpoint(ckpt, "nir", tmp_path / "x.nir")
    assert available_formats(ckpt)["nir"].startswith("layer pools.0 (MaxPool2d)")
    out = tmp_path / "cli.nir"
    proc = _cli("export", "--checkpoint", str(ckpt), "--format", "nir", "--out", str(out))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pools.0" in lines[0] and "MaxPool2d" in lines[0] and "csnn_avg" in lines[0]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_reset_by_subtraction_is_refused_unless_approximated(snn_ckpt, x_test, tmp_path):
    ck = load_checkpoint(snn_ckpt)
    options = {**ck.model["options"], "reset": "subtract"}
    sub = _resave(snn_ckpt, tmp_path / "sub.pt", model={**ck.model, "options": options})
    with pytest.raises(ExportError, match=r"layer lifs\.0: reset by subtraction"):
        export_checkpoint(sub, "nir", tmp_path / "sub.nir")
    result = export_checkpoint(
        sub, "nir", tmp_path / "sub.nir", inputs=x_test[:32], reset_as_zero=True
    )
    assert not result.checks[0].required  # a measurement, not a promise
    assert any("approximation" in n for n in result.notes)
    assert (tmp_path / "sub.nir").exists()


# ----------------------------------------------------------------------------- ONNX
def test_onnx_of_a_trained_cnn_matches_onnxruntime(ann_ckpt, x_test, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "cnn.onnx"
    result = export_checkpoint(ann_ckpt, "onnx", out, inputs=x_test)
    assert result.ok, result.summary()
    assert result.checks[0].max_abs_diff <= 1e-4
    # independently, on another batch size (the batch axis is dynamic)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = x_test[:7]
    (got,) = sess.run(["logits"], {"features": x})
    want = load_checkpoint(ann_ckpt).build()(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert np.abs(want).max() > 1.0  # real logits, not a degenerate all-zero output
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["model"] == "cnn" and '"9"' in meta["class_names"]


def test_onnx_refuses_spiking_models(snn_ckpt, tmp_path):
    with pytest.raises(ExportError, match="ONNX export is for the ANN models"):
        export_checkpoint(snn_ckpt, "onnx", tmp_path / "x.onnx")
    assert available_formats(snn_ckpt) == {
        "nir": None,
        "onnx": "ONNX export is for the ANN models; use nir or torchscript",
        "torchscript": None,
    }


@pytest.mark.slow
def test_onnx_of_the_fsdd_model_on_fsdd_test_recordings(fsdd_checkpoint, tmp_path):
    x, described = check_inputs(fsdd_checkpoint.path, 24)
    assert described.startswith("24 test examples of fsdd:") and x.shape[1:] == (1, 20, 63)
    result = export_checkpoint(fsdd_checkpoint.path, "onnx", tmp_path / "fsdd.onnx", n_check=24)
    assert result.ok and result.inputs == described, result.summary()
    assert result.checks[0].max_abs_diff <= 1e-4


# ----------------------------------------------------------------------------- TorchScript
def test_torchscript_of_spiking_and_ann_models_matches(snn_ckpt, ann_ckpt, x_test, tmp_path):
    x = torch.from_numpy(x_test)
    for ckpt in (snn_ckpt, ann_ckpt):
        result = export_checkpoint(ckpt, "torchscript", tmp_path, inputs=x_test)
        assert result.ok, result.summary()
        path = default_export_path(ckpt, "torchscript").name
        assert result.path == str(tmp_path / path)
        extra = {"snn_explorer.json": ""}
        module = torch.jit.load(result.path, _extra_files=extra)
        assert b'"class_names"' in extra["snn_explorer.json"]
        model = load_checkpoint(ckpt).build()
        with torch.no_grad():
            if "csnn" in result.model:
                spikes, mem = module(x)
                want = model(x, steps=8)
                assert torch.equal(spikes, want.spikes) and torch.equal(mem, want.mem)
                assert spikes.sum() > 0
                seq = torch.rand(5, *x.shape, generator=torch.Generator().manual_seed(1)) < 0.3
                spikes, _ = module(seq.float())  # an encoded sequence runs through as it is
                assert torch.equal(spikes, model(seq.float()).spikes)
            else:
                torch.testing.assert_close(module(x), model(x), atol=1e-5, rtol=0)


def test_torchscript_of_a_rate_encoded_model_takes_the_spike_sequence(snn_ckpt, x_test, tmp_path):
    ck = load_checkpoint(snn_ckpt)
    rate = _resave(snn_ckpt, tmp_path / "rate.pt", config={**ck.config, "encoder": "rate"})
    result = export_checkpoint(rate, "torchscript", tmp_path / "rate.ts", inputs=x_test[:32])
    assert result.ok, result.summary()
    module = torch.jit.load(str(tmp_path / "rate.ts"))
    with pytest.raises(Exception, match="spike encoder"):
        module(torch.from_numpy(x_test[:2]))


# ----------------------------------------------------------------------------- checkpoints, jobs
@pytest.mark.parametrize("version", [0, 2])
def test_checkpoint_of_another_version_gives_one_clear_line(snn_ckpt, tmp_path, version):
    raw = torch.load(snn_ckpt, weights_only=True)
    raw["version"] = version
    doctored = tmp_path / f"v{version}.pt"
    torch.save(raw, doctored)
    with pytest.raises(CheckpointError, match=f"format version {version}; this snn-explorer"):
        export_checkpoint(doctored, "torchscript", tmp_path / "x.pt")
    proc = _cli("export", "--checkpoint", str(doctored), "--format", "nir", "--out", str(tmp_path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert f"version {version}" in lines[0] and str(doctored) in lines[0]


def test_stopped_export_leaves_no_file_and_progress_is_reported(snn_ckpt, x_test, tmp_path):
    stop = threading.Event()
    gen = export_job(snn_ckpt, "nir", tmp_path / "s.nir", inputs=x_test[:8], stop=stop)
    first = next(gen)
    assert first.stage == "load" and first.total == 4
    stop.set()
    with pytest.raises(StopIteration) as done:
        next(gen)
    assert done.value.value is None
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_and_prints_the_check(snn_ckpt, tmp_path):
    out = tmp_path / "m.nir"
    proc = _cli(
        "export", "--checkpoint", snn_ckpt, "--format", "nir", "--out", str(out),
        "--check-examples", "8",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    # the digits checkpoint names no data set: the check says it used random inputs
    assert "8 random inputs (the checkpoint names no data set)" in proc.stdout
    assert "ok   NIR file" in proc.stdout
    graph = read_nir(out)
    assert json_list(graph.metadata["class_names"]) == [str(i) for i in range(10)]


def json_list(value) -> list:
    import json

    return json.loads(value.decode() if isinstance(value, bytes) else value)


def test_model_to_nir_refuses_an_ann():
    from engine.models.registry import build_model

    with pytest.raises(ExportError, match="not a spiking model"):
        model_to_nir(build_model("cnn", (1, 8, 8), 3, **SMALL_CNN), (1, 8, 8))


def test_model_to_nir_refuses_a_weighted_layer_it_does_not_know():
    """A layer added to a model later must not be left out of the graph silently."""
    from torch import nn

    from engine.models.registry import build_model

    model = build_model("csnn_avg", (1, 8, 8), 3, reset="zero", **SMALL_CNN)
    model_to_nir(model, (1, 8, 8))  # every layer known: fine
    model.extra_gain = nn.Linear(3, 3)
    with pytest.raises(ExportError, match=r"layer extra_gain \(Linear\): the NIR export does not"):
        model_to_nir(model, (1, 8, 8))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"hidden": 16, "pooling": "avg"},
        {"channels": [6], "kernels": [3], "padding": "same", "batchnorm": False},
        {"channels": [4, 8, 8], "kernels": [3, 3, 3], "padding": "same", "threshold": 0.5},
    ],
    ids=["report", "hidden-avg", "one-block", "three-blocks"],
)
def test_scripted_twin_equals_the_fast_csnn_bit_for_bit(options):
    """The CSNN's own forward (engine.neuro.spike_ops: folded batch norm, chunks, channels-last) and
    its TorchScript twin give the same spikes and membranes, static and encoded inputs."""
    from engine.export.torch_formats import to_torchscript
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("csnn", (1, 20, 40), 4, **options)
    x = torch.randn(6, 1, 20, 40) * 3
    model.input_norm.fit(x)
    model.train()
    for _ in range(3):  # running statistics away from their defaults
        model(x, steps=4).spikes.sum().backward()
    model.eval()
    module = to_torchscript(model, x[:1], steps=7, encoder="direct")
    seq = (torch.rand(5, 6, 1, 20, 40, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    total = 0.0
    with torch.no_grad():
        for inp, want in ((x, model(x, steps=7)), (seq, model(seq))):
            spikes, mem = module(inp)
            assert torch.equal(spikes, want.spikes) and torch.equal(mem, want.mem)
            assert float(mem.std()) > 0
            total += float(spikes.sum())
    assert total > 0
