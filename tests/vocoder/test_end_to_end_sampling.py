"""End-to-end sampling through :func:`vocoder.inference.vocode` with a memorising oracle in place of the
network (:mod:`tests.oracle`): every step must be told its own noise level, and the sample must come back
to the clean waveform. The runtime's chunked sampling is checked the same way in ``tests/serve``.
"""

import numpy as np
import pytest
import torch

from tests.oracle import OracleDenoiser, clean_wave, expected_spreads, level_of_cond
from vocoder import diffusion as D
from vocoder.inference import default_schedules, vocode
from vocoder.metrics import log_mel_l1
from vocoder.train import train_betas


class OracleVocoder(torch.nn.Module):
    """:class:`tests.oracle.OracleDenoiser` behind the vocoders' ``forward(audio, cond, mel)``."""

    def __init__(self, model: str, clean: np.ndarray):
        super().__init__()
        self.oracle = OracleDenoiser(model, clean)

    def forward(self, audio: torch.Tensor, cond: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """audio ``[B, T]``, cond ``[B]``, mel ``[B, 80, F]`` -> eps ``[B, T]``."""
        eps = self.oracle(audio.double().numpy(), cond.double().numpy(), mel.numpy())
        return torch.from_numpy(eps).to(audio.dtype)


@pytest.mark.parametrize("model", ["diffwave", "wavegrad"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_vocode_returns_the_clean_waveform_with_an_oracle_model(model, sampler):
    clean = clean_wave()
    for name, schedule in default_schedules(model, train_betas(model)).items():
        net = OracleVocoder(model, clean)
        out = vocode(net, net.oracle.mel, schedule, sampler=sampler, seed=1)
        assert out.shape == clean.shape and out.dtype == np.float32
        # (WaveGrad's level 1 - 5e-7 is conditioned in float32, which costs the oracle ~1e-4 at the end)
        np.testing.assert_allclose(out, clean, atol=1e-3, err_msg=f"{model} {name} {sampler}")
        assert log_mel_l1(clean, out) < 0.02
        told, spread = net.oracle.trace()
        # one call per step, from the noisiest level down, each told the level of its own step
        np.testing.assert_allclose(told, D.noise_levels(np.asarray(schedule["betas"]))[::-1], rtol=1e-5)
        expected = expected_spreads(np.asarray(schedule["betas"]), sampler, spread[0])
        np.testing.assert_allclose(spread, expected, rtol=0.03,
                                   err_msg=f"{model} {name} {sampler}: x_n is not at the level the model is told")


def test_fast_schedule_conditioning_tells_the_model_the_inference_noise_level():
    """DiffWave's fast6 conds, read back as levels, equal the fast schedule's own levels."""
    schedule = default_schedules("diffwave", D.DIFFWAVE_TRAIN_BETAS)["fast6"]
    levels = level_of_cond("diffwave", np.asarray(schedule["conds"]))
    np.testing.assert_allclose(levels, D.noise_levels(np.asarray(schedule["betas"])), rtol=1e-6)


def test_a_wrong_conditioning_value_is_caught_by_the_oracle():
    """The checks have teeth: conditioning on the first K training steps while sampling with the fast
    schedule (a plausible plumbing bug) puts x_n off the level the model is told."""
    clean = clean_wave()
    fast = default_schedules("diffwave", D.DIFFWAVE_TRAIN_BETAS)["fast6"]
    wrong = {"betas": fast["betas"], "conds": list(range(len(fast["betas"])))}
    net = OracleVocoder("diffwave", clean)
    vocode(net, net.oracle.mel, wrong, sampler="ddpm", seed=1)
    _, spread = net.oracle.trace()
    assert np.max(np.abs(spread / expected_spreads(np.asarray(fast["betas"]), "ddpm", spread[0]) - 1)) > 0.5


def test_a_shifted_mel_is_caught_by_the_oracle():
    clean = clean_wave()
    net = OracleVocoder("diffwave", clean)
    schedule = default_schedules("diffwave", D.DIFFWAVE_TRAIN_BETAS)["fast6"]
    with pytest.raises(AssertionError, match="not a window"):
        vocode(net, np.roll(net.oracle.mel, 3, axis=1), schedule)
