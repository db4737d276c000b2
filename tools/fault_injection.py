r"""Inject faults into tiny `trainers.train` runs, repeatedly, and check that no run is lost, no
artifact holds non-finite values and no run mixes two runs' settings.

    python tools/fault_injection.py [--rounds=3] [--work_dir=DIR] [--seed=0]

Each round, on a tiny β-VAE run (latent size 3, batch 8, a checkpoint every 4 steps):
- kill: SIGKILL the run at a random checkpoint (often while it writes the next one), rerun it;
- corrupt: SIGKILL it, damage its newest checkpoint (flipped bytes or a truncated file), rerun it
  (it must fall back to the previous checkpoint);
- disk full: run it with a file-size limit (RLIMIT_FSIZE, what a full disk looks like to the
  process: writes fail with EFBIG) so a checkpoint write fails, check nothing partial is left,
  rerun it without the limit;
- race: start two processes on one directory at once, one with other settings (β); one must be
  refused and the directory must hold one run's settings only;
- diverge: a run with --learning_rate=1e6 must stop with an error and leave only finite files.

A resumed run is "lost" unless it ends at its step count with exactly the weights of an
uninterrupted run of the same settings; a run is "mixed" when its results, model and checkpoint
manifest disagree about its settings. Prints "N faults injected, L runs lost, F non-finite
artifacts, M mixed runs" and exits 1 unless all three counts are 0.
"""
import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process loads models to check them
REPO = Path(__file__).resolve().parent.parent
STEPS, EVERY = 24, 4


def command(out, beta=4.0, learning_rate=None):
    argv = [sys.executable, "-m", "trainers.train", "--model=beta_vae", f"--model_arg=beta={beta}",
            "--latent_dim=3", "--batch_size=8", f"--steps={STEPS}", f"--checkpoint_every={EVERY}",
            "--log_every=4", "--image_every=1000", "--eval_batches=1", "--noexport",
            f"--output_dir={out}"]
    return argv + ([f"--learning_rate={learning_rate}"] if learning_rate else [])


def environment():
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def train(out, limit_bytes=None, **settings):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(command(out, **settings), cwd=REPO, env=environment(), check=False,
                          capture_output=True, text=True,
                          preexec_fn=limit if limit_bytes else None)


def kill_at_a_checkpoint(out, rng, first=EVERY, **settings):
    """Start the run and SIGKILL it once its manifest names a random checkpoint step from `first`
    on (the kill then often lands while the next checkpoint is written)."""
    target = rng.choice(range(first, STEPS, EVERY))
    process = subprocess.Popen(command(out, **settings), cwd=REPO, env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "checkpoint_state.json"
    while process.poll() is None:
        try:
            if json.loads(manifest.read_text())["global_step"] >= target:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(rng.uniform(0.0, 0.05))
    process.send_signal(signal.SIGKILL)
    process.wait()


def weights(path):
    from zoo import models

    return [v.numpy() for v in models.load(path).weights]


class Tally:
    def __init__(self, reference):
        self.reference = reference
        self.faults = self.lost = self.nonfinite = self.mixed = 0
        self.notes = []

    def lost_run(self, name, why):
        self.lost += 1
        self.notes.append(f"{name}: run lost ({why})")

    def check_finished(self, name, out, done):
        """A resumed run must finish with the uninterrupted run's weights."""
        import numpy as np

        if done.returncode != 0 or not (out / "results.json").exists():
            tail = done.stderr.strip().splitlines()[-1:] or ["no error"]
            return self.lost_run(name, f"rerun exit {done.returncode}: {tail[0]}")
        steps = json.loads((out / "results.json").read_text())["steps"]
        same = all(np.array_equal(a, b) for a, b in
                   zip(weights(out / "model.keras"), weights(self.reference / "model.keras")))
        if steps != STEPS or not same:
            self.lost_run(name, f"ended at step {steps}, weights equal: {same}")

    def check_files(self, name, out):
        """No .keras file with non-finite values, no temporary file left, one run's settings."""
        from trainers.run_dir import nonfinite_variables
        from zoo import models

        for path in out.glob("*.keras"):
            try:
                model = models.load(path)
            except (OSError, ValueError) as error:
                self.notes.append(f"{name}: {path.name} does not load ({error})")
                continue
            if nonfinite_variables(model):
                self.nonfinite += 1
                self.notes.append(f"{name}: {path.name} holds non-finite values")
        leftovers = [p.name for p in out.iterdir() if ".tmp" in p.name]
        if leftovers:
            self.notes.append(f"{name}: temporary files left: {leftovers}")
        manifest = out / "checkpoint_state.json"
        if manifest.exists() and (out / "results.json").exists():
            betas = {json.loads(manifest.read_text())["run"]["model_args"]["beta"],
                     json.loads((out / "results.json").read_text())["model_config"]["beta"],
                     json.loads((out / "results.json").read_text())["config"]["model_args"]
                     ["beta"]}
            if len(betas) > 1:
                self.mixed += 1
                self.notes.append(f"{name}: mixed run, β values {sorted(betas)}")


def damage(path, rng):
    content = bytearray(path.read_bytes())
    if rng.random() < 0.5:
        del content[rng.randrange(len(content) // 4, len(content)):]  # truncated
    else:
        for _ in range(8):
            content[rng.randrange(len(content))] ^= 0xFF  # flipped bytes
    path.write_bytes(bytes(content))


def one_round(work, rng, tally, round_index):
    base = work / f"round{round_index}"
    base.mkdir()

    out = base / "kill"  # 1. kill and resume
    kill_at_a_checkpoint(out, rng)
    tally.faults += 1
    tally.check_finished("kill", out, train(out))
    tally.check_files("kill", out)

    out = base / "corrupt"  # 2. kill, damage the newest checkpoint, resume from the one before
    kill_at_a_checkpoint(out, rng, first=2 * EVERY)
    manifest = json.loads((out / "checkpoint_state.json").read_text())
    damage(out / manifest["checkpoints"][-1]["file"], rng)
    tally.faults += 2
    tally.check_finished("corrupt", out, train(out))
    tally.check_files("corrupt", out)

    out = base / "disk_full"  # 3. a write that fails part-way, then a rerun with room
    failed = train(out, limit_bytes=rng.choice([20_000, 200_000, 2_000_000]))
    tally.faults += 1
    if failed.returncode == 0:
        tally.notes.append("disk_full: the limited run did not fail")
    tally.check_files("disk_full", out)
    tally.check_finished("disk_full", out, train(out))

    out = base / "race"  # 4. two processes, other settings, one directory
    first, second = (subprocess.Popen(command(out, beta=beta), cwd=REPO, env=environment(),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True) for beta in (4.0, 1.0))
    codes = [p.wait() for p in (first, second)]
    tally.faults += 1
    if codes.count(0) != 1:
        tally.notes.append(f"race: exit statuses {codes} (one run should win, one be refused)")
    if codes[0] != 0:  # the β=1 run won: the β=4 run must be refused again, not mixed in
        tally.faults += 1
        if train(out).returncode == 0:
            tally.mixed += 1
            tally.notes.append("race: the β=4 run was accepted into the β=1 directory")
    else:
        tally.check_finished("race", out, train(out))
    tally.check_files("race", out)

    out = base / "diverge"  # 5. divergence
    done = train(out, learning_rate=1e6)
    tally.faults += 1
    if done.returncode != 1 or "diverged" not in done.stderr:
        tally.notes.append(f"diverge: exit {done.returncode}, not the divergence error")
    if (out / "model.keras").exists() or (out / "results.json").exists():
        tally.nonfinite += 1
        tally.notes.append("diverge: final artifacts written")
    tally.check_files("diverge", out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work_dir", default=None, help="default: a temporary directory")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="fault_injection_"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    started = time.time()
    reference = work / "reference"
    if not (reference / "results.json").exists():
        shutil.rmtree(reference, ignore_errors=True)
        done = train(reference)
        if done.returncode != 0:
            sys.exit(f"error: the uninterrupted reference run failed: {done.stderr[-2000:]}")
    tally = Tally(reference)
    for index in range(args.rounds):
        one_round(work, rng, tally, index)
        print(f"round {index + 1}/{args.rounds}: {tally.faults} faults so far", flush=True)
    for note in tally.notes:
        print("  " + note)
    print(f"{tally.faults} faults injected, {tally.lost} runs lost, {tally.nonfinite} non-finite "
          f"artifacts, {tally.mixed} mixed runs ({args.rounds} rounds, "
          f"{time.time() - started:.0f}s; work dir {work})")
    sys.exit(0 if tally.lost == tally.nonfinite == tally.mixed == 0 else 1)


if __name__ == "__main__":
    main()
