"""`make demo` (trainers.demo): it starts from a published model (here a tiny one published into
a temporary registry) and says so plainly when nothing is published."""
import subprocess
import sys

import pytest

from trainers import demo
from zoo import pretrained


def test_the_demo_starts_from_a_published_model(tiny_zoo, tmp_path, capsys):
    failures = demo.from_the_zoo(None, tiny_zoo, tmp_path, finetune_steps=2)
    printed = capsys.readouterr().out
    assert failures == [], printed
    out = tmp_path / "tiny_beta_vae"
    for text in ("From the zoo: tiny_beta_vae", "Card scores:", "mig/mig", "on fresh data",
                 "the card: ", "agrees", "Fine-tuned 2 steps with fit", "answered one request",
                 str(out / "traversals.gif"), str(out / "traversals.png"),
                 str(out / "fine_tuned.keras"), str(tiny_zoo.parent / "cards/tiny_beta_vae.md")):
        assert text in printed, text
    for picture in ("traversals.gif", "traversals.png"):
        assert (out / picture).stat().st_size > 0
    assert (out / "saved_model" / "saved_model.pb").is_file()
    recorded = pretrained.entry("tiny_beta_vae", tiny_zoo)["scores"]["mig/mig"]
    assert f"the card: {recorded:.4f}" in printed


def test_with_nothing_published_the_demo_says_so_and_goes_on(tmp_path, capsys):
    registry = tmp_path / "registry.json"
    registry.write_text('{"models": {}}')
    assert demo.from_the_zoo(None, registry, tmp_path / "out", finetune_steps=2) == []
    assert f"No model is published in {registry} yet" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_an_unpublished_name_is_refused(tiny_zoo, tmp_path):
    with pytest.raises(ValueError, match="No published model named 'nope'.*tiny_beta_vae"):
        demo.from_the_zoo("nope", tiny_zoo, tmp_path, finetune_steps=2)


@pytest.mark.slow  # the whole demo with tiny settings: about a minute on a busy 2-core machine
def test_the_whole_demo_runs_from_the_zoo_then_trains(tiny_zoo, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainers.demo", f"--demo_registry={tiny_zoo}",
         f"--demo_zoo_dir={tmp_path / 'zoo'}", f"--demo_dir={tmp_path / 'demo'}",
         "--demo_steps=4", "--demo_finetune_steps=2"],
        capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "From the zoo: tiny_beta_vae" in done.stdout
    assert "Reloaded .keras file and SavedModel match the trained model." in done.stdout
    assert "Demo finished" in done.stdout
