r"""Unsupervised classification accuracy of a trained model's discrete code (docs/methods.md §9).

    python -m trainers.discrete_accuracy --model_path=runs/cascade_vae/model.keras \
        --factor=shape --num_samples=10000

Draws --num_samples i.i.d. samples of the ground-truth data set, takes the model's discrete code
(`encode(x)["category"]`: CascadeVAE's argmin-unary code at z = μ, JointVAE's argmax; --code picks
one of several codes), matches codes to the factor's values one-to-one with the Hungarian algorithm
on the confusion matrix (`zoo.assignment.match_codes`) and prints accuracy = matched / N, the
mapping and the confusion matrix (rows: codes, columns: the factor's values) as JSON, with the
share of the code's entropy each factor explains, MI(code; factor) / H(code), to show what the
code learned when it is not --factor, and, for each continuous latent, the share of each factor's
entropy it holds, MI(μ_j; factor) / H(factor) (a continuous latent that holds --factor leaves the
discrete code less of it to find).

    python -m trainers.discrete_accuracy --model_path=... --sweep=orientation

also prints the code along a sweep of one factor, for every value of --factor, at --sweep_bases
random combinations of the others (e.g. a code that follows orientation shows each shape's
rotational period).

    python -m trainers.discrete_accuracy --model_path=... --factor=shape --picture=categories.png

also draws --picture_rows images of every value of --factor, each followed by its decodings with
the code set to each category in turn, and labels each row with the factor's value and the
category the model infers: a code that separates the factor draws one value per column.

    python -m trainers.discrete_accuracy --model_path=ckpt_70k.keras,ckpt_80k.keras --factor=shape

scores several checkpoints (comma-separated) in turn, prints each one's JSON and then a Markdown
table, one row a checkpoint by its step: the share of --factor's entropy each continuous latent
holds (with its mean KL in nats: what the decoder can read from it), the code's
MI(code; factor) / H(code) and the accuracy (how a factor moves between the latents and the code
over training); --output then holds the list of results.
"""
import json
import os

import numpy as np
from absl import app, flags

import zoo.data
from trainers import cli
from zoo import assignment, models, visualize
from zoo.files import write_text


def define_flags(flag_values):
    """The command line (the data set flags as trainers.train has them)."""
    define = cli.definer(flag_values)
    define("list", "model_path", None, "The .keras model to score; several (comma-separated) are "
           "scored in turn and tabulated (see the docstring).", required=True)
    cli.define_data_flags(flag_values)
    define("string", "factor", "shape", "Factor name or index to match the code against.")
    define("integer", "code", 0, "Which discrete code, for models with several.")
    define("integer", "num_samples", 10_000, "Samples scored.")
    define("integer", "batch_size", 256, "Images per forward pass.")
    define("integer", "seed", 0, "Seed of the samples.")
    define("string", "output", None, "Also write the result to this JSON file.")
    define("string", "sweep", None, "Factor to sweep through all its values (see the docstring).")
    define("integer", "sweep_bases", 2, "Random combinations of the other factors to sweep at.")
    define("string", "picture", None, "Also draw what each category decodes to into this PNG.")
    define("integer", "picture_rows", 2, "Images per value of --factor in --picture.")


def code_function(model, code=0):
    """images → the model's discrete code `code` (int [B]); refuses models without one."""
    if not model.discrete_code_sizes:
        raise ValueError(f"{type(model).__name__} has no discrete code.")

    def codes(images):
        return model.encode(images)["category"].numpy()[:, code]
    return codes


def mean_function(model):
    """images → the posterior means of the model's continuous latents [B, m]."""
    def means(images):
        return model.encode(images)["mean"].numpy()
    return means


def mean_kl_per_latent(model, data, num_samples, seed, batch_size):
    """Mean KL(q(z_j|x) ‖ N(0, 1)) of each continuous latent over i.i.d. samples, in nats: how much
    the decoder can read from a latent, beside what its mean correlates with."""
    _, images = data.sample(int(num_samples), zoo.data.as_rng(seed))
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    return sum(visualize.kl_per_dimension(model, batch) * len(batch)
               for batch in batches) / len(images)


def score(model, data, factor="shape", code=0, num_samples=10_000, seed=0, batch_size=256):
    """The `zoo.assignment.discrete_code_accuracy` dict for `model`'s code on `data`."""
    if isinstance(factor, str) and factor.isdigit():
        factor = int(factor)
    return assignment.discrete_code_accuracy(data, code_function(model, code), factor=factor,
                                             num_samples=num_samples, rng=seed,
                                             batch_size=batch_size)


def summarize(model_path, data, FLAGS):
    """The JSON-ready result of one checkpoint (see the docstring)."""
    model = models.load(model_path)
    result = score(model, data, FLAGS.factor, FLAGS.code, FLAGS.num_samples, FLAGS.seed,
                   FLAGS.batch_size)
    summary = {"model_path": model_path, "step": int(model.global_step.numpy()),
               "data_source": data.data_source, "factor": result["factor"],
               "num_samples": result["num_samples"], "seed": FLAGS.seed,
               "accuracy": result["accuracy"], "mapping": result["mapping"],
               "confusion": np.asarray(result["confusion"]).tolist(),
               # named in the file, since a transposed reading looks just as plausible
               "confusion_rows": "code", "confusion_columns": result["factor"],
               "code_information": assignment.code_information(
                   data, code_function(model, FLAGS.code), FLAGS.num_samples, FLAGS.seed + 1,
                   FLAGS.batch_size),
               "latent_information": [
                   {name: round(value, 4) for name, value in latent.items()}
                   for latent in assignment.latent_information(
                       data, mean_function(model), FLAGS.num_samples, FLAGS.seed + 1,
                       FLAGS.batch_size)],
               "kl_per_latent": [round(float(kl), 4) for kl in mean_kl_per_latent(
                   model, data, FLAGS.num_samples, FLAGS.seed + 1, FLAGS.batch_size)]}
    if FLAGS.sweep:
        summary["sweeps"] = assignment.code_sweep(
            data, code_function(model, FLAGS.code), FLAGS.factor, FLAGS.sweep,
            FLAGS.sweep_bases, FLAGS.seed + 2)
    if FLAGS.picture:
        summary["picture"] = str(visualize.save_category_picture(
            model, data, FLAGS.factor, FLAGS.picture, FLAGS.picture_rows, FLAGS.seed + 3))
    return summary


def latent_table(summaries):
    """Markdown: one row per checkpoint (by step) with MI(μ_j; factor) / H(factor) of each
    continuous latent and, in brackets, its mean KL in nats, then MI(code; factor) / H(code) and
    the accuracy, for the summaries' factor."""
    factor = summaries[0]["factor"]
    width = max(len(s["latent_information"]) for s in summaries)
    header = ["step", *(f"z{j}" for j in range(width)), f"code: MI(d; {factor}) / H(d)",
              f"{factor} accuracy"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in sorted(summaries, key=lambda s: s["step"]):
        shares = [f"{latent[factor]:.3f} ({kl:.2f})"
                  for latent, kl in zip(summary["latent_information"], summary["kl_per_latent"])]
        shares += [""] * (width - len(shares))
        rows.append(f"| {summary['step']:,} | " + " | ".join(shares) +
                    f" | {summary['code_information'][factor]:.3f} | {summary['accuracy']:.3f} |")
    return "\n".join(rows)


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    if FLAGS.picture and len(FLAGS.model_path) > 1:
        raise app.UsageError("--picture draws one model: give one --model_path with it (each "
                             "checkpoint's picture would overwrite the last).")
    # Checked up front: the models load one by one, so a missing later path would otherwise fail
    # after minutes of scoring the earlier ones and leave no --output.
    missing = [path for path in FLAGS.model_path if not os.path.isfile(path)]
    if missing:
        raise app.UsageError(f"No model file at {', '.join(missing)}.")
    data = zoo.data.get(FLAGS.dataset, source=FLAGS.data_source)
    summaries = []
    for model_path in FLAGS.model_path:
        summaries.append(summarize(model_path, data, FLAGS))
        print(json.dumps(summaries[-1], indent=2), flush=True)
    if len(summaries) > 1:
        print(latent_table(summaries))
    if FLAGS.output:
        result = summaries[0] if len(summaries) == 1 else summaries
        write_text(FLAGS.output, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    cli.run(main, define_flags)
