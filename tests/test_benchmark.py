"""The benchmark command: a tiny run writes the figures the README quotes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
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


@pytest.mark.slow  # imports and trains the PyTorch peer (about 20 s on 2 cores)
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


# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_benchmark_against_keras_layers_with_one_thread_and_cpu_clock(tmp_path):
    output = tmp_path / "benchmark.json"
    subprocess.run([sys.executable, "-m", "trainers.benchmark", "--baseline_keras_layers",
                    "--threads=1", "--clock=cpu", "--steps=2", "--rounds=1",
                    f"--output={output}"], cwd=REPO, check=True, capture_output=True, timeout=600)
    result = json.loads(output.read_text())
    assert result["baseline"] == "beta_vae with keras.layers.Conv2DTranspose"
    assert (result["threads"], result["clock"]) == (1, "cpu")
    assert result["step_time_ratio_vs_baseline"] > 0


# Slow (half a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_profile_step_prints_parts_layers_and_op_types():
    out = subprocess.run([sys.executable, "-m", "trainers.profile_step", "--model=beta_vae",
                          "--steps=1", "--batch_size=8"], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    lines = out.splitlines()
    assert lines[0].startswith("beta_vae train step from step 0, batch 8, 1 thread")
    parts = {line.split()[0]: line for line in lines[2:7]}
    assert set(parts) == {"part", "decoder", "encoder", "posterior_head", "other"}
    totals = [float(parts[p].split()[-1].rstrip("%")) for p in parts if p != "part"]
    assert abs(sum(totals) - 100) < 0.5
    assert any("decoder[6] Conv2DTranspose 32→1" in line for line in lines)
    assert "by op type:" in lines


def test_profile_step_reads_part_layer_and_direction_from_op_names():
    from trainers.profile_step import part_of

    parts = {"encoder", "decoder"}
    assert part_of("gradient_tape/decoder_1/decoder6_1/Conv2D", parts) == ("decoder", 6,
                                                                           "backward")
    assert part_of("encoder_1/encoder12/Relu", parts) == ("encoder", 12, "forward")
    assert part_of("decoder_1/Reshape", parts) == ("decoder", None, "forward")
    # a layer called inside a tf.cond branch, outside its sub-network (CascadeVAE's unary pass)
    assert part_of("cond/then/_10/decoder3_2/conv_transpose", parts) == ("decoder", 3, "forward")
    assert part_of("divergence_guard_update/then/_40/adam/Sub", parts) == ("other", None,
                                                                           "forward")


def test_packing_commands():
    from trainers.packing import parse_packing, train_command

    assert parse_packing("2x1") == (2, 1) and parse_packing("1X2") == (1, 2)
    for bad in ("2", "0x1", "ax1"):
        with pytest.raises(ValueError, match="RUNSxTHREADS"):
            parse_packing(bad)
    command = train_command("runs/x", 1, "beta_vae", ["beta=4"], "dsprites", 300)
    assert command[1:3] == ["-m", "trainers.train"]
    assert {"--threads=1", "--noexport", "--model_arg=beta=4", "--steps=300",
            "--output_dir=runs/x"} <= set(command)


@pytest.mark.slow
def test_packing_runs_and_prints_machine_totals(tmp_path):
    output = tmp_path / "packing.json"
    out = subprocess.run([sys.executable, "-m", "trainers.packing", "--packings=1x1",
                          "--steps=3", f"--output={output}"], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    assert "1 run(s) × 1 thread(s): machine total" in out
    result = json.loads(output.read_text())
    assert result["ratio_to_first"] == {"1x1": 1.0}
