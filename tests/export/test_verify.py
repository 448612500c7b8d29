"""export.verify: a bundle matches its torch models; a mismatched checkpoint is caught."""

from export.verify import verify_bundle
from tests.conftest import make_vocoder_checkpoint


def test_tts_bundle_matches_torch(tiny_bundle, tiny_checkpoints):
    report = verify_bundle(tiny_bundle, tiny_checkpoints["diffwave"], tiny_checkpoints["acoustic"], text="Hi there.",
                           threads=1)
    assert report.ok, report.format()
    names = " ".join(c.name for c in report.checks)
    for part in ("vocoder_step", "encoder.mu_x", "encoder.logw", "score_step", "mel (text -> mel)",
                 "audio (vocoder", "audio (text -> audio)"):
        assert part in names
    # fp32 graphs agree to far better than the stated tolerance
    assert max(c.max_abs for c in report.checks if c.name.startswith(("encoder", "score_step"))) < 1e-4
    assert report.to_dict()["ok"] is True


def test_fp16_vocoder_bundle_within_fp16_tolerance(tiny_wavegrad_bundle, tiny_checkpoints):
    report = verify_bundle(tiny_wavegrad_bundle, tiny_checkpoints["wavegrad"], threads=1)
    assert report.precision == "fp16" and report.ok, report.format()
    step = [c for c in report.checks if c.name.startswith("vocoder_step B")]
    assert all(c.max_abs > 0 for c in step)  # weights really are rounded ...
    assert all(c.max_abs < 0.05 * c.scale for c in step)  # ... but only slightly


def test_verify_catches_a_different_model(tiny_wavegrad_bundle, tmp_path):
    other = make_vocoder_checkpoint(tmp_path / "other.pt", "wavegrad", seed=1)
    report = verify_bundle(tiny_wavegrad_bundle, other, threads=1)
    assert not report.ok
    assert "FAIL" in report.format()
