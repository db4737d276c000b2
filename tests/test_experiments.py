"""trainers.experiments: the registry of named experiments and a tiny pinwheel clustering run."""
import json

import numpy as np
import pytest

from trainers import experiments
from zoo import visualize


def test_the_registry_names_every_experiment_of_the_command_line():
    assert tuple(experiments.REGISTRY) == experiments.EXPERIMENTS
    for name, spec in experiments.REGISTRY.items():
        assert spec.steps > 0 and callable(spec.function), name
        assert spec.options <= {"model_args", "learning_rate", "init_from", "data_source"}, name


@pytest.mark.parametrize("experiment, option", [
    ("pinwheel_clustering", {"data_source": "procedural"}),
    ("pinwheel_clustering", {"model_args": {"beta": 2.0}}),
    ("infogan_digits", {"learning_rate": 1e-3}),
    ("infogan_dsprites", {"init_from": "model.keras"}),
])
def test_an_option_the_experiment_sets_itself_is_refused_before_anything_runs(
        experiment, option, tmp_path):
    with pytest.raises(ValueError, match=f"{experiment} sets its own {next(iter(option))}"):
        experiments.run(experiment, output_dir=tmp_path / "out", **option)
    assert not (tmp_path / "out").exists()


def test_an_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown experiment 'nope'"):
        experiments.run("nope", output_dir=tmp_path / "out")


def test_density_grid_runs_row_by_row_from_the_top():
    grid = visualize.density_grid(3, extent=1.0)
    np.testing.assert_array_equal(grid[:3], [[-1, 1], [0, 1], [1, 1]])
    np.testing.assert_array_equal(grid[-3:], [[-1, -1], [0, -1], [1, -1]])


def test_a_tiny_pinwheel_clustering_run_writes_its_figure_and_measures(tmp_path):
    report = experiments.run("pinwheel_clustering", seed=0, steps=2, output_dir=tmp_path)
    assert report["steps"] == 2 and report["figure"] == "pinwheel_density.png"
    assert json.loads((tmp_path / "experiment.json").read_text())["settings"].keys() == \
        set(experiments.PINWHEEL_SETTINGS)
    from PIL import Image

    with Image.open(tmp_path / "pinwheel_density.png") as figure:
        assert figure.size == (4 * 226 + 6, 220 + 18 + 12)  # data, prior and both posteriors
    for setting in report["settings"].values():
        assert setting["epochs"] == 2 and 0.0 <= setting["cluster_accuracy_nearest_centre"] <= 1.0
