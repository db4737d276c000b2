r"""Score a trained SCAN model (`zoo.scan_scores`) and draw sym2img samples.

    python -m trainers.scan_report --model_path=runs/scan_recombination/model.keras \
        --dataset=dsprites --seed=0 --output=runs/scan_recombination/scan_scores.json \
        --picture=runs/scan_recombination/sym2img.png --concept=heart --concept=small,x_low

Writes a JSON file with: the attribute classifier's own accuracy on ground-truth images (how far
its labels can be trusted), img2sym accuracy per attribute, sym2img accuracy (named attributes)
and spread (free attributes) over random concepts, the same for the model's held-out
combinations, recombination scores per operator over random (y₁, y₂) pairs, and for each held-out
combination {w₁ … w_k} the recombination {w₁ … w_{k−1}} AND {w_k} (never seen in training). The
picture shows `samples` sym2img images per --concept (default: a few single words and pairs, and
the held-out combinations), one labelled row each.
"""
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import flags

from trainers import cli
from zoo import data as zoo_data
from zoo import models, scan_scores, visualize
from zoo.symbols import OPERATORS, recombination_triples

# The settings `trainers.zoo publish` scores a SCAN with (the flags of `command`).
PUBLISH_SETTINGS = {"num_samples": 1000, "num_concepts": 50, "samples_per_concept": 16,
                    "classifier_steps": 1500}
OPERATOR_COLUMNS = {"and": "AND", "in_common": "IN COMMON", "ignore": "IGNORE"}
DEFAULT_CONCEPTS = (("heart",), ("square",), ("small",), ("large", "x_low"),
                    ("ellipse", "y_high"))


def random_concepts(model, data, count, rng):
    """`count` symbols naming each attribute of a random image with the model's
    specify_probability, none of them empty."""
    vocabulary = model.vocabulary
    factors = data.sample_factors(int(count), rng)
    specified = rng.random((int(count), vocabulary.num_attributes)) < model.specify_probability
    specified[~specified.any(axis=1), rng.integers(vocabulary.num_attributes)] = True
    return vocabulary.symbols(factors, specified).numpy()


def random_triples(model, data, count, operator, rng):
    """(y₁, y₂) pairs for `operator` as the recombination stage draws them (without the
    held-out rule: a held-out result may appear here)."""
    vocabulary = model.vocabulary
    draw = [data.sample_factors(int(count), rng) for _ in range(3)]
    masks = [tf.constant(rng.random((int(count), vocabulary.num_attributes))
                         < model.specify_probability) for _ in range(3)]
    first, second, _ = recombination_triples(vocabulary, draw[0], draw[1:], masks,
                                             tf.fill([int(count)], OPERATORS.index(operator)))
    return first.numpy(), second.numpy()


def report(model, data, seed=0, num_samples=1000, num_concepts=100, samples_per_concept=32,
           classifier_steps=2000, picture=None, picture_concepts=None, picture_samples=8):
    """The scores (module docstring) as a dict; writes the picture if a path is given."""
    started, rng = time.time(), np.random.default_rng(seed)
    vocabulary = model.vocabulary
    classify = scan_scores.train_attribute_classifier(data, vocabulary, classifier_steps,
                                                      seed=seed)
    result = {
        "data_source": data.data_source, "seed": seed,
        "classifier_accuracy": scan_scores.classifier_accuracy(classify, vocabulary, data,
                                                               num_samples, seed + 1),
        "img2sym_accuracy": scan_scores.img2sym_accuracy(model.img2sym, vocabulary, data,
                                                         num_samples, seed + 2),
        "sym2img": scan_scores.sym2img_scores(
            model.sample_concepts, classify, vocabulary,
            random_concepts(model, data, num_concepts, rng), samples_per_concept),
        "recombination": {},
    }
    for operator in OPERATORS:
        first, second = random_triples(model, data, num_concepts, operator, rng)
        result["recombination"][operator] = scan_scores.recombination_scores(
            model, classify, first, second, operator, samples_per_concept, seed)
    held_out = model.held_out_symbols()
    if len(held_out):
        result["sym2img_held_out"] = scan_scores.sym2img_scores(
            model.sample_concepts, classify, vocabulary, held_out, samples_per_concept)
        last = np.zeros_like(held_out)
        last[np.arange(len(held_out)), [np.flatnonzero(c)[-1] for c in held_out]] = 1.0
        result["recombination_held_out"] = scan_scores.recombination_scores(
            model, classify, held_out - last, last, "and", samples_per_concept, seed)
    for scores in [result["sym2img"], *result["recombination"].values()]:
        scores.pop("per_concept")  # random concepts: the means say it
    if picture is not None:
        concepts = [list(c) for c in (picture_concepts or DEFAULT_CONCEPTS)]
        concepts += model.held_out_concepts if picture_concepts is None else []
        rows = np.asarray(model.sample_concepts(vocabulary.parse(concepts), picture_samples))
        visualize.save_image_rows(rows, picture, row_labels=[" ".join(c) for c in concepts])
        result["picture"] = str(picture)
    result["wall_time_s"] = round(time.time() - started, 1)
    return result


def command(model_path, seed=0, **settings):
    """The `python -m trainers.scan_report` command that computes `report(..., seed, **settings)`
    for the model at `model_path` (as given: relative paths stay relative)."""
    flags_ = [f"--model_path={model_path}", f"--seed={seed}"]
    flags_ += [f"--{key}={value}" for key, value in settings.items()]
    return " ".join(["python -m trainers.scan_report", *flags_])


def _cell(value):
    return "—" if value is None else f"{value:.2f}"


def _named_attributes(vocabulary, words):
    names = list(vocabulary.attributes)
    return [names[vocabulary.attribute_of_word[vocabulary.words.index(w)]] for w in words]


def tables(result, vocabulary):
    """Markdown lines of a `report` result: accuracy per attribute (classifier on real images,
    img2sym, sym2img and each recombination operator; "—" where no scored concept named the
    attribute), the spread of free attributes, and each held-out combination asked directly and
    recombined with AND."""
    attributes = list(vocabulary.attributes)
    operators = [op for op in OPERATOR_COLUMNS if op in result["recombination"]]
    accuracy = [result["classifier_accuracy"], result["img2sym_accuracy"],
                result["sym2img"]["accuracy"],
                *(result["recombination"][op]["accuracy"] for op in operators)]
    spread = [result["sym2img"]["spread"],
              *(result["recombination"][op]["spread"] for op in operators)]
    names = [OPERATOR_COLUMNS[op] for op in operators]
    lines = ["| attribute | classifier on real images | img2sym | sym2img | "
             + " | ".join(names) + " |", "|---" * (4 + len(names)) + "|"]
    lines += [f"| {a} | " + " | ".join(_cell(column.get(a)) for column in accuracy) + " |"
              for a in attributes]
    lines += ["", ("Spread of the attributes a concept leaves free (normalised entropy of the "
              "classifier's labels; 1 = every word equally often):"), "",
              "| attribute | sym2img | " + " | ".join(names) + " |",
              "|---" * (2 + len(names)) + "|"]
    lines += [f"| {a} | " + " | ".join(_cell(column.get(a)) for column in spread) + " |"
              for a in attributes]
    if "sym2img_held_out" in result:
        lines += ["", ("Combinations held out of both training stages (accuracy of each named "
                  "attribute; spread of the free ones):"), "",
                  "| held-out concept | asked as | " + " | ".join(attributes) + " |",
                  "|---" * (2 + len(attributes)) + "|"]
        for key, how in (("sym2img_held_out", "one symbol (sym2img)"),
                         ("recombination_held_out", "{first words} AND {last word}")):
            for concept in result[key]["per_concept"]:
                named = set(_named_attributes(vocabulary, concept["concept"]))
                cells = [f"{_cell(concept['scores'].get(a))}" + ("" if a in named else " (spread)")
                         for a in attributes]
                lines.append(f"| {{{', '.join(concept['concept'])}}} | {how} | "
                             + " | ".join(cells) + " |")
    return lines


def flat_scores(result):
    """{"group/attribute": number} of a `report` result, as the registry records scores:
    classifier/, img2sym/, sym2img/ (accuracy), sym2img_spread/, <operator>/ and
    <operator>_spread/ for each recombination operator, and held_out/<words>/ for each held-out
    combination asked directly."""
    scores = {}

    def add(prefix, values):
        scores.update({f"{prefix}/{k}": float(v) for k, v in values.items()})

    add("classifier", result["classifier_accuracy"])
    add("img2sym", result["img2sym_accuracy"])
    add("sym2img", result["sym2img"]["accuracy"])
    add("sym2img_spread", result["sym2img"]["spread"])
    for operator, values in result["recombination"].items():
        add(operator, values["accuracy"])
        add(f"{operator}_spread", values["spread"])
    for key, prefix in (("sym2img_held_out", "held_out"),
                        ("recombination_held_out", "held_out_and")):
        for concept in result.get(key, {}).get("per_concept", []):
            add(f"{prefix}/{'+'.join(concept['concept'])}", concept["scores"])
    return scores


def define_flags(flag_values):
    """The command line (the data set flags as trainers.train has them)."""
    define = cli.definer(flag_values)
    define("string", "model_path", None, "The SCAN model (.keras) to score.", required=True)
    cli.define_data_flags(flag_values)
    define("integer", "seed", 0, "Seed of every draw.")
    define("string", "output", None, "JSON path (default: scan_scores.json beside the model).")
    define("string", "picture", None, "PNG of sym2img samples (default: sym2img.png beside the "
           "model).")
    define("multi_string", "concept", [], "A concept of the picture as comma-separated words "
           "(repeatable; default: a few single words and pairs and the held-out combinations).")
    define("integer", "num_samples", 1000, "Images for the img2sym and classifier accuracies.")
    define("integer", "num_concepts", 100, "Random concepts (and recombination pairs per "
           "operator).")
    define("integer", "samples_per_concept", 32, "Images sampled per concept.")
    define("integer", "classifier_steps", 2000, "Training steps of the attribute classifier.")


def main(argv):
    del argv  # cli.run refuses stray arguments
    FLAGS = flags.FLAGS
    model = cli.load_model_of(FLAGS.model_path, models.SCAN, "SCAN")
    folder = Path(FLAGS.model_path).parent
    concepts = [c.split(",") for c in FLAGS.concept] or None
    result = report(model, zoo_data.get(FLAGS.dataset, source=FLAGS.data_source), FLAGS.seed,
                    FLAGS.num_samples, FLAGS.num_concepts, FLAGS.samples_per_concept,
                    FLAGS.classifier_steps, FLAGS.picture or folder / "sym2img.png", concepts)
    output = Path(FLAGS.output or folder / "scan_scores.json")
    output.write_text(json.dumps(result, indent=2))
    print("\n".join(tables(result, model.vocabulary)))
    print(f"Wrote {output} and {result['picture']}")


if __name__ == "__main__":
    cli.run(main, define_flags)
