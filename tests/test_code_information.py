"""What a discrete code learned when it is not the factor it is scored against, and the picture of
what each category draws."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo.data
from zoo import assignment, metrics, models, visualize
from zoo.data.synthetic import IdentityData


def _code_of_factor(k):
    """A stand-in code function: factor `k` modulo 3 (the observations are the factors)."""
    def code(images):
        return np.rint(np.asarray(images)).astype(np.int64).reshape(len(images), -1)[:, k] % 3
    return code


def test_code_information_names_the_factor_the_code_follows():
    data = IdentityData(factor_sizes=(3, 9, 4))
    information = assignment.code_information(data, _code_of_factor(1), num_samples=3000)
    assert information["factor1"] > 0.99
    assert information["factor0"] < 0.01 and information["factor2"] < 0.01


def test_latent_information_finds_each_factor_in_the_latent_that_holds_it():
    data = IdentityData(factor_sizes=(3, 9, 4))

    def means(images):
        factors = np.asarray(images).reshape(len(images), -1)
        # latent 0 mixes factors 0 and 2 (as sprite area mixes shape and scale); latent 1 is
        # factor 1; latent 2 is constant.
        return np.stack([4 * factors[:, 0] + factors[:, 2], factors[:, 1],
                         np.zeros(len(factors))], axis=1)

    information = assignment.latent_information(data, means, num_samples=3000)
    assert len(information) == 3
    assert information[0]["factor0"] > 0.99 and information[0]["factor2"] > 0.99
    assert information[0]["factor1"] < 0.01
    assert information[1]["factor1"] > 0.99 and information[1]["factor0"] < 0.01
    assert information[2] == {"factor0": 0.0, "factor1": 0.0, "factor2": 0.0}


def test_sweep_shows_the_code_along_every_value_of_the_swept_factor():
    data = IdentityData(factor_sizes=(3, 9, 4))
    sweeps = assignment.code_sweep(data, _code_of_factor(1), "factor0", "factor1", bases=2)
    assert len(sweeps) == 2
    for entry in sweeps:
        assert entry["codes_along_factor1"] == {str(v): "012012012" for v in range(3)}


@pytest.mark.parametrize("name, kwargs", [
    ("cascade_vae", {"latent_dim": 4, "stage_steps": 10, "discrete_stage": 1}),
    ("joint_vae", {"latent_dim": 4, "categorical_dims": [3, 2]}),
])
def test_the_category_picture_decodes_each_image_with_every_category(binary_images, name,
                                                                      kwargs):
    model = models.get(name, seed=0, **kwargs)
    model.global_step.assign(10)  # CascadeVAE: in the discrete stage
    images = binary_images[:3]
    grid, inferred = visualize.category_grid(model, images)
    height, width = images.shape[1:3]
    assert grid.shape == (3 * (height + 1) + 1, 4 * (width + 1) + 1, 1)  # the image + 3 categories

    def cell(row, column):
        top, left = 1 + row * (height + 1), 1 + column * (width + 1)
        return grid[top:top + height, left:left + width]

    posterior = model.encode(images)
    reconstructions = model(images).numpy()
    for row in range(3):
        np.testing.assert_array_equal(cell(row, 0), images[row])
        # The column of the inferred category is the model's own reconstruction.
        assert inferred[row] == posterior["category"].numpy()[row, 0]
        np.testing.assert_allclose(cell(row, 1 + inferred[row]), reconstructions[row], atol=1e-6)
    codes = posterior["discrete"].numpy().copy()
    codes[:, :3] = [0, 0, 1]
    decoded = model.decode_mean(np.concatenate([posterior["mean"].numpy(), codes], 1)).numpy()
    np.testing.assert_allclose(cell(1, 3), decoded[1], atol=1e-6)


def test_the_category_picture_labels_rows_by_factor_value_and_refuses_a_model_without_a_code(
        tmp_path):
    data = zoo.data.get("dsprites")
    model = models.get("cascade_vae", seed=0, latent_dim=4)
    path = visualize.save_category_picture(model, data, "shape", tmp_path / "c.png", 2)
    assert path.exists()
    with pytest.raises(ValueError, match="BetaVAE has no discrete code"):
        visualize.category_grid(models.get("beta_vae", seed=0), data.sample_observations(2))


@pytest.mark.parametrize("name, kwargs", [
    ("cascade_vae", {"latent_dim": 4, "stage_steps": 10, "discrete_stage": 1}),
    ("joint_vae", {"latent_dim": 4, "categorical_dims": [3, 2]}),
    ("infogan", {"latent_dim": 2, "num_categories": 3, "noise_dim": 4, "input_shape": (64, 64, 1),
                 "network": "infogan64"}),
    ("cascade_vae_c", {"latent_dim": 4}),
])
def test_the_metrics_read_the_codes_the_model_declares(binary_images, name, kwargs):
    model = models.get(name, seed=0, **kwargs)
    model.global_step.assign(10)  # CascadeVAE: in the discrete stage
    wrapped = metrics.ModelRepresentation(model, batch_size=8)
    outputs = wrapped(binary_images)
    posterior = model.encode(binary_images)
    np.testing.assert_allclose(outputs["codes"], model.representation(binary_images).numpy(),
                               rtol=1e-5, atol=1e-6)
    sizes = model.discrete_code_sizes
    assert wrapped.discrete_columns == model.discrete_columns == tuple(
        range(model.latent_dim, model.latent_dim + len(sizes)))
    if sizes:
        np.testing.assert_array_equal(outputs["category"], posterior["category"].numpy())
        np.testing.assert_array_equal(outputs["codes"][:, list(wrapped.discrete_columns)],
                                      outputs["category"])
    else:
        assert "category" not in outputs


def _summary(step, latent_shares, code_share, accuracy, kls):
    return {"step": step, "factor": "shape", "accuracy": accuracy, "kl_per_latent": kls,
            "code_information": {"shape": code_share, "scale": 0.5},
            "latent_information": [{"shape": share, "scale": 0.9} for share in latent_shares]}


def test_the_latent_table_has_a_row_per_checkpoint_by_step_with_the_factor_s_shares():
    from trainers.discrete_accuracy import latent_table

    table = latent_table([_summary(90_000, [0.0061, 0.32], 0.0234, 0.3933, [3.456, 0.0123]),
                          _summary(80_000, [0.0057, 0.325], 0.0, 0.34, [3.4, 0.02])]).splitlines()
    assert table[0] == "| step | z0 | z1 | code: MI(d; shape) / H(d) | shape accuracy |"
    assert table[1] == "|---|---|---|---|---|"
    assert table[2:] == ["| 80,000 | 0.006 (3.40) | 0.325 (0.02) | 0.000 | 0.340 |",
                         "| 90,000 | 0.006 (3.46) | 0.320 (0.01) | 0.023 | 0.393 |"]


_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIXTURE_CHECKPOINT = os.path.join(_REPO, "tests", "fixtures", "cascade_vae_step31000.keras")


def _run_discrete_accuracy(*flags, timeout=300):
    """Runs `python -m trainers.discrete_accuracy` with `flags` from the repository root."""
    return subprocess.run([sys.executable, "-m", "trainers.discrete_accuracy", *flags], check=False,
                          cwd=_REPO, capture_output=True, text=True, timeout=timeout)


def test_several_checkpoints_are_scored_in_turn_and_tabulated(tmp_path):
    output = tmp_path / "shares.json"
    done = _run_discrete_accuracy(
        f"--model_path={_FIXTURE_CHECKPOINT},{_FIXTURE_CHECKPOINT}", "--factor=shape",
        "--num_samples=256", f"--output={output}", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert [r["step"] for r in results] == [31_000, 31_000]
    assert results[0]["latent_information"] == results[1]["latent_information"]  # same samples
    assert (results[0]["confusion_rows"], results[0]["confusion_columns"]) == ("code", "shape")
    kls = results[0]["kl_per_latent"]
    assert len(kls) == 6 and all(kl >= 0 for kl in kls) and max(kls) > 0.5  # relieved ones carry
    table = done.stdout.strip().splitlines()[-4:]
    assert table[0].startswith("| step | z0 | z1 | z2 | z3 | z4 | z5 | code")
    assert table[2] == table[3] and table[2].startswith("| 31,000 | ")


def test_a_picture_of_several_checkpoints_is_refused_before_scoring(tmp_path):
    done = _run_discrete_accuracy("--model_path=a.keras,b.keras",
                                  f"--picture={tmp_path / 'categories.png'}")
    assert done.returncode == 2 and "--picture draws one model" in done.stderr
    assert not (tmp_path / "categories.png").exists()


def test_a_missing_checkpoint_is_refused_before_scoring_any(tmp_path):
    missing = tmp_path / "checkpoint-000090000.keras"
    done = _run_discrete_accuracy(
        f"--model_path={_FIXTURE_CHECKPOINT},{missing}", "--factor=shape", "--num_samples=256",
        f"--output={tmp_path / 'shares.json'}")
    assert done.returncode == 2 and f"No model file at {missing}" in done.stderr
    assert '"step"' not in done.stdout  # the existing checkpoint was not scored first
    assert not (tmp_path / "shares.json").exists()
