"""The benchmark command: a tiny run writes the figures the README quotes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_against_a_baseline_writes_rates_ratio_and_flops(tmp_path):
    output = tmp_path / "benchmark.json"
    subprocess.run([sys.executable, "-m", "trainers.benchmark", "--model=dip_vae_i",
                    "--baseline=beta_vae", "--steps=2", "--rounds=2", f"--output={output}"],
                   cwd=REPO, check=True, capture_output=True, timeout=600)
    result = json.loads(output.read_text())
    assert set(result["steps_per_s"]) == {"in_memory", "procedural_stream", "baseline_in_memory"}
    assert len(result["step_time_ratio_per_round"]) == 2
    assert result["step_time_ratio_vs_baseline"] > 0
    # DIP-VAE adds a covariance of a 64 × 10 matrix: the β-VAE's FLOPs, within 1%.
    assert abs(result["gflop_per_step"] / 6.2668 - 1) < 0.01


def test_the_pytorch_peer_has_our_parameter_count_and_trains():
    """The --against=pytorch peer is the same network: as many parameters as the zoo's β-VAE,
    and a step lowers nothing to NaN (skipped without the [bench] extra)."""
    pytest.importorskip("torch")
    from trainers import torch_peer
    from zoo import models

    step = torch_peer.build_step(batch_size=8)
    losses = [step() for _ in range(3)]
    assert all(np.isfinite(losses))
    ours = models.get("beta_vae")
    ours(np.zeros((1, 64, 64, 1), np.float32))
    assert step.num_parameters == sum(int(np.prod(w.shape)) for w in ours.trainable_weights)


def test_without_pytorch_the_benchmark_says_how_to_install_it():
    from trainers import torch_peer

    assert "pip install -e '.[bench]'" in torch_peer.install_hint()
