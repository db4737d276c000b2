"""The kill-and-resume check shared by every model's resume test: run a `trainers.train` command to
completion, run it again in another directory and have it SIGKILL itself right after its first
checkpoint (`trainers.callbacks.KILL_AFTER_CHECKPOINT`: the kill point is a step, not a moment, so
the test does not depend on how fast the machine is), rerun it there, and hand both run directories
back for comparison."""
import json
import os
import signal
import subprocess

from trainers.callbacks import KILL_AFTER_CHECKPOINT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kill_after_first_checkpoint_and_resume(train_command, tmp_path):
    """train_command(output_dir) → argv. Returns (uninterrupted_dir, resumed_dir, killed_at_step)."""
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    subprocess.run(train_command(uninterrupted), check=True, cwd=REPO, capture_output=True)

    killed = subprocess.run(train_command(interrupted), check=False, cwd=REPO,
                            capture_output=True, text=True,
                            env={**os.environ, KILL_AFTER_CHECKPOINT: "1"})
    assert killed.returncode == -signal.SIGKILL, \
        f"the run was not killed at its first checkpoint: {killed.stderr[-2000:]}"
    killed_at = json.loads((interrupted / "checkpoint_state.json").read_text())["global_step"]
    assert not (interrupted / "results.json").exists()

    rerun = subprocess.run(train_command(interrupted), check=True, cwd=REPO, capture_output=True,
                           text=True)
    assert "Resuming from" in rerun.stdout
    return uninterrupted, interrupted, killed_at


def to_first_checkpoint_format(out):
    """Rewrite run directory `out` as runs were saved before the checkpoint manifest: one
    `checkpoint.keras`, `checkpoint_state.json` with the step and wall time only, the settings in
    `config.json` (run directories of that time must still resume)."""
    from pathlib import Path

    out = Path(out)
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    newest = manifest["checkpoints"][-1]
    for entry in manifest["checkpoints"]:
        if entry is not newest:
            (out / entry["file"]).unlink()
    (out / newest["file"]).rename(out / "checkpoint.keras")
    (out / "checkpoint_state.json").write_text(json.dumps(
        {"global_step": newest["step"], "train_wall_time_s": newest["train_wall_time_s"]}))
