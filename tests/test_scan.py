"""SCAN (docs/methods.md §15): the symbols and their operators, the forward KL's closed form, the loss,
the frozen visual model inside the saved model, the two training streams, sym2img / img2sym, the
SavedModel endpoints, bad input, and both stages through trainers.train. The shared harness
(tests/test_models.py) covers save → load, fine-tuning and the visual endpoints."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.model_harness import saved_briefly_trained
from trainers import train
from trainers.config import TrainConfig
from zoo import data, distributions, models, scan_scores
from zoo.data.dsprites import sha256_of_file
from zoo.export import export_saved_model
from zoo.models.scan import forward_kl
from zoo.symbols import Vocabulary, default_attributes

SMALL = {"latent_dim": 4, "seed": 3}


@pytest.fixture(scope="module")
def dsprites():
    return data.get("dsprites")


@pytest.fixture(scope="module")
def vocabulary(dsprites):
    return Vocabulary.from_data(dsprites)


# ------------------------------------------------------------------------ symbols
def test_dsprites_words_and_bins(vocabulary):
    assert vocabulary.size == 16
    assert vocabulary.words[:6] == ("square", "ellipse", "heart", "small", "medium", "large")
    factors = np.array([[2, 5, 39, 10, 11], [0, 0, 0, 22, 21], [1, 2, 10, 0, 31]])
    assert vocabulary.describe(vocabulary.symbols(factors)) == [
        ["heart", "large", "angle_270", "x_low", "y_mid"],
        ["square", "small", "angle_0", "x_high", "y_mid"],
        ["ellipse", "medium", "angle_90", "x_low", "y_high"]]
    specified = np.array([[True, False, False, False, True]] * 3)
    assert vocabulary.describe(vocabulary.symbols(factors, specified))[0] == ["heart", "y_mid"]


def test_parse_and_matches(vocabulary):
    factors = np.array([[2, 0, 0, 0, 0], [0, 5, 0, 0, 0]])
    concepts = vocabulary.parse([["heart", "small"], ["heart"]])
    assert vocabulary.matches(factors, concepts).tolist() == [True, False]
    assert vocabulary.matches(factors, vocabulary.parse([[], []])).tolist() == [True, True]
    with pytest.raises(ValueError, match="Unknown word 'round'"):
        vocabulary.parse([["round"]])


@pytest.mark.parametrize("symbols, message", [
    (np.zeros((2, 15), np.float32), r"shape \(batch, 16\)"),
    (np.zeros(16, np.float32), r"shape \(batch, 16\)"),
    (np.full((1, 16), 0.5, np.float32), "every entry 0 or 1"),
    (np.eye(16, dtype=np.float32)[[0]] + np.eye(16, dtype=np.float32)[[1]], "one word per attribute"),
])
def test_bad_symbols_are_refused(vocabulary, symbols, message):
    with pytest.raises(ValueError, match=message):
        vocabulary.check(symbols)


def test_bad_symbols_fail_in_graphs_with_the_same_message(vocabulary):
    check = tf.function(vocabulary.check)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one word per attribute"):
        check(tf.constant(np.eye(16, dtype=np.float32)[[0]] + np.eye(16, dtype=np.float32)[[2]]))


def test_recombination_operators_on_symbols(vocabulary):
    v = vocabulary
    a = v.parse([["small", "heart"]])
    b = v.parse([["heart", "y_low"]])
    assert v.describe(v.recombine(a, v.parse([["y_low"]]), "and")) == [["heart", "small", "y_low"]]
    assert v.describe(v.recombine(a, b, "in_common")) == [["heart"]]
    # IGNORE drops the attributes the second concept names, whichever word it names.
    assert v.describe(v.recombine(a, v.parse([["square"]]), "ignore")) == [["small"]]
    with pytest.raises(ValueError, match="one word per attribute"):
        v.recombine(a, v.parse([["square"]]), "and")
    with pytest.raises(ValueError, match="Unknown operator 'or'"):
        v.recombine(a, b, "or")


def test_other_data_sets_get_words_per_value_or_three_bins():
    attributes = default_attributes(("colour", "size", "angle"), (1, 3, 40))
    assert attributes == {"size": ("size_0", "size_1", "size_2"),
                          "angle": ("angle_bin0", "angle_bin1", "angle_bin2")}
    vocabulary = Vocabulary(("colour", "size", "angle"), (1, 3, 40))
    assert Vocabulary.from_config(vocabulary.get_config()).words == vocabulary.words


@pytest.mark.parametrize("attributes, message", [
    ({"hue": ("red",)}, "'hue' is not a factor"),
    ({"shape": ("a", "b", "c", "d")}, "needs 1 to 3 words"),
    ({"shape": ("a", "b"), "scale": ("a",)}, "unique"),
    ({}, "at least one attribute"),
])
def test_bad_vocabularies_are_refused(dsprites, attributes, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary.from_data(dsprites, attributes)


# ------------------------------------------------------------------------ the forward KL
def test_forward_kl_known_answers_and_closed_form():
    # μ_x = 1, σ_x = 1 against N(0, 1): ½ per dimension.
    assert float(forward_kl(1.0, 0.0, 0.0, 0.0)) == pytest.approx(0.5)
    # N(0, 1) against N(0, e): ½(1 + 1/e − 1) = 1/(2e).
    assert float(forward_kl(0.0, 0.0, 0.0, 1.0)) == pytest.approx(1 / (2 * math.e), rel=1e-6)
    assert float(forward_kl(0.3, -1.0, 0.3, -1.0)) == 0.0
    rng = np.random.default_rng(0)
    mx, lx, my, ly = (tf.constant(rng.normal(size=(5, 3)), tf.float32) for _ in range(4))
    closed = (0.5 * (ly - lx) + (tf.exp(lx) + (mx - my) ** 2) / (2 * tf.exp(ly)) - 0.5).numpy()
    reference = distributions.tfd.kl_divergence(distributions.diagonal_gaussian(mx, lx),
                                                distributions.diagonal_gaussian(my, ly)).numpy()
    np.testing.assert_allclose(forward_kl(mx, lx, my, ly).numpy(), closed, rtol=1e-5)
    np.testing.assert_allclose(forward_kl(mx, lx, my, ly).numpy(), reference, rtol=1e-4, atol=1e-6)


def test_forward_kl_is_mode_covering():
    """A broad symbol posterior covering a narrow visual one costs little; the reverse a lot."""
    narrow, broad = math.log(0.01), 0.0
    assert float(forward_kl(0.5, narrow, 0.0, broad)) < float(forward_kl(0.0, broad, 0.5, narrow))


# ------------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def visual_file(tmp_path_factory):
    """A briefly trained β-VAE saved as a .keras file."""
    return saved_briefly_trained(models.BetaVAE(**SMALL), tmp_path_factory.mktemp("visual"),
                                 "visual.keras")


@pytest.fixture(scope="module")
def scan(visual_file):
    return models.get("scan", visual_path=str(visual_file[0]), seed=5)


def test_the_visual_model_is_copied_in_frozen_and_recorded(scan, visual_file, binary_images):
    path, visual = visual_file
    assert scan.visual_sha256 == sha256_of_file(path)
    assert scan.get_config()["visual_source"] == str(path)
    assert "compile_config" not in scan.get_config()["visual_model"]
    np.testing.assert_array_equal(scan.encode(binary_images)["mean"].numpy(),
                                  visual.encode(binary_images)["mean"].numpy())
    trainable = {id(v) for v in scan.trainable_variables}
    assert not trainable & {id(v) for v in scan.visual.weights}
    assert not trainable & {id(v) for v in scan.recombiner.weights}
    recombination = models.SCAN(visual_path=str(path), stage="recombination", seed=5)
    assert {id(v) for v in recombination.trainable_variables} == \
        {id(v) for v in recombination.recombiner.trainable_variables}


def test_loss_is_symbol_recon_plus_beta_kl_plus_lambda_forward_kl(visual_file, binary_images,
                                                                  vocabulary):
    model = models.SCAN(visual_path=str(visual_file[0]), beta=2.0, grounding_weight=7.0, seed=5)
    y = vocabulary.parse([["heart", "small"], ["x_low"], [], ["square", "angle_90"]] * 4)
    terms = {k: float(v) for k, v in model.compute_loss_terms(binary_images, y, True).items()}
    assert terms["loss"] == pytest.approx(
        terms["recon"] + 2.0 * terms["kl"] + 7.0 * terms["grounding"], rel=1e-6)
    visual, symbol = model.encode(binary_images), model.encode_symbols(y)
    grounding = np.mean(np.sum(forward_kl(visual["mean"], visual["logvar"], symbol["mean"],
                                          symbol["logvar"]).numpy(), axis=1))
    assert terms["grounding"] == pytest.approx(float(grounding), rel=1e-5)


def test_sym2img_and_img2sym(scan, binary_images, vocabulary):
    y = vocabulary.parse([["heart", "small"], ["x_high"]])
    assert scan.sym2img(y).shape == (2, 64, 64, 1)
    noise = tf.random.stateless_normal((2, 4), [1, 1])
    posterior = scan.encode_symbols(y)
    z = posterior["mean"] + tf.exp(0.5 * posterior["logvar"]) * noise
    np.testing.assert_allclose(scan.sym2img(y, noise).numpy(), scan.decode_mean(z).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert scan.sample_concepts(y, 3).shape == (2, 3, 64, 64, 1)
    probabilities = scan.img2sym(binary_images).numpy()
    assert probabilities.shape == (16, 16) and 0 <= probabilities.min() <= probabilities.max() <= 1
    descriptions = scan.describe(binary_images[:2])
    assert len(descriptions[0]) == vocabulary.num_attributes
    for bad, message in ((np.zeros((2, 5), np.float32), r"shape \(batch, 16\)"),
                         (np.full((2, 16), 0.5, np.float32), "k-hot")):
        with pytest.raises(ValueError, match=message):
            scan.sym2img(bad)


def test_fit_refuses_images_alone_and_bad_symbols(visual_file, binary_images):
    model = models.SCAN(visual_path=str(visual_file[0]), seed=5)
    model.compile()
    with pytest.raises(ValueError, match=r"SCAN trains on labelled batches"):
        model.fit(binary_images, batch_size=8, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k-hot"):
        model.fit(binary_images, np.full((16, 16), 0.5, np.float32), batch_size=8, verbose=0)


def test_concept_stream_names_a_random_subset_of_each_images_attributes(scan, dsprites,
                                                                        vocabulary):
    images, symbols = next(iter(scan.training_stream(dsprites, 64, seed=4, start_step=2)))
    np.testing.assert_array_equal(
        images.numpy(), next(iter(dsprites.stream(64, seed=4, start_step=2))).numpy())
    factors = dsprites.stream_factors(64, seed=4, step=2)
    assert vocabulary.matches(factors, symbols.numpy()).all()
    named = vocabulary.named_attributes(symbols.numpy()).mean()
    assert 0.35 < named < 0.65  # specify_probability 0.5
    again = next(iter(scan.training_stream(dsprites, 64, seed=4, start_step=2)))[1]
    np.testing.assert_array_equal(again.numpy(), symbols.numpy())


def test_recombination_stream_images_match_the_recombined_concepts(visual_file, dsprites,
                                                                   vocabulary):
    model = models.SCAN(visual_path=str(visual_file[0]), stage="recombination", seed=5)
    _, (first, second, r) = next(iter(model.training_stream(dsprites, 64, seed=4, start_step=1)))
    factors = dsprites.stream_factors(64, seed=4, step=1)
    operators = np.argmax(r.numpy(), axis=1)
    assert set(operators) == {0, 1, 2}
    for i, op in enumerate(operators):
        result = vocabulary.recombine(first.numpy()[i:i + 1], second.numpy()[i:i + 1],
                                      ("and", "in_common", "ignore")[op])
        assert vocabulary.matches(factors[i:i + 1], result)[0]
    terms = model.stage_loss_terms(tf.constant(dsprites.images_from_factors(factors)),
                                   (first, second, r), True)
    assert float(terms["loss"]) == float(terms["recombination_kl"]) > 0


def test_recombination_operator_shares_weights_over_latents(scan, vocabulary):
    y = vocabulary.parse([["heart"], ["small"]])
    recombined = scan.recombine(y, y[::-1], "and")
    assert recombined["mean"].shape == (2, 4)
    # The same per-latent inputs give the same output on every latent: a 1×1 convolution.
    a = scan.encode_symbols(y)
    features = tf.stack([a["mean"], tf.exp(0.5 * a["logvar"]), a["mean"],
                         tf.exp(0.5 * a["logvar"])], axis=-1)[:, :1]
    features = tf.concat([tf.tile(features, [1, 4, 1]), tf.one_hot([[0] * 4] * 2, 3)], axis=-1)
    out = scan.recombiner(features).numpy()
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 4, axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown operator"):
        scan.recombine(y, y, "xor")


def test_scan_saved_model_endpoints(scan, binary_images, vocabulary, tmp_path):
    directory = export_saved_model(scan, tmp_path / "scan_saved_model")
    served = tf.saved_model.load(str(directory))
    y = tf.constant(vocabulary.parse([["heart", "small"], ["y_low"]]))
    noise = tf.random.stateless_normal((2, 4), [2, 2])
    out = served.sym2img(y, noise)
    np.testing.assert_allclose(out["images"].numpy(), scan.sym2img(y, noise).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["mean"].numpy(), scan.encode_symbols(y)["mean"].numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.img2sym(tf.constant(binary_images))["probabilities"].numpy(),
                               scan.img2sym(binary_images).numpy(), rtol=1e-5, atol=1e-6)
    shown = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         str(directory), "--all"], capture_output=True, text=True, check=True).stdout
    for endpoint in ("sym2img", "img2sym", "serving_default", "encode", "decode"):
        assert f"signature_def['{endpoint}']" in shown, endpoint


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs visual_path"),
    ({"stage": "both"}, "Unknown SCAN stage 'both'"),
    ({"specify_probability": 1.5}, "specify_probability must be in"),
    ({"grounding_weight": -1.0}, "grounding_weight must be"),
    ({"latent_dim": 10}, "latent_dim=10 does not match the visual model's 4"),
    ({"network": "conv64_dlib"}, "network='conv64_dlib' does not match"),
    ({"visual_sha256": "0" * 64}, "not the expected visual_sha256"),
])
def test_bad_settings_are_refused(visual_file, kwargs, message):
    if kwargs:  # {}: no visual model at all
        kwargs = {"visual_path": str(visual_file[0]), **kwargs}
    with pytest.raises(ValueError, match=message):
        models.SCAN(**kwargs)


def test_a_dae_is_not_a_visual_model(tmp_path):
    path = tmp_path / "dae.keras"
    models.get("dae", **SMALL).save(path)
    with pytest.raises(ValueError, match="holds a DenoisingAutoencoder; SCAN needs"):
        models.SCAN(visual_path=str(path))


# ------------------------------------------------------------------------ the two stages
# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_two_training_stages_through_trainers_train(visual_file, tmp_path):
    path = str(visual_file[0])
    common = {"latent_dim": 4, "batch_size": 8, "checkpoint_every": 2, "image_every": 2,
              "eval_batches": 1, "export": False, "verbose": 0}
    concepts = train.run(TrainConfig(
        model="scan", model_args={"visual_path": path}, steps=2,
        output_dir=str(tmp_path / "scan"), **common))
    assert concepts["model_config"]["visual_sha256"] == sha256_of_file(path)
    assert {"recon", "kl", "grounding"} <= set(concepts["final_loss_terms"])
    recombination = train.run(TrainConfig(
        model="scan", model_args={"visual_path": path, "stage": "recombination"}, steps=4,
        init_from=str(tmp_path / "scan" / "model.keras"),
        output_dir=str(tmp_path / "recombination"), **common))
    assert recombination["steps"] == 4
    assert set(recombination["final_loss_terms"]) == {"loss", "recombination_kl"}
    first = models.load(tmp_path / "scan" / "model.keras")
    second = models.load(tmp_path / "recombination" / "model.keras")
    for a, b in zip(first.symbol_encoder.weights, second.symbol_encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # frozen in the second stage
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(first.recombiner.weights, second.recombiner.weights))


# ------------------------------------------------------------------------ scores
class _FactorData:
    """dSprites' factors whose "images" are the factor indices themselves (so an oracle can
    read them)."""

    name = "factor vectors"

    def __init__(self, dsprites):
        self.factor_names, self.factor_sizes = dsprites.factor_names, dsprites.factor_sizes
        self._dsprites = dsprites

    def sample(self, n, rng):
        factors = self._dsprites.sample_factors(n, rng)
        return factors, factors.astype(np.float32)


def test_img2sym_accuracy_of_an_oracle_and_of_a_constant_guess(dsprites, vocabulary):
    fake = _FactorData(dsprites)
    oracle = scan_scores.img2sym_accuracy(
        lambda images: vocabulary.symbols(images.astype(np.int64)).numpy(), vocabulary, fake,
        num_samples=300)
    assert oracle == {name: 1.0 for name in vocabulary.attributes}
    first_words = np.zeros(vocabulary.size, np.float32)
    first_words[vocabulary.offsets] = 1.0
    guess = scan_scores.img2sym_accuracy(lambda images: np.tile(first_words, (len(images), 1)),
                                         vocabulary, fake, num_samples=3000)
    assert guess["shape"] == pytest.approx(1 / 3, abs=0.03)
    assert guess["orientation"] == pytest.approx(1 / 4, abs=0.03)
    assert guess["posX"] == pytest.approx(11 / 32, abs=0.03)


def test_concept_scores_known_answers(vocabulary):
    symbol = vocabulary.parse([["heart"]])[0]
    labelled = np.zeros((12, vocabulary.num_attributes), np.int64) + vocabulary.offsets
    labelled[:9, 0] = vocabulary.words.index("heart")              # 9 of 12 hearts
    labelled[:, 1] = vocabulary.offsets[1] + np.arange(12) % 3      # scale: all words equally
    scores = scan_scores.concept_scores(labelled, symbol, vocabulary)
    assert scores["shape"] == ("accuracy", 0.75)
    assert scores["scale"][0] == "spread" and scores["scale"][1] == pytest.approx(1.0)
    assert scores["orientation"] == ("spread", 0.0)                 # always the same word


def test_sym2img_scores_aggregate_over_concepts(vocabulary):
    symbols = vocabulary.parse([["heart", "small"], ["x_low"]])

    def sample_fn(y, n):  # named words exactly, free attributes cycling through their words
        out = np.zeros((len(y), n, vocabulary.num_attributes), np.int64)
        for a in range(vocabulary.num_attributes):
            own = np.flatnonzero(vocabulary.attribute_of_word == a)
            for b, row in enumerate(y):
                named = own[row[own] == 1]
                out[b, :, a] = named[0] if len(named) else own[np.arange(n) % len(own)]
        return out

    result = scan_scores.sym2img_scores(sample_fn, lambda words: words, vocabulary, symbols, 12)
    assert result["concepts"] == 2
    assert result["accuracy"] == {"shape": 1.0, "scale": 1.0, "posX": 1.0}
    assert result["spread"] == pytest.approx({"shape": 1.0, "scale": 1.0, "orientation": 1.0,
                                              "posX": 1.0, "posY": 1.0})
    assert result["per_concept"][0]["concept"] == ["heart", "small"]


def test_recombination_scores_score_the_recombined_concept(scan, vocabulary):
    first = vocabulary.parse([["heart", "small"], ["x_low", "y_low"]])
    second = vocabulary.parse([["heart"], ["y_low"]])

    def classify(images):
        return np.tile(vocabulary.offsets, (len(images), 1))

    result = scan_scores.recombination_scores(scan, classify, first, second, "ignore",
                                              samples_per_concept=4)
    assert result["operator"] == "ignore"
    assert [c["concept"] for c in result["per_concept"]] == [["small"], ["x_low"]]
    assert result["accuracy"] == {"scale": 1.0, "posX": 1.0}   # the first word of each


def test_attribute_classifier_labels_every_attribute(dsprites, vocabulary):
    classify = scan_scores.train_attribute_classifier(dsprites, vocabulary, steps=3,
                                                      batch_size=8)
    _, images = dsprites.sample(5, np.random.default_rng(0))
    words = classify(images)
    assert words.shape == (5, vocabulary.num_attributes)
    assert all(vocabulary.attribute_of_word[words[:, a]].tolist() == [a] * 5
               for a in range(vocabulary.num_attributes))
    accuracy = scan_scores.classifier_accuracy(classify, vocabulary, dsprites, num_samples=50)
    assert set(accuracy) == set(vocabulary.attributes)
    assert all(0.0 <= v <= 1.0 for v in accuracy.values())


# ------------------------------------------------------------------------ held-out combinations
def test_recombine_in_tf_matches_the_operators_on_symbols(vocabulary, dsprites):
    rng = np.random.default_rng(6)
    factors = dsprites.sample_factors(60, rng)
    first = vocabulary.symbols(factors, rng.random((60, 5)) < 0.5).numpy()
    second = vocabulary.symbols(dsprites.sample_factors(60, rng), rng.random((60, 5)) < 0.5)
    second = second.numpy() * (first.sum(axis=1, keepdims=True) >= 0)
    for index, operator in enumerate(("in_common", "ignore")):
        pick = tf.one_hot(np.full(60, index + 1), 3)
        np.testing.assert_array_equal(vocabulary.recombine_tf(first, second, pick).numpy(),
                                      vocabulary.recombine(first, second, operator))


def test_withhold_drops_the_last_word_of_a_held_out_combination(vocabulary):
    held_out = vocabulary.parse([["heart", "small"]])
    symbols = vocabulary.parse([["heart", "small", "x_low"], ["heart", "medium"], ["small"]])
    assert vocabulary.describe(vocabulary.withhold(symbols, held_out)) == [
        ["heart", "x_low"], ["heart", "medium"], ["small"]]
    with pytest.raises(ValueError, match="at least two words"):
        vocabulary.held_out_parts(vocabulary.parse([["heart"]]))


def test_held_out_combinations_never_appear_in_training(visual_file, dsprites, vocabulary):
    held_out = [["heart", "small"], ["square", "x_low"]]
    combos = vocabulary.parse(held_out)

    def names_a_held_out_combination(symbols):
        return np.any(np.all(symbols[:, None, :] >= combos[None], axis=2))

    concepts = models.SCAN(visual_path=str(visual_file[0]), held_out_concepts=held_out,
                           specify_probability=0.9, seed=5)
    assert concepts.get_config()["held_out_concepts"] == held_out
    stream = iter(concepts.training_stream(dsprites, 128, seed=1))
    for _ in range(3):
        _, symbols = next(stream)
        assert not names_a_held_out_combination(symbols.numpy())
    recombination = models.SCAN(visual_path=str(visual_file[0]), held_out_concepts=held_out,
                                stage="recombination", specify_probability=0.9, seed=5)
    _, (first, second, r) = next(iter(recombination.training_stream(dsprites, 256, seed=1)))
    results = vocabulary.recombine_tf(first, second, r).numpy()
    for symbols in (first.numpy(), second.numpy(), results):
        assert not names_a_held_out_combination(symbols)
    assert vocabulary.matches(dsprites.stream_factors(256, seed=1, step=0), results).all()
    with pytest.raises(ValueError, match="Unknown word 'round'"):
        models.SCAN(visual_path=str(visual_file[0]), held_out_concepts=[["round", "small"]])


# Slow (about a minute or more on 2 cores): `make test-all` runs it.
@pytest.mark.slow
def test_scan_report_scores_and_picture(visual_file, dsprites, tmp_path):
    from trainers import scan_report

    model = models.SCAN(visual_path=str(visual_file[0]), held_out_concepts=[["heart", "small"]],
                        seed=5)
    result = scan_report.report(model, dsprites, num_samples=20, num_concepts=3,
                                samples_per_concept=2, classifier_steps=2,
                                picture=tmp_path / "sym2img.png", picture_samples=2)
    assert set(result["img2sym_accuracy"]) == set(model.vocabulary.attributes)
    assert set(result["recombination"]) == {"and", "in_common", "ignore"}
    assert result["sym2img"]["concepts"] == 3
    assert result["sym2img_held_out"]["per_concept"][0]["concept"] == ["heart", "small"]
    assert result["recombination_held_out"]["per_concept"][0]["concept"] == ["heart", "small"]
    assert (tmp_path / "sym2img.png").exists()
    json.dumps(result)


@pytest.mark.parametrize("stage", ["concepts", "recombination"])
def test_a_resumed_stream_replays_the_same_batches(visual_file, dsprites, stage):
    model = models.SCAN(visual_path=str(visual_file[0]), stage=stage, seed=5)
    from_start = iter(model.training_stream(dsprites, 8, seed=2, start_step=0))
    next(from_start)
    resumed = next(iter(model.training_stream(dsprites, 8, seed=2, start_step=1)))
    for a, b in zip(tf.nest.flatten(next(from_start)), tf.nest.flatten(resumed)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
