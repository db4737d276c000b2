"""Scores of a SCAN model (Higgins et al. 2018; docs/methods.md §15; issue 22): how well it names images
and how well the images it imagines match a concept.

- **img2sym accuracy** per attribute: for i.i.d. images of the data set, the most probable word of
  each attribute under img2sym against the image's own word (`img2sym_accuracy`).
- **sym2img scores** per attribute (`concept_scores`, `sym2img_scores`): images sampled for a
  concept are labelled by an attribute classifier trained on ground-truth images
  (`train_attribute_classifier`; its own held-out accuracy says how far its labels can be
  trusted: `classifier_accuracy`). For an attribute the concept names: the fraction of samples
  labelled with the named word (*accuracy*). For an attribute it leaves unspecified: the *spread*
  of the labelled words, the entropy of their histogram divided by log(number of words) (1: all
  words equally often, as a concept that leaves the attribute free should give; 0: one word).
- **recombined concepts**: the same scores for images sampled from q_ψ(z_r | y₁, y₂, r), scored
  against the recombined concept `Vocabulary.recombine(y₁, y₂, r)` (`recombination_scores`);
  for the paper's generalisation claim, pass combinations held out of SCAN's training.

Every function is a pure function of its inputs and `seed`.
"""
import keras
import numpy as np
import tensorflow as tf

from zoo.symbols import OPERATORS


def attribute_words(probabilities, vocabulary):
    """The most probable word (global word index) of each attribute: int [n, A] for word
    probabilities or scores [n, V]."""
    probabilities = np.asarray(probabilities)
    columns = []
    for a in range(vocabulary.num_attributes):
        own = np.flatnonzero(vocabulary.attribute_of_word == a)
        columns.append(own[np.argmax(probabilities[:, own], axis=1)])
    return np.stack(columns, axis=1)


def img2sym_accuracy(img2sym, vocabulary, data, num_samples=1000, seed=0, batch_size=250):
    """{attribute: accuracy} of img2sym (images → word probabilities [n, V]) on `num_samples`
    i.i.d. images of `data`."""
    vocabulary.check_data(data)
    factors, images = data.sample(int(num_samples), np.random.default_rng(seed))
    truth = vocabulary.word_indices(factors).numpy()
    predicted = np.concatenate([
        attribute_words(np.asarray(img2sym(images[i:i + batch_size])), vocabulary)
        for i in range(0, len(images), batch_size)])
    return {name: float(np.mean(predicted[:, a] == truth[:, a]))
            for a, name in enumerate(vocabulary.attributes)}


def concept_scores(labelled_words, symbol, vocabulary):
    """Scores of one concept's samples: labelled_words int [n, A] (global word indices),
    symbol [V]. {attribute: ("accuracy", value)} for named attributes and
    {attribute: ("spread", value)} for the others."""
    symbol = np.asarray(vocabulary.check(np.asarray(symbol, np.float32)[None]))[0]
    scores = {}
    for a, (name, words) in enumerate(vocabulary.attributes.items()):
        own = np.flatnonzero(vocabulary.attribute_of_word == a)
        named = own[symbol[own] == 1]
        if len(named):
            scores[name] = ("accuracy", float(np.mean(labelled_words[:, a] == named[0])))
        else:
            counts = np.array([np.sum(labelled_words[:, a] == w) for w in own], np.float64)
            p = counts[counts > 0] / counts.sum()
            spread = float(-(p * np.log(p)).sum() / np.log(len(words))) if len(words) > 1 else 1.0
            scores[name] = ("spread", spread)
    return scores


def _aggregate(per_concept, vocabulary):
    """Means over concepts: {"accuracy": {attribute: mean over the concepts naming it},
    "spread": {attribute: mean over the concepts leaving it free}, "concepts": count}."""
    result = {"accuracy": {}, "spread": {}, "concepts": len(per_concept)}
    for kind in ("accuracy", "spread"):
        for name in vocabulary.attributes:
            values = [s[name][1] for s in per_concept if s[name][0] == kind]
            if values:
                result[kind][name] = float(np.mean(values))
    return result


def sym2img_scores(sample_fn, classify_fn, vocabulary, symbols, samples_per_concept=64):
    """Scores of imagined images for concepts `symbols` [B, V]: sample_fn(symbols, n) → images
    [B, n, H, W, C]; classify_fn(images [m, H, W, C]) → word indices [m, A]. Returns the means
    over concepts (see `_aggregate`) and "per_concept": each concept's words and scores."""
    symbols = np.asarray(vocabulary.check(symbols))
    images = np.asarray(sample_fn(symbols, int(samples_per_concept)))
    per_concept = []
    for symbol, samples in zip(symbols, images):
        per_concept.append(concept_scores(np.asarray(classify_fn(samples)), symbol, vocabulary))
    result = _aggregate(per_concept, vocabulary)
    result["per_concept"] = [{"concept": words, "scores": {k: v[1] for k, v in s.items()}}
                             for words, s in zip(vocabulary.describe(symbols), per_concept)]
    return result


def recombination_scores(model, classify_fn, first, second, operator, samples_per_concept=64,
                         seed=0):
    """`sym2img_scores` of images sampled from q_ψ(z_r | y₁, y₂, `operator`) (a SCAN `model`),
    scored against the recombined concepts first <operator> second."""
    vocabulary = model.vocabulary
    if operator not in OPERATORS:
        raise ValueError(f"Unknown operator {operator!r}; expected one of {OPERATORS}.")
    target = vocabulary.recombine(first, second, operator)
    recombined = model.recombine(first, second, operator)
    n = int(samples_per_concept)
    mean = tf.repeat(recombined["mean"], n, axis=0)
    std = tf.repeat(tf.exp(0.5 * recombined["logvar"]), n, axis=0)
    noise = tf.random.stateless_normal(tf.shape(mean), [int(seed), 0x5CA2])
    images = model.decode_mean(mean + std * noise).numpy()
    images = images.reshape((len(target), n) + images.shape[1:])
    result = sym2img_scores(lambda _y, _n: images, classify_fn, vocabulary, target, n)
    result["operator"] = operator
    return result


def train_attribute_classifier(data, vocabulary, steps=2000, batch_size=64, seed=0,
                               learning_rate=1e-3):
    """A small conv net (Conv 16/32/32, k4 s2 → Dense 64) with one softmax head per attribute,
    trained on the i.i.d. stream of `data` to give each image's words. Returns a function
    images [m, H, W, C] → word indices [m, A] (with the Keras model as `.model`)."""
    vocabulary.check_data(data)
    keras.utils.set_random_seed(int(seed))
    inputs = keras.Input(shape=tuple(data.observation_shape))
    h = inputs
    for filters in (16, 32, 32):
        h = keras.layers.Conv2D(filters, 4, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(h))
    outputs = [keras.layers.Dense(len(words), name=f"head_{a}")(h)
               for a, words in enumerate(vocabulary.attributes.values())]
    model = keras.Model(inputs, outputs, name="attribute_classifier")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)]
                  * vocabulary.num_attributes)
    offsets = tf.constant(vocabulary.offsets)

    def with_labels(images, factors):
        words = vocabulary.word_indices(factors) - offsets[None, :]
        return images, tuple(words[:, a] for a in range(vocabulary.num_attributes))

    stream = data.stream(int(batch_size), seed=int(seed), with_factors=True).map(with_labels)
    model.fit(stream, steps_per_epoch=int(steps), epochs=1, verbose=0, shuffle=False)

    def classify(images):
        logits = model(np.asarray(images, np.float32), training=False)
        return np.stack([np.argmax(np.asarray(l), axis=1) for l in logits], axis=1) \
            + vocabulary.offsets[None, :]

    classify.model = model
    return classify


def classifier_accuracy(classify_fn, vocabulary, data, num_samples=1000, seed=1):
    """{attribute: accuracy} of an attribute classifier on i.i.d. ground-truth images."""
    factors, images = data.sample(int(num_samples), np.random.default_rng(seed))
    truth = vocabulary.word_indices(factors).numpy()
    predicted = np.asarray(classify_fn(images))
    return {name: float(np.mean(predicted[:, a] == truth[:, a]))
            for a, name in enumerate(vocabulary.attributes)}
