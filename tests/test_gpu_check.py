"""bench/gpu_check.py, the GPU profile's one-command check, run on the CPU at tiny size: the profile's settings
(bf16 autocast, torch.compile, channels-last) through the same loop, with FLOPs counted."""

import importlib.util
import json

import pytest

from tests.conftest import REPO


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench/gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_peak_table_matches_the_longest_name_first():
    gpu_check = _gpu_check()
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_check.peak_tflops("NVIDIA H200") == gpu_check.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_check.peak_tflops("NVIDIA GeForce GTX 1080") is None


@pytest.mark.slow  # torch.compile on the CPU: ~1 min for two families
def test_the_gpu_profile_runs_on_the_cpu_with_bf16_compile_and_channels_last(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    rows = _gpu_check().main(["--models", "dcgan", "vqvae_prior", "--tiny", "--device", "cpu", "--steps", "2",
                              "--warmup", "1", "--peak-tflops", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "bf16, compile, channels-last" in printed, printed
    assert [r["model"] for r in rows] == ["dcgan", "vqvae_prior"]
    for row in rows:
        assert row["batch"] == 8 and row["images_per_s"] > 0 and row["gflop_per_image"] > 0
        assert 0 < row["of_peak"] == pytest.approx(row["tflop_per_s"])  # a 1 TFLOP/s peak: the share is the rate
    saved = json.loads(out.read_text())
    assert saved["train"]["precision"] == "bf16" and saved["train"]["compile"] and saved["train"]["use_gpu"] == "no"
