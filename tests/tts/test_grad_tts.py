"""Grad-TTS model: shapes, padding invariance, determinism, durations, overfitting and ONNX parity."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from tts.grad_tts import GradTTS, GradTTSConfig, fix_len_compatibility, generate_path
from tts.score_net import Mish, ScoreNet, ScoreNetConfig, mish

N_VOCAB = 12


@pytest.fixture(autouse=True)
def one_thread():
    """The CI machine is small and shared: one intra-op thread is much faster than oversubscribed two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def open_attention_gates(net: torch.nn.Module) -> None:
    """ReZero gates start at 0; open them so that tests exercise the linear attention too.

    (Linear attention is quadratic in its input's scale, so an untrained net with open gates is only
    used on inputs of moderate size, not inside a sampling loop, where an untrained score lets x grow.)
    """
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "gate"):
                module.gate.fill_(0.5)


def tiny_model(seed: int = 0, open_gates: bool = False, **overrides) -> GradTTS:
    torch.manual_seed(seed)
    model = GradTTS(dataclasses.replace(GradTTSConfig.tiny(n_vocab=N_VOCAB), **overrides))
    if open_gates:
        open_attention_gates(model.score_net)
    return model.eval()


def padded_text(seqs: list[list[int]], pad_value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """list of id lists -> ids int64 [B, L] (padding = pad_value), lengths int64 [B]."""
    ids = torch.full((len(seqs), max(map(len, seqs))), pad_value, dtype=torch.long)
    for b, seq in enumerate(seqs):
        ids[b, : len(seq)] = torch.tensor(seq)
    return ids, torch.tensor([len(s) for s in seqs])


SEQS = [[1, 5, 3, 7, 2, 9, 4], [4, 8, 6], [10, 2, 2, 11, 3]]


def test_config():
    cfg = GradTTSConfig.base(n_vocab=148)
    assert cfg.segment_frames == 172 and cfg.segment_frames % 4 == 0
    n_params = sum(p.numel() for p in GradTTS(cfg).parameters())
    assert 14.5e6 < n_params < 15.2e6  # the paper's model has 14.84 M parameters
    assert GradTTSConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="segment_frames"):
        GradTTSConfig(n_vocab=10, segment_frames=30)
    with pytest.raises(ValueError, match="unknown"):
        GradTTSConfig.from_dict({"n_vocab": 10, "n_speakers": 2})
    with pytest.raises(ValueError, match="n_heads"):
        GradTTSConfig(n_vocab=10, n_channels=191)


def test_helpers():
    assert [fix_len_compatibility(n) for n in (1, 4, 5, 171, 172)] == [4, 4, 8, 172, 172]
    durations = torch.tensor([[2.0, 1.0, 3.0, 0.0]])  # [B=1, L=4]
    mask = torch.ones(1, 4, 8)
    mask[:, 3] = 0.0
    path = generate_path(durations, mask)  # [1, 4, 8]
    assert path[0].argmax(dim=0)[:6].tolist() == [0, 0, 1, 2, 2, 2]
    assert path[0, :, :6].sum(dim=0).tolist() == [1.0] * 6 and path[0, :, 6:].sum() == 0


def test_shapes():
    model = tiny_model()
    ids, lengths = padded_text(SEQS)
    mu_x, logw, x_mask = model.encode(ids, lengths)
    assert mu_x.shape == (3, 80, 7) and logw.shape == (3, 1, 7) and x_mask.shape == (3, 1, 7)
    assert x_mask.sum(dim=(1, 2)).tolist() == lengths.tolist()
    w_ceil = model.durations(logw, x_mask)
    assert torch.all(w_ceil[x_mask > 0] >= 1) and torch.all(w_ceil[x_mask == 0] == 0)
    mu_y, y_mask = model.expand(mu_x, w_ceil, x_mask)
    assert mu_y.shape[:2] == (3, 80) and mu_y.shape[2] % 4 == 0 and y_mask.shape == (3, 1, mu_y.shape[2])
    assert y_mask.sum(dim=(1, 2)).tolist() == w_ceil.sum(dim=(1, 2)).tolist()
    # Each frame of mu_y is the mu of the token it belongs to.
    first = int(w_ceil[0, 0, 0])
    torch.testing.assert_close(mu_y[0, :, :first], mu_x[0, :, :1].expand(-1, first))

    mel, mel_mask = model.synthesise(ids, lengths, n_timesteps=2, generator=torch.Generator().manual_seed(0))
    assert mel.shape == (3, 80, int(y_mask.sum(dim=2).max())) and mel_mask.shape == (3, 1, mel.shape[2])
    assert torch.all(mel[mel_mask.expand_as(mel) == 0] == 0)

    mel_t = torch.randn(3, 80, 30)
    losses = model.compute_loss(ids, lengths, mel_t, torch.tensor([30, 12, 21]), torch.Generator().manual_seed(0))
    assert set(losses) == {"dur_loss", "prior_loss", "diff_loss"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())


def test_encoder_ignores_padding():
    model = tiny_model()
    ids, lengths = padded_text(SEQS, pad_value=N_VOCAB - 1)  # non-zero garbage on padded positions
    mu_x, logw, _ = model.encode(ids, lengths)
    for b, seq in enumerate(SEQS):
        alone = model.encode(*padded_text([seq]))
        n = len(seq)
        torch.testing.assert_close(mu_x[b : b + 1, :, :n], alone[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logw[b : b + 1, :, :n], alone[1], atol=1e-5, rtol=1e-5)
        assert torch.all(mu_x[b, :, n:] == 0) and torch.all(logw[b, :, n:] == 0)


def test_score_net_ignores_padding():
    torch.manual_seed(1)
    net = ScoreNet(ScoreNetConfig(dim=8, groups=4, attn_heads=2, attn_dim_head=8)).eval()
    open_attention_gates(net)
    n_valid, n_alone, n_batch = 9, 12, 24  # 9 real frames, padded to 12 alone or 24 in a batch
    x, mu, t = torch.randn(1, 80, n_batch), torch.randn(1, 80, n_batch), torch.tensor([0.3])
    mask = torch.zeros(1, 1, n_batch)
    mask[..., :n_valid] = 1.0
    with torch.no_grad():
        batched = net(x, t, mu, mask)
        alone = net(x[..., :n_alone], t, mu[..., :n_alone], mask[..., :n_alone])
    torch.testing.assert_close(batched[..., :n_valid], alone[..., :n_valid], atol=1e-5, rtol=1e-5)
    assert torch.all(batched[..., n_valid:] == 0)
    with pytest.raises(ValueError, match="multiple of 4"):
        net(x[..., :10], t, mu[..., :10], mask[..., :10])


def test_synthesis_ignores_batch_padding():
    model = tiny_model()
    ids, lengths = padded_text(SEQS)
    noise = torch.randn(len(SEQS), 80, 200, generator=torch.Generator().manual_seed(3))  # per-item noise
    mel, mel_mask = model.synthesise(ids, lengths, n_timesteps=4, noise=noise, solver="heun")
    for b, seq in enumerate(SEQS):
        alone, alone_mask = model.synthesise(*padded_text([seq]), n_timesteps=4, noise=noise[b : b + 1], solver="heun")
        n = int(alone_mask.sum())
        assert int(mel_mask[b].sum()) == n
        torch.testing.assert_close(mel[b : b + 1, :, :n], alone, atol=1e-4, rtol=1e-4)


def test_seeds_control_all_randomness():
    model = tiny_model()
    ids, lengths = padded_text(SEQS)

    def synth(seed, solver="euler"):
        gen = torch.Generator().manual_seed(seed)
        return model.synthesise(ids, lengths, n_timesteps=3, solver=solver, generator=gen)[0]

    for solver in ("euler", "euler_maruyama"):
        torch.testing.assert_close(synth(0, solver), synth(0, solver), atol=0, rtol=0)
        assert not torch.allclose(synth(0, solver), synth(1, solver))

    mel, mel_lengths = torch.randn(3, 80, 50), torch.tensor([50, 40, 45])  # longer than the 32-frame segments

    def loss(seed):
        out = model.compute_loss(ids, lengths, mel, mel_lengths, generator=torch.Generator().manual_seed(seed))
        return torch.stack(list(out.values()))

    torch.testing.assert_close(loss(0), loss(0), atol=0, rtol=0)
    assert loss(0)[2] != loss(1)[2]  # diff_loss depends on the seed (segments, t, z)
    torch.testing.assert_close(loss(0)[:2], loss(1)[:2])  # dur and prior losses do not


def test_length_scale_scales_frames():
    model = tiny_model()
    with torch.no_grad():
        model.encoder.duration_predictor.proj.bias.fill_(math.log(4.0))  # about 4 frames per token
    ids, lengths = padded_text(SEQS)
    _, logw, x_mask = model.encode(ids, lengths)
    expected = (torch.exp(logw) * x_mask).sum(dim=(1, 2))  # [B] frames before rounding
    frames = {}
    for scale in (0.5, 1.0, 2.0):
        _, mel_mask = model.synthesise(ids, lengths, n_timesteps=1, length_scale=scale)
        frames[scale] = mel_mask.sum(dim=(1, 2))  # [B]
        # ceil adds less than one frame per token
        assert torch.all(frames[scale] >= scale * expected) and torch.all(frames[scale] < scale * expected + lengths)
    ratio = frames[2.0] / frames[0.5]
    assert torch.all((ratio > 3.3) & (ratio < 4.2)), ratio


def synthetic_batch():
    """ids, lengths, mel, mel_lengths: two utterances whose frames repeat a per-token mel vector, plus noise."""
    gen = torch.Generator().manual_seed(1)
    table = 2.0 * torch.randn(N_VOCAB, 80, generator=gen) - 4.0  # [n_vocab, 80] token "spectra"
    seqs, durations = [[1, 5, 3, 7, 2, 9], [4, 8, 6, 10]], [[3, 5, 2, 4, 6, 3], [4, 2, 5, 3]]
    ids, lengths = padded_text(seqs)
    mel_lengths = torch.tensor([sum(d) for d in durations])
    mel = torch.zeros(2, 80, int(mel_lengths.max()))
    for b, (seq, dur) in enumerate(zip(seqs, durations)):
        frames = torch.cat([table[i, :, None].expand(-1, d) for i, d in zip(seq, dur)], dim=1)  # [80, F_b]
        mel[b, :, : frames.shape[1]] = frames + 0.1 * torch.randn(frames.shape, generator=gen)
    return ids, lengths, mel, mel_lengths


def test_tiny_model_overfits_one_batch():
    model = tiny_model(segment_frames=16)  # 16-frame segments: shorter than both utterances, so crops happen
    ids, lengths, mel, mel_lengths = synthetic_batch()

    def eval_losses():
        model.eval()
        with torch.no_grad():
            gens = [torch.Generator().manual_seed(100 + i) for i in range(4)]  # same t, z, crops each time
            out = [model.compute_loss(ids, lengths, mel, mel_lengths, generator=g) for g in gens]
        model.train()
        return {k: sum(o[k].item() for o in out) / len(out) for k in out[0]}

    before = eval_losses()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(100):
        losses = model.compute_loss(ids, lengths, mel, mel_lengths, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    after = eval_losses()

    assert sum(after.values()) < sum(before.values()) / 4, (before, after)
    assert after["diff_loss"] < 0.7 * before["diff_loss"], (before, after)
    assert after["dur_loss"] < 0.5 * before["dur_loss"], (before, after)  # durations follow MAS


def test_bad_inputs():
    model = tiny_model()
    ids, lengths = padded_text(SEQS)
    with pytest.raises(ValueError, match="length"):
        model.encode(ids, torch.tensor([7, 3, 8]))
    with pytest.raises(ValueError, match="n_vocab"):
        model.encode(torch.full((1, 3), N_VOCAB), torch.tensor([3]))
    with pytest.raises(ValueError, match="frames"):
        model.compute_loss(ids, lengths, torch.randn(3, 80, 10), torch.tensor([10, 2, 10]))
    with pytest.raises(ValueError, match="noise"):
        model.synthesise(ids, lengths, noise=torch.randn(3, 80, 2))
    with pytest.raises(ValueError, match="solver"):
        model.synthesise(ids, lengths, solver="dpm")
    with pytest.raises(ValueError, match="length_scale"):
        model.synthesise(ids, lengths, length_scale=0.0)


# ----------------------------------------------------------------------------------------------- ONNX
ort = pytest.importorskip("onnxruntime")


def export_and_load(module, args, path, input_names, output_names, dynamic_axes):
    torch.onnx.export(
        module, args, str(path), input_names=input_names, output_names=output_names, opset_version=17,
        dynamic_axes=dynamic_axes, dynamo=False,
    )
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_score_net_onnx_matches_torch(tmp_path):
    net = tiny_model(open_gates=True).score_net
    args = (torch.randn(2, 80, 16), torch.rand(2), torch.randn(2, 80, 16), torch.ones(2, 1, 16))
    session = export_and_load(
        net, args, tmp_path / "score.onnx", ["x", "t", "mu", "mask"], ["score"],
        {"x": {0: "B", 2: "F"}, "t": {0: "B"}, "mu": {0: "B", 2: "F"}, "mask": {0: "B", 2: "F"},
         "score": {0: "B", 2: "F"}},
    )
    # Another batch size and length, with padding.
    x, mu, t = torch.randn(3, 80, 28), torch.randn(3, 80, 28), torch.tensor([1.0, 0.5, 1e-3])
    mask = torch.ones(3, 1, 28)
    mask[1, :, 19:] = 0.0
    mask[2, :, 6:] = 0.0
    with torch.no_grad():
        want = net(x, t, mu, mask).numpy()
    got = session.run(None, {"x": x.numpy(), "t": t.numpy(), "mu": mu.numpy(), "mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_mish_exports_without_softplus_and_matches_torch(tmp_path):
    import onnx

    x = torch.cat([torch.tensor([-1e4, -120.0, -30.0, -1e-3, 0.0, 1e-3, 19.9, 20.1, 30.0, 1e4]), 8 * torch.randn(500)])
    session = export_and_load(Mish(), (x,), tmp_path / "mish.onnx", ["x"], ["y"], {"x": {0: "N"}, "y": {0: "N"}})
    assert "Softplus" not in {n.op_type for n in onnx.load(str(tmp_path / "mish.onnx")).graph.node}
    got = session.run(None, {"x": x.numpy()})[0]
    want = (x.double() * torch.tanh(torch.nn.functional.softplus(x.double()))).numpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-30)
    np.testing.assert_allclose(mish(x).numpy(), want, rtol=2e-6, atol=1e-30)  # the eager form


class EncoderGraph(torch.nn.Module):
    """(ids, lengths) -> (mu_x, logw, x_mask): the encoder part of GradTTS as one graph."""

    def __init__(self, model: GradTTS) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        return self.model.encode(ids, lengths)


def test_encoder_onnx_matches_torch(tmp_path):
    graph = EncoderGraph(tiny_model()).eval()
    ids, lengths = padded_text(SEQS[:2])
    session = export_and_load(
        graph, (ids, lengths), tmp_path / "encoder.onnx", ["ids", "lengths"], ["mu_x", "logw", "x_mask"],
        {"ids": {0: "B", 1: "L"}, "lengths": {0: "B"}, "mu_x": {0: "B", 2: "L"}, "logw": {0: "B", 2: "L"},
         "x_mask": {0: "B", 2: "L"}},
    )
    ids, lengths = padded_text([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], [2, 7], [1, 8, 2, 8, 1]])  # longer, B = 3
    with torch.no_grad():
        want = [w.numpy() for w in graph(ids, lengths)]
    got = session.run(None, {"ids": ids.numpy(), "lengths": lengths.numpy()})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
