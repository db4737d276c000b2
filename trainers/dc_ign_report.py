r"""Score a trained DC-IGN by its own criteria (docs/methods.md §12, docs/results/dc_ign.md).

    python -m trainers.dc_ign_report --model_path=runs/zoo/dc_ign_dsprites/free_batches/model.keras \
        --dataset=dsprites --seed=0 [--output=dc_ign_scores.json]

DC-IGN assigns latent j to the j-th factor that varies (`zoo.models.dc_ign.assigned_latents`), so
it is scored per factor, against that latent:
- the correlation ratio η of the assigned latent's posterior mean with its factor on i.i.d.
  held-out points (the share of the latent's variance the factor explains, for any dependence:
  suited to shape, a category, and orientation, a circle), beside the largest η of any other
  latent with that factor, and the absolute Spearman correlation the same way;
- the paper's own criterion (`zoo.models.dc_ign.single_factor_variation`): in batches where only
  that factor varies, the assigned latent's within-batch std over its std on i.i.d. data (it should
  carry the variation), beside the largest such ratio of another latent (they should stay put);
- the assigned latent's mean KL to the prior (nats): a latent collapsed onto the prior (KL ≈ 0)
  carries nothing whatever its ratios say, so the posterior mean's spread is reported too;
- on dSprites, η within each shape for the other factors (orientation repeats every 90° for a
  square, 180° for an ellipse, 360° for a heart, so a latent may follow one shape's angle only).

Prints a markdown table and writes every number as JSON (default: dc_ign_scores.json beside the
model). A pure function of (model, data, seed).
"""
from pathlib import Path

import numpy as np
from absl import flags

from trainers import cli
from zoo import data as zoo_data
from zoo import models
from zoo.files import write_json

# The settings `trainers.zoo publish` scores a DC-IGN with (the flags of `command`).
PUBLISH_SETTINGS = {"num_points": 5000, "batches_per_factor": 50}


def held_out_posteriors(encode, data, num_points, rng):
    """Factors [n, K] and posterior means and log-variances [n, d] of i.i.d. points; `encode`:
    images → {"mean", "logvar"}."""
    factors, images = data.sample(num_points, rng)
    posteriors = [encode(images[i:i + 500]) for i in range(0, num_points, 500)]
    return (factors, np.concatenate([np.asarray(p["mean"]) for p in posteriors]),
            np.concatenate([np.asarray(p["logvar"]) for p in posteriors]))


def latent_factor_correlations(codes, factors):
    """|Spearman ρ| [d, K] between each latent's posterior mean and each factor (0 where a rank
    correlation is undefined, e.g. a constant latent)."""
    from scipy import stats

    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    for j in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            if np.ptp(codes[:, j]) > 0 and np.ptp(factors[:, k]) > 0:
                matrix[j, k] = abs(stats.spearmanr(codes[:, j], factors[:, k]).statistic)
    return matrix


def report(encode, data, seed=0, latents_per_factor=None, num_points=5000, batches_per_factor=50):
    """The criteria (module docstring) as a dict. `encode`: images → {"mean", "logvar"} (a
    DC-IGN's `encode`); `latents_per_factor` as the model's (a factor scores the best of its
    latents)."""
    from zoo.data.dsprites import SHAPE_NAMES
    from zoo.metrics.core import correlation_ratios, gaussian_kl_per_dim
    from zoo.models.dc_ign import assigned_latents, single_factor_variation

    factors, means, logvars = held_out_posteriors(encode, data, num_points,
                                                  np.random.default_rng(seed))
    spearman = latent_factor_correlations(means, factors)
    eta = correlation_ratios(means, factors)
    kl = gaussian_kl_per_dim(means, logvars).mean(axis=0)
    variation = single_factor_variation(lambda images: np.asarray(encode(images)["mean"]), data,
                                        seed=seed, batches_per_factor=batches_per_factor)
    eta_within_shape = {}
    if "shape" in data.factor_names:
        shapes = factors[:, data.factor_names.index("shape")]
        # Every dSprites source and variant orders the shapes as the original file does.
        names = SHAPE_NAMES if "dsprites" in data.name else [
            str(v) for v in range(data.factor_sizes[data.factor_names.index("shape")])]
        eta_within_shape = {name: correlation_ratios(means[shapes == value],
                                                     factors[shapes == value])
                            for value, name in enumerate(names) if np.any(shapes == value)}
    assignment = assigned_latents(data, latents_per_factor)

    def best(values):
        return round(float(np.max(values)), 3) if len(values) else 0.0

    per_factor = {}
    for name, group in assignment.items():
        k = data.factor_names.index(name)
        row = variation["factor_names"].index(name)
        others = [j for j in range(means.shape[1]) if j not in group]
        per_factor[name] = {
            "latents": group,
            "kl": best(kl[group]),
            "spearman_abs": best(spearman[group, k]),
            "max_other_latent_spearman_abs": best(spearman[others, k]),
            "correlation_ratio": best(eta[group, k]),
            "max_other_latent_correlation_ratio": best(eta[others, k]),
            "within_batch_variation": best(variation["matrix"][row, group]),
            "max_other_latent_within_batch_variation": best(variation["matrix"][row, others])}
        if name != "shape" and eta_within_shape:
            per_factor[name]["correlation_ratio_within_shape"] = {
                shape: best(within[group, k]) for shape, within in eta_within_shape.items()}
    return {"data_source": data.data_source, "seed": seed, "num_points": num_points,
            "batches_per_factor": batches_per_factor,
            "assigned_latents": assignment, "per_factor": per_factor,
            "spearman_abs_latent_by_factor": np.round(spearman, 3).tolist(),
            "correlation_ratio_latent_by_factor": np.round(eta, 3).tolist(),
            "kl_per_latent": np.round(kl, 3).tolist(),
            "posterior_mean_std_per_latent": np.round(
                means.std(axis=0, dtype=np.float64), 3).tolist(),
            "within_batch_variation_factor_by_latent": np.round(variation["matrix"], 3).tolist(),
            "factor_names": list(data.factor_names)}


def command(model_path, seed=0, **settings):
    """The `python -m trainers.dc_ign_report` command that computes `report(..., seed,
    **settings)` for the model at `model_path` (as given: relative paths stay relative)."""
    return " ".join(["python -m trainers.dc_ign_report", f"--model_path={model_path}",
                     f"--seed={seed}", *(f"--{key}={value}" for key, value in settings.items())])


def table(result):
    """Markdown lines of a `report` result: one row per factor."""
    lines = [("| factor | latent | η: assigned / best other "
              "| Spearman ρ (absolute): assigned / best other "
              "| single-factor batches, within-batch std ratio: assigned / best other "
              "| KL (nats) |"),
             "|---|---|---|---|---|---|"]
    for name, row in result["per_factor"].items():
        lines.append(
            f"| {name} | z{', z'.join(str(j) for j in row['latents'])} "
            f"| {row['correlation_ratio']:.2f} / {row['max_other_latent_correlation_ratio']:.2f} "
            f"| {row['spearman_abs']:.2f} / {row['max_other_latent_spearman_abs']:.2f} "
            f"| {row['within_batch_variation']:.2f} / "
            f"{row['max_other_latent_within_batch_variation']:.2f} | {row['kl']:.2f} |")
    return lines


def flat_scores(result):
    """{"dc_ign/<factor>/<criterion>": number} of a `report` result, as the registry records
    scores (the assigned latent's η, within-batch ratio and KL, and the best other latent's)."""
    keys = ("correlation_ratio", "max_other_latent_correlation_ratio", "within_batch_variation",
            "max_other_latent_within_batch_variation", "kl")
    return {f"dc_ign/{name}/{key}": row[key] for name, row in result["per_factor"].items()
            for key in keys}


def define_flags(flag_values):
    """The command line (the data set flags as trainers.train has them)."""
    define = cli.definer(flag_values)
    define("string", "model_path", None, "The DC-IGN model (.keras) to score.", required=True)
    cli.define_data_flags(flag_values)
    define("integer", "seed", 0, "Seed of every draw.")
    define("integer", "num_points", 5000, "Held-out i.i.d. points for η, ρ and the KL.")
    define("integer", "batches_per_factor", 50, "Single-factor batches per factor.")
    define("string", "output", None, "JSON path (default: dc_ign_scores.json beside the model).")


def main(argv):
    del argv  # cli.run refuses stray arguments
    FLAGS = flags.FLAGS
    model = cli.load_model_of(FLAGS.model_path, models.DCIGN, "DC-IGN")
    result = report(model.encode, zoo_data.get(FLAGS.dataset, source=FLAGS.data_source),
                    FLAGS.seed, model.latents_per_factor, FLAGS.num_points,
                    FLAGS.batches_per_factor)
    output = Path(FLAGS.output or Path(FLAGS.model_path).parent / "dc_ign_scores.json")
    write_json(output, result)
    print("\n".join(table(result)))
    print(f"Wrote {output}")


if __name__ == "__main__":
    cli.run(main, define_flags)
