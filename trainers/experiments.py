r"""Named experiments of docs/methods.md §10–12, each one command that trains and then measures.

    python -m trainers.experiments --experiment=infogan_dsprites [--experiment_steps=3000]
    python -m trainers.experiments --experiment=infogan_digits [--experiment_steps=1000]
    python -m trainers.experiments --experiment=pinwheel_clustering
    python -m trainers.experiments --experiment=dc_ign_dsprites [--experiment_steps=3000]

Outputs go to --experiment_dir (default runs/<experiment>_s<seed>); `experiment.json` holds the
measurements, the settings and the data source.

- infogan_dsprites: InfoGAN (64×64 networks, Cat(3) + 4 continuous codes + 10 noise dims, batch
  64) trained through `trainers.train` on procedural dSprites, then the Hungarian-matched accuracy
  of its categorical code against shape (`zoo.metrics.unsupervised_accuracy`, 10,000 points; chance
  level is about 1/3) and, for comparison, against the other factors binned into 3 classes.
- infogan_digits: InfoGAN with docs/methods.md §10's MNIST settings (infogan28 networks, Cat(10) + 2
  continuous codes + 62 noise dims, batch 128) trained through `trainers.train` on `digits`
  (scikit-learn's 1,797 8×8 handwritten digits upscaled to 28×28: a small offline stand-in for
  MNIST, which cannot be downloaded here), then the Hungarian-matched accuracy of its categorical
  code against the digit class (`zoo.metrics.unsupervised_accuracy`, 10,000 i.i.d. points drawn
  from the set, so images repeat; chance level 0.1), the usage of the 10 categories, and the
  accuracy on each of the 1,797 images once.
- pinwheel_clustering: Mathieu et al.'s clustering experiment: the decomposition VAE (d = 2, MLP
  with 100 hidden ReLU units, softplus posterior std, Gaussian likelihood with a learned scale,
  4-component mixture prior, inclusive KL) on the 400 pinwheel points, batch 400, Adam lr 1e-3,
  500 epochs, for (β = 1, α = 0) and (β = 0, α = 1). Writes `pinwheel_density.png` (the data, the
  prior, and the aggregate posterior q(z) = mean_n q(z|x_n) of both runs on one grid) and
  measures: the inclusive KL(p ‖ q̂), the share of q(z)'s mass within 2 prior standard deviations
  of a component centre (the prior's own share is 1 − e⁻² ≈ 0.86) and the Hungarian accuracy of
  "nearest component of the posterior mean" against the pinwheel arm.
- dc_ign_dsprites: DC-IGN (d = 5, one latent per dSprites factor, batch 64) trained through
  `trainers.train` from single-factor batches, then on 5,000 held-out i.i.d. points the absolute
  Spearman correlation of every latent's posterior mean with every factor and the correlation
  ratio η (the share of a latent's variance a factor explains, for any dependence: suited to
  shape, a category, and orientation, a circle); and DC-IGN's own criterion
  (`zoo.models.dc_ign.single_factor_variation`): in batches where one factor varies alone, each
  latent's within-batch std over its std on i.i.d. data (the assigned latent should carry the
  variation, the others stay put). --experiment_model_arg=free_batch_weight=0 trains from
  single-factor batches only (the default 10 makes them 1/3 of all batches);
  latents_per_factor=[1,1,2,1,1] gives orientation two latents (d = 6; a factor scores the best of
  its latents); factor_batch_weights=[10,1,1,1,1] draws shape batches 10 times as often.
  Also reported: η within each shape (orientation repeats every 90° for a square, 180° for an
  ellipse, 360° for a heart, so a latent may follow the angle of one shape only), and each
  latent's mean KL and the spread (std) of its posterior mean, since a latent collapsed onto the
  prior (KL ≈ 0) carries nothing whatever its ratios say;
  --experiment_learning_rate sets Adam's rate (default 1e-4); --experiment_init_from=<model.keras>
  starts from a saved DC-IGN's weights and step (e.g. a single-factor-only run, continued with
  free batches mixed in).
"""
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from trainers import cli
from trainers.config import TrainConfig
from zoo.files import write_json
from zoo.key_values import parse_key_values

# The names of REGISTRY (at the end), for the command line's choices.
EXPERIMENTS = ("infogan_dsprites", "infogan_digits", "pinwheel_clustering", "dc_ign_dsprites")

def define_flags(flag_values):
    define = cli.definer(flag_values)
    define("enum", "experiment", None, "Which experiment to run.", enum_values=EXPERIMENTS)
    define("integer", "experiment_steps", None, "Training steps (default: the experiment's).")
    define("integer", "experiment_seed", 0, "Seed of the run.")
    define("string", "experiment_dir", None, "Output directory (default "
           "runs/<experiment>_s<seed>).")
    define("float", "experiment_learning_rate", None, "Adam learning rate of dc_ign_dsprites "
           "(default: the model's, 1e-4).")
    define("string", "experiment_init_from", None, "A saved model whose weights and step start "
           "dc_ign_dsprites (trainers.train's --init_from).")
    define("string", "experiment_data_source", None, "Source of dSprites for infogan_dsprites and "
           "dc_ign_dsprites (default: the data set's, the fitted renderer; procedural_v1 "
           "reproduces runs made before it).")
    define("multi_string", "experiment_model_arg", [], "Extra model hyperparameter key=value for "
           "the trained experiments (infogan_dsprites, infogan_digits, dc_ign_dsprites), e.g. "
           "free_batch_weight=1.")


# --------------------------------------------------------------------------------------------------
# InfoGAN on procedural dSprites
# --------------------------------------------------------------------------------------------------
def infogan_dsprites(out, seed, steps, model_args=None, num_points=10_000, data_source=None):
    """Train InfoGAN through trainers.train and score its categorical code against shape."""
    import zoo.data
    from trainers import train
    from zoo import metrics, models

    config = TrainConfig(
        model="infogan", network="infogan64", latent_dim=4, dataset="dsprites",
        model_args={"num_categories": 3, "noise_dim": 10, **(model_args or {})},
        steps=steps, batch_size=64, seed=seed, checkpoint_every=500, image_every=1000,
        eval_batches=4, output_dir=str(out / "run"), data_source=data_source)
    results = train.run(config)
    model = models.load(out / "run" / "model.keras")
    data = zoo.data.get("dsprites", source=data_source)
    accuracy = {"shape": metrics.unsupervised_accuracy(
        data, model, rng=seed + 1, factor="shape", num_points=num_points)["accuracy"]}
    # For comparison: the code against each other factor coarsened into 3 equal-width bins.
    factors, images = data.sample(num_points, np.random.default_rng(seed + 2))
    codes = np.concatenate([model.encode(images[i:i + 500])["category"].numpy()[:, 0]
                            for i in range(0, num_points, 500)])
    for k, name in enumerate(data.factor_names):
        if name == "shape":
            continue
        binned = (factors[:, k] * 3) // data.factor_sizes[k]
        accuracy[f"{name} (3 bins)"] = metrics.hungarian_accuracy(codes, binned, num_labels=3)
    return {"data_source": data.data_source, "steps": results["steps"],
            "train_wall_time_s": results["train_wall_time_s"],
            "final_loss_terms": results["final_loss_terms"],
            "category_usage": np.bincount(codes, minlength=3).tolist(),
            "hungarian_accuracy": accuracy, "chance_level": 1 / 3, "num_points": num_points}


# --------------------------------------------------------------------------------------------------
# InfoGAN on scikit-learn's handwritten digits (an offline stand-in for MNIST)
# --------------------------------------------------------------------------------------------------
def _categories(model, images, batch=500):
    return np.concatenate([model.encode(images[i:i + batch])["category"].numpy()[:, 0]
                           for i in range(0, len(images), batch)])


def infogan_digits(out, seed, steps, model_args=None, num_points=10_000, batch_size=128):
    """Train InfoGAN (docs/methods.md §10 MNIST settings) on `digits`; score its Cat(10) against the
    digit class."""
    import zoo.data
    from trainers import train
    from zoo import metrics, models

    config = TrainConfig(
        model="infogan", network="infogan28", latent_dim=2, dataset="digits",
        model_args={"num_categories": 10, "noise_dim": 62, **(model_args or {})},
        steps=steps, batch_size=batch_size, seed=seed, checkpoint_every=500, image_every=1000,
        eval_batches=4, output_dir=str(out / "run"))
    results = train.run(config)
    model = models.load(out / "run" / "model.keras")
    data = zoo.data.get("digits")
    accuracy = metrics.unsupervised_accuracy(data, model, rng=seed + 1, factor="class",
                                             num_points=num_points)["accuracy"]
    # Every stored image once (the i.i.d. points above repeat the 1,797 images).
    codes = _categories(model, data.images.astype(np.float32) / data.max_value)
    labels = data.factor_classes[:, 0]
    return {"data_source": data.data_source, "steps": results["steps"],
            "batch_size": batch_size, "model_config": results["model_config"],
            "train_wall_time_s": results["train_wall_time_s"],
            "final_loss_terms": results["final_loss_terms"],
            "hungarian_accuracy": {"class": accuracy}, "chance_level": 0.1,
            "num_points": num_points,
            "hungarian_accuracy_all_images": metrics.hungarian_accuracy(codes, labels,
                                                                        num_labels=10),
            "category_usage_all_images": np.bincount(codes, minlength=10).tolist(),
            "class_by_category_all_images": [np.bincount(labels[codes == c], minlength=10)
                                             .tolist() for c in range(10)]}


# --------------------------------------------------------------------------------------------------
# Pinwheel clustering with the decomposition VAE
# --------------------------------------------------------------------------------------------------
PINWHEEL_SETTINGS = {"beta1_alpha0": {"beta": 1.0, "alpha": 0.0},
                     "beta0_alpha1": {"beta": 0.0, "alpha": 1.0}}
_EXTENT = 2.5  # the plots show z ∈ [−2.5, 2.5]²


def pinwheel_model(beta, alpha, seed=0):
    from zoo import models

    return models.get("decomposition_vae", latent_dim=2, input_shape=(2,), network="mlp",
                      likelihood="gaussian_learned", posterior="softplus", prior="mixture",
                      divergence="kl_inclusive", beta=beta, alpha=alpha, seed=seed)


def aggregate_posterior_density(mean, logvar, grid):
    """q(z) = mean_n N(z; μ_n, σ_n²) at grid points [G, 2] (numpy)."""
    import tensorflow as tf

    from zoo.models.decomposition_vae import aggregate_log_density

    log_q = aggregate_log_density(tf.constant(grid, tf.float32), tf.constant(mean),
                                  tf.constant(logvar))
    return np.exp(log_q.numpy())


def pinwheel_clustering(out, seed, steps, grid_size=160):
    """Train both settings on the 400 pinwheel points for `steps` full-batch steps (an epoch
    each); write the density figure and measures."""
    import keras
    import tensorflow as tf

    import zoo.data
    from zoo import distributions, metrics, visualize
    from zoo.models.decomposition_vae import inclusive_kl

    points, labels = zoo.data.pinwheel(rng=seed)
    grid = visualize.density_grid(grid_size, _EXTENT)
    locs = np.asarray(distributions.PINWHEEL_MIXTURE_LOCS, np.float32)
    radius = 2 * distributions.PINWHEEL_MIXTURE_SCALE
    prior = distributions.StructuredPrior("mixture", 2).distribution()
    panels = [("prior p(z)", np.exp(prior.log_prob(grid).numpy()))]
    measures = {}
    for name, weights in PINWHEEL_SETTINGS.items():
        keras.utils.set_random_seed(seed)
        model = pinwheel_model(seed=seed, **weights)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8))
        started = time.time()
        history = model.fit(tf.data.Dataset.from_tensors(points).repeat(), steps_per_epoch=steps,
                            epochs=1, verbose=0)
        wall = time.time() - started
        model.save(out / f"{name}.keras")
        posterior = model.encode(points)
        mean, logvar = posterior["mean"].numpy(), posterior["logvar"].numpy()
        density = aggregate_posterior_density(mean, logvar, grid)
        panels.append((f"q(z), beta={weights['beta']:g} alpha={weights['alpha']:g}", density))
        prior_samples = prior.sample(10_000, seed=tf.constant([seed, 1], tf.int32))
        draws = (mean[None] + np.exp(0.5 * logvar)[None]
                 * np.random.default_rng(seed).normal(size=(25,) + mean.shape)).reshape(-1, 2)
        nearest = np.linalg.norm(draws[:, None, :] - locs[None], axis=-1).min(axis=1)
        component = np.argmin(np.linalg.norm(mean[:, None, :] - locs[None], axis=-1), axis=1)
        measures[name] = {
            **weights, "epochs": steps, "train_wall_time_s": round(wall, 1),
            "final_loss_terms": {k: float(v[-1]) for k, v in history.history.items()},
            "inclusive_kl_p_to_q": float(inclusive_kl(prior, prior_samples, tf.constant(mean),
                                                      tf.constant(logvar))),
            "q_mass_within_2_prior_std_of_a_centre": float(np.mean(nearest < radius)),
            "cluster_accuracy_nearest_centre": metrics.hungarian_accuracy(component, labels,
                                                                         num_labels=4),
            "posterior_std_mean": float(np.mean(np.exp(0.5 * logvar))),
            "posterior_mean_spread": float(np.std(mean)),
        }
    prior_draws = prior.sample(10_000, seed=tf.constant([seed, 2], tf.int32)).numpy()
    prior_share = float(np.mean(np.linalg.norm(prior_draws[:, None] - locs[None],
                                               axis=-1).min(axis=1) < radius))
    figure = visualize.density_figure(out / "pinwheel_density.png", panels, points, labels,
                                      points_title="pinwheel data (x)", extent=_EXTENT)
    return {"data_source": "pinwheel generator (4 classes x 100 points, radial std 0.1, "
                           "tangential std 0.3, rate 0.25), seed " + str(seed),
            "prior_mass_within_2_std_of_a_centre": prior_share, "settings": measures,
            "figure": Path(figure).name,
            "figure_extent": [-_EXTENT, _EXTENT]}


# --------------------------------------------------------------------------------------------------
# DC-IGN on procedural dSprites
# --------------------------------------------------------------------------------------------------
def dc_ign_dsprites(out, seed, steps, model_args=None, learning_rate=None, init_from=None,
                    data_source=None):
    import zoo.data
    from trainers import dc_ign_report, train
    from zoo import models

    model_args = dict(model_args or {})
    latents_per_factor = model_args.get("latents_per_factor")
    latent_dim = 5 if latents_per_factor is None else sum(latents_per_factor)
    config = TrainConfig(model="dc_ign", latent_dim=latent_dim, dataset="dsprites",
                         steps=steps, learning_rate=learning_rate, init_from=init_from,
                         batch_size=64, seed=seed, checkpoint_every=500,
                         model_args=model_args, image_every=1000, data_source=data_source,
                         eval_batches=4, output_dir=str(out / "run"))
    results = train.run(config)
    model = models.load(out / "run" / "model.keras")
    data = zoo.data.get("dsprites", source=data_source)
    criteria = dc_ign_report.report(model.encode, data, seed=seed + 1,
                                    latents_per_factor=latents_per_factor)
    return {"steps": results["steps"], "model_config": results["model_config"],
            "train_wall_time_s": results["train_wall_time_s"],
            "final_loss_terms": results["final_loss_terms"], **criteria}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment: `function(out, seed, steps, **options)` and its defaults."""

    function: Callable
    #: training steps unless --experiment_steps says otherwise (epochs of pinwheel_clustering)
    steps: int
    #: the options of `run` the experiment takes (the others it sets itself)
    options: frozenset = frozenset()


#: The experiments, by the names EXPERIMENTS lists for the command line.
REGISTRY = {
    "infogan_dsprites": Experiment(infogan_dsprites, steps=3000,
                                   options=frozenset({"model_args", "data_source"})),
    "infogan_digits": Experiment(infogan_digits, steps=1000, options=frozenset({"model_args"})),
    "pinwheel_clustering": Experiment(pinwheel_clustering, steps=500),
    "dc_ign_dsprites": Experiment(dc_ign_dsprites, steps=3000, options=frozenset(
        {"model_args", "learning_rate", "init_from", "data_source"})),
}


def run(experiment, seed=0, steps=None, output_dir=None, model_args=None, learning_rate=None,
        init_from=None, data_source=None):
    """Run one named experiment and write experiment.json; returns its content."""
    if experiment not in REGISTRY:
        raise ValueError(f"Unknown experiment {experiment!r}; expected one of {EXPERIMENTS}.")
    spec = REGISTRY[experiment]
    given = {name: value for name, value in (
        ("model_args", model_args), ("learning_rate", learning_rate), ("init_from", init_from),
        ("data_source", data_source)) if value not in (None, {})}
    refused = sorted(set(given) - spec.options)
    if refused:
        takes = ", ".join(sorted(spec.options)) or "none"
        raise ValueError(f"{experiment} sets its own {' and '.join(refused)}; the options it "
                         f"takes: {takes}.")
    steps = spec.steps if steps is None else int(steps)
    out = Path(output_dir or f"runs/{experiment}_s{seed}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result = spec.function(out, seed=seed, steps=steps, **given)
    report = {"experiment": experiment, "seed": seed, "steps": steps,
              "model_args": dict(model_args or {}), "learning_rate": learning_rate,
              "init_from": init_from, **result,
              "total_wall_time_s": round(time.time() - started, 1)}
    write_json(out / "experiment.json", report)
    print(json.dumps(report, indent=2))
    return report


def main(argv):
    del argv  # cli.run refuses stray arguments
    FLAGS = flags.FLAGS
    if FLAGS.experiment is None:
        raise app.UsageError(f"--experiment is required: one of {EXPERIMENTS}.")
    logging.set_verbosity(logging.WARNING)
    run(FLAGS.experiment, FLAGS.experiment_seed, FLAGS.experiment_steps, FLAGS.experiment_dir,
        parse_key_values(FLAGS.experiment_model_arg, "--experiment_model_arg"),
        FLAGS.experiment_learning_rate,
        FLAGS.experiment_init_from, FLAGS.experiment_data_source)


if __name__ == "__main__":
    cli.run(main, define_flags)
