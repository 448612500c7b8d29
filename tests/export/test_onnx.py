"""ONNX export: graph contracts, voice.json contents, atomic writes, fp16 weights, the fast upsampler."""

import dataclasses
import json
import os

import numpy as np
import onnx
import pytest
import torch

from export import onnx as export_onnx
from export.onnx import OPSET, export_bundle, voice_dict
from export.wrappers import PhaseConvTranspose2d, VocoderStep, default_schedule_name, load_acoustic, load_vocoder
from serve.bundle import FORMAT, FORMAT_VERSION, load_bundle
from tts.text import default_table
from vocoder.audio import MEL


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_graphs_have_named_dynamic_inputs_and_opset(tiny_bundle):
    expected = {
        "vocoder_step.onnx": ({"audio": ["batch", "samples"], "cond": ["batch"], "mel": ["batch", 80, "frames"]},
                              {"eps": ["batch", "samples"]}),
        "encoder.onnx": ({"ids": ["batch", "tokens"], "lengths": ["batch"]},
                         {"mu_x": ["batch", 80, "tokens"], "logw": ["batch", 1, "tokens"],
                          "x_mask": ["batch", 1, "tokens"]}),
        "score_step.onnx": ({"x": ["batch", 80, "frames"], "t": ["batch"], "mu": ["batch", 80, "frames"],
                             "mask": ["batch", 1, "frames"]}, {"score": ["batch", 80, "frames"]}),
    }
    for name, (inputs, outputs) in expected.items():
        model = onnx.load(tiny_bundle / name)
        assert {o.domain: o.version for o in model.opset_import}[""] == OPSET == 17
        assert {i.name: _dims(i) for i in model.graph.input} == inputs
        assert {o.name: _dims(o) for o in model.graph.output} == outputs
        elem = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
        for k, t in elem.items():
            assert t == (onnx.TensorProto.INT64 if k in ("ids", "lengths") else onnx.TensorProto.FLOAT)


def test_voice_json_contents(tiny_bundle, tiny_checkpoints):
    d = json.loads((tiny_bundle / "voice.json").read_text())
    assert d["format"] == FORMAT and d["format_version"] == FORMAT_VERSION
    assert d["mel"] == json.loads(json.dumps(dataclasses.asdict(MEL)))
    assert d["sample_rate"] == 22050 and d["precision"] == "fp32"
    assert d["acoustic"]["symbols"] == default_table().to_dict()
    assert d["acoustic"]["text"] == {"add_blank": True, "add_bos_eos": False}
    assert d["acoustic"]["decoder"] == {"steps": 10, "temperature": 1.5, "solver": "euler", "beta_min": 0.05,
                                        "beta_max": 20.0, "length_multiple": 4}
    voc = load_vocoder(tiny_checkpoints["diffwave"])
    assert d["vocoder"]["model"] == "diffwave" and d["vocoder"]["default_schedule"] == "fast6"
    assert d["vocoder"]["schedules"] == voc.schedules  # every named schedule of the checkpoint
    assert d["vocoder"]["config"] == voc.config
    assert d["acoustic"]["config"] == load_acoustic(tiny_checkpoints["acoustic"]).config
    assert d["versions"]["opset"] == 17 and d["versions"]["torch"] == torch.__version__
    assert set(d["graphs"]) == {"vocoder_step", "encoder", "score_step"}


def test_default_schedule_prefers_searched():
    rec = {"betas": [0.1, 0.2], "conds": [1.0, 2.0]}
    assert default_schedule_name({"fast6": rec, "train": rec}) == "fast6"
    assert default_schedule_name({"fast6": rec, "searched6": rec, "searched4": rec}) == "searched6"
    assert default_schedule_name({"fast6": rec, "searched4": rec}) == "searched4"


def test_phase_conv_equals_transposed_conv():
    torch.manual_seed(0)
    for s in (2, 16):
        conv = torch.nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2))
        x = torch.randn(2, 1, 9, 7)
        np.testing.assert_allclose(PhaseConvTranspose2d(conv)(x).detach(), conv(x).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="supports"):
        PhaseConvTranspose2d(torch.nn.ConvTranspose2d(1, 1, (3, 5), stride=(1, 2)))


def test_vocoder_step_wrapper_leaves_model_alone(tiny_checkpoints):
    voc = load_vocoder(tiny_checkpoints["diffwave"])
    step = VocoderStep(voc.model)
    assert isinstance(voc.model.upsampler.conv1, torch.nn.ConvTranspose2d)
    x = torch.randn(2, 5 * 256), torch.tensor([3.0, 40.0]), torch.randn(2, 80, 5)
    with torch.no_grad():
        np.testing.assert_allclose(step(*x), voc.model(*x), atol=1e-5)


def test_export_refuses_existing_dir_and_overwrites_on_request(tiny_checkpoints, tmp_path):
    out = tmp_path / "voice"
    export_bundle(None, tiny_checkpoints["diffwave"], out)
    first = (out / "voice.json").read_text()
    with pytest.raises(FileExistsError):
        export_bundle(None, tiny_checkpoints["diffwave"], out)
    export_bundle(None, tiny_checkpoints["diffwave"], out, overwrite=True, default_schedule="train")
    assert load_bundle(out).vocoder.default_schedule == "train" and (out / "voice.json").read_text() != first
    assert sorted(os.listdir(tmp_path)) == ["voice"]  # no temporary or backup directories left behind


def test_export_is_atomic_on_failure(tiny_checkpoints, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_onnx, "write_voice_json", boom)  # fails after the graphs are written
    with pytest.raises(RuntimeError, match="disk full"):
        export_bundle(None, tiny_checkpoints["diffwave"], tmp_path / "voice")
    assert os.listdir(tmp_path) == []


def test_export_cli_sets_the_voice_decoder_steps_and_rejects_bad_ones(tiny_checkpoints, tmp_path, capsys):
    from serve.cli import main

    ck = tiny_checkpoints
    base = ["export", "--acoustic", str(ck["acoustic"]), "--vocoder", str(ck["diffwave"]), "--no-verify"]
    assert main(base + ["--out", str(tmp_path / "v4"), "--decoder-steps", "4"]) == 0
    assert load_bundle(tmp_path / "v4").acoustic.decoder.steps == 4
    assert main(base + ["--out", str(tmp_path / "v0"), "--decoder-steps", "0"]) == 2
    assert "--decoder-steps must be a positive" in capsys.readouterr().err
    assert not (tmp_path / "v0").exists()


def test_export_cli_stores_the_post_filter_setting(tiny_checkpoints, tmp_path, capsys):
    from serve.cli import main
    from vocoder.postfilter import OFF, PostFilter

    base = ["export", "--vocoder", str(tiny_checkpoints["wavegrad"]), "--no-verify"]
    assert main(base + ["--out", str(tmp_path / "default")]) == 0
    assert load_bundle(tmp_path / "default").vocoder.postfilter == PostFilter()
    assert main(base + ["--out", str(tmp_path / "off"), "--postfilter-iterations", "0"]) == 0
    assert load_bundle(tmp_path / "off").vocoder.postfilter == OFF
    assert main(base + ["--out", str(tmp_path / "bad"), "--postfilter-iterations", "-2"]) == 2
    assert "post-filter iterations must be" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_export_rejects_wrong_checkpoints(tiny_checkpoints, tmp_path):
    with pytest.raises(ValueError, match="not an acoustic model"):
        export_bundle(tiny_checkpoints["diffwave"], tiny_checkpoints["diffwave"], tmp_path / "a")
    with pytest.raises(ValueError, match="not a vocoder"):
        export_bundle(None, tiny_checkpoints["acoustic"], tmp_path / "b")
    with pytest.raises(ValueError, match="no schedule|no vocoder schedule"):
        export_bundle(None, tiny_checkpoints["diffwave"], tmp_path / "c", default_schedule="nope")
    assert not any(p.name in ("a", "b", "c") for p in tmp_path.iterdir())


def test_fp16_bundle_stores_half_weights_with_float32_io(tiny_wavegrad_bundle):
    model = onnx.load(tiny_wavegrad_bundle / "vocoder_step.onnx")
    types = {i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in [*model.graph.input,
                                                                                 *model.graph.output])
    half = sum(int(np.prod(i.dims)) for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16)
    full = sum(int(np.prod(i.dims)) for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    assert half > 5 * full  # the conv weights are half; what stays float32 is small (biases, constants)
    assert load_bundle(tiny_wavegrad_bundle).precision == "fp16"


def test_decoder_defaults_come_from_checkpoint_metadata_unless_given(tiny_checkpoints):
    voc, ac = load_vocoder(tiny_checkpoints["diffwave"]), load_acoustic(tiny_checkpoints["acoustic"])
    graphs = {n: {"file": f"{n}.onnx", "sha256": ""} for n in ("vocoder_step", "encoder", "score_step")}
    ac = dataclasses.replace(ac, decoder={"n_steps": 4, "temperature": 1.2, "solver": "heun"})
    dec = voice_dict(voc, ac, graphs)["acoustic"]["decoder"]
    assert (dec["steps"], dec["temperature"], dec["solver"]) == (4, 1.2, "heun")
    dec = voice_dict(voc, ac, graphs, decoder_steps=7, solver="euler")["acoustic"]["decoder"]
    assert (dec["steps"], dec["temperature"], dec["solver"]) == (7, 1.2, "euler")
