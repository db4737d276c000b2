"""The benchmark command: a tiny run writes the figures the README quotes."""
import json
import os
import subprocess
import sys

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
