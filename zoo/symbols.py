"""Symbols for SCAN (Higgins et al. 2018; docs/methods.md §15): k-hot vectors over attribute words built
from a ground-truth data set's factors.

An *attribute* is a factor of variation whose index range is split into equal bins, one *word* per
bin (a factor with as many words as values gets one word per value). A *concept* names some of the
attributes, one word each, and leaves the others unspecified; its symbol y is the k-hot vector
over all words (V of them) with a 1 for each named word. An image matches a concept when each
named word's bin holds the image's factor value.

dSprites' vocabulary (`DSPRITES_ATTRIBUTES`, V = 16): shape (square, ellipse, heart), scale in
three bins of two values (small, medium, large), orientation in four bins of ten of the 40 angle
steps (angle_0, angle_90, angle_180, angle_270: the bin starting at that angle), and position x
and y (posX, posY) in three bins of the 32 steps (x_low/x_mid/x_high: bins of 11, 11 and 10
steps; likewise y). The position words name index ranges, not screen directions. colour (one
value) has no words.

The concept operators of SCAN's recombination module act on the named attributes:
AND (the union of two concepts naming different attributes), IN COMMON (the words both name) and
IGNORE (the first concept's words without the second's attributes) — `recombine`.
"""
import numpy as np
import tensorflow as tf

DSPRITES_ATTRIBUTES = {
    "shape": ("square", "ellipse", "heart"),
    "scale": ("small", "medium", "large"),
    "orientation": ("angle_0", "angle_90", "angle_180", "angle_270"),
    "posX": ("x_low", "x_mid", "x_high"),
    "posY": ("y_low", "y_mid", "y_high"),
}
DSPRITES_FACTOR_SIZES = {"shape": 3, "scale": 6, "orientation": 40, "posX": 32, "posY": 32}
OPERATORS = ("and", "in_common", "ignore")


class Vocabulary:
    """The attribute words of a ground-truth data set (module docstring).

    Args:
      factor_names, factor_sizes: the data set's factors (`GroundTruthData`'s).
      attributes: {factor name: words}, one word per equal bin of the factor's indices (bins of
        ⌈size/len(words)⌉ … values: value i has word ⌊i·len(words)/size⌋); default:
        `DSPRITES_ATTRIBUTES` for dSprites' factors, else one word "<factor>_<value>" per value of
        each factor with 2 to 4 values and three bins "<factor>_bin<k>" for larger factors.
    """

    def __init__(self, factor_names, factor_sizes, attributes=None):
        self.factor_names = tuple(str(n) for n in factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        if attributes is None:
            attributes = default_attributes(self.factor_names, self.factor_sizes)
        self.attributes = {str(k): tuple(str(w) for w in v) for k, v in dict(attributes).items()}
        if not self.attributes:
            raise ValueError("A vocabulary needs at least one attribute.")
        for name, words in self.attributes.items():
            if name not in self.factor_names:
                raise ValueError(f"Attribute {name!r} is not a factor ({self.factor_names}).")
            size = self.factor_sizes[self.factor_names.index(name)]
            if not 1 <= len(words) <= size:
                raise ValueError(f"Attribute {name!r} needs 1 to {size} words (its factor's "
                                 f"values), got {len(words)}.")
        self.words = tuple(w for words in self.attributes.values() for w in words)
        if len(set(self.words)) != len(self.words):
            raise ValueError(f"Words must be unique across attributes, got {self.words}.")
        self.columns = [self.factor_names.index(name) for name in self.attributes]
        counts = [len(words) for words in self.attributes.values()]
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.attribute_of_word = np.repeat(np.arange(len(counts)), counts)

    @classmethod
    def from_data(cls, data, attributes=None):
        return cls(data.factor_names, data.factor_sizes, attributes)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {"factor_names": list(self.factor_names), "factor_sizes": list(self.factor_sizes),
                "attributes": {k: list(v) for k, v in self.attributes.items()}}

    @property
    def size(self):
        """V, the number of words (the symbol vectors' length)."""
        return len(self.words)

    @property
    def num_attributes(self):
        return len(self.attributes)

    def check_data(self, data):
        if tuple(data.factor_names) != self.factor_names or \
                tuple(data.factor_sizes) != self.factor_sizes:
            raise ValueError(f"The vocabulary was built for factors {self.factor_names} of sizes "
                             f"{self.factor_sizes}; {data.name} has {tuple(data.factor_names)} of "
                             f"sizes {tuple(data.factor_sizes)}.")

    def word_indices(self, factors):
        """The word of each attribute for factor indices [n, K]: int64 [n, A] (TF)."""
        factors = tf.cast(tf.convert_to_tensor(factors), tf.int64)
        indices = []
        for a, (column, words) in enumerate(zip(self.columns, self.attributes.values())):
            size = self.factor_sizes[column]
            indices.append(self.offsets[a] + factors[:, column] * len(words) // size)
        return tf.stack(indices, axis=1)

    def symbols(self, factors, specified=None):
        """k-hot symbols float32 [n, V] naming, for each row of factors [n, K], the attributes
        where `specified` [n, A] (bool) is true (default all). TF; works eagerly on numpy."""
        words = self.word_indices(factors)
        hot = tf.one_hot(words, self.size, dtype=tf.float32)                 # [n, A, V]
        if specified is not None:
            hot *= tf.cast(specified, tf.float32)[:, :, None]
        return tf.reduce_sum(hot, axis=1)

    def random_specified(self, n, seed, probability=0.5):
        """bool [n, A]: each attribute named with `probability`, from a stateless [2] seed."""
        return tf.random.stateless_uniform([n, self.num_attributes], seed) < probability

    def check(self, symbols):
        """Symbols as float32 [B, V]: the right size, 0/1 values, at most one word per attribute
        (k-hot). Errors are ValueErrors eagerly and InvalidArgumentErrors in graphs, with the
        same messages (like `zoo.models.base.check_images`)."""
        y = tf.convert_to_tensor(symbols)
        if y.shape.rank != 2 or y.shape[1] != self.size:
            raise ValueError(f"Symbols must have shape (batch, {self.size}) (one entry per word of "
                             f"{list(self.words)}), got {tuple(y.shape)}.")
        if not (y.dtype.is_floating or y.dtype.is_integer or y.dtype == tf.bool):
            raise ValueError(f"Symbols must be numbers, got dtype {y.dtype.name}.")
        y = tf.cast(y, tf.float32)
        per_attribute = tf.math.unsorted_segment_sum(tf.transpose(y), self.attribute_of_word,
                                                     self.num_attributes)         # [A, B]
        binary = "Symbols must be k-hot: every entry 0 or 1."
        one_word = "Symbols must be k-hot: at most one word per attribute."
        if tf.executing_eagerly():
            values = y.numpy()
            if not np.all((values == 0) | (values == 1)):
                raise ValueError(binary)
            if np.any(per_attribute.numpy() > 1):
                raise ValueError(one_word)
            return y
        checks = [tf.debugging.assert_equal(y * (1.0 - y), tf.zeros_like(y), message=binary),
                  tf.debugging.assert_less_equal(per_attribute, 1.0, message=one_word)]
        with tf.control_dependencies(checks):
            return tf.identity(y)

    def describe(self, symbols):
        """The named words of each symbol: a list of lists of words."""
        y = self.check(symbols).numpy()
        return [[self.words[i] for i in np.flatnonzero(row)] for row in y]

    def parse(self, concepts):
        """k-hot symbols [n, V] for concepts given as lists of words, e.g. [["heart", "small"]]."""
        y = np.zeros((len(concepts), self.size), np.float32)
        for row, concept in enumerate(concepts):
            for word in concept:
                if word not in self.words:
                    raise ValueError(f"Unknown word {word!r}; the vocabulary is {list(self.words)}.")
                y[row, self.words.index(word)] = 1.0
        return self.check(y).numpy()

    def matches(self, factors, symbols):
        """bool [n]: each image (factors [n, K]) has every word its symbol [n, V] names."""
        own = self.symbols(factors).numpy()
        y = self.check(symbols).numpy()
        return np.all(own >= y, axis=1)

    def named_attributes(self, symbols):
        """bool [n, A]: which attributes each symbol names."""
        y = self.check(symbols).numpy()
        return np.stack([y[:, self.attribute_of_word == a].sum(axis=1) > 0
                         for a in range(self.num_attributes)], axis=1)

    def same_attribute(self):
        """float32 [V, V]: 1 where two words belong to one attribute."""
        return (self.attribute_of_word[:, None] == self.attribute_of_word[None, :]).astype(
            np.float32)

    def recombine_tf(self, first, second, pick):
        """`recombine` in TF for a one-hot operator per row, pick [B, 3] (AND, IN COMMON,
        IGNORE)."""
        named = tf.minimum(tf.matmul(second, self.same_attribute()), 1.0)
        results = tf.stack([tf.maximum(first, second), first * second, first * (1.0 - named)])
        return tf.einsum("bo,obv->bv", pick, results)

    @staticmethod
    def names_all(symbols, concept):
        """float [B]: 1 where a symbol names every word of `concept` [V]."""
        return tf.cast(tf.reduce_all(symbols >= concept[None, :], axis=1), tf.float32)

    def held_out_parts(self, held_out):
        """(concept [V], its last word one-hot [V]) for each held-out concept: k-hot numpy
        [H, V] (from `parse`)."""
        held_out = np.asarray(held_out, np.float32)
        parts = []
        for concept in held_out:
            if concept.sum() < 2:
                raise ValueError("A held-out concept combines at least two words, got "
                                 f"{self.describe(concept[None])[0]}.")
            last = np.zeros_like(concept)
            last[np.flatnonzero(concept)[-1]] = 1.0
            parts.append((tf.constant(concept), tf.constant(last)))
        return parts

    def withhold(self, symbols, held_out):
        """Symbols [B, V] in which no held-out concept ([H, V]) is named in full: such a symbol
        loses the concept's last word (TF)."""
        for concept, last in self.held_out_parts(held_out):
            symbols = symbols * (1.0 - self.names_all(symbols, concept)[:, None] * last[None, :])
        return symbols

    def recombine(self, first, second, operator):
        """The symbols of `first` <operator> `second` ([n, V] each): "and" (union; the two must
        not name one attribute with different words), "in_common" (words both name) or "ignore"
        (first's words on attributes second does not name)."""
        a, b = self.check(first).numpy(), self.check(second).numpy()
        if operator == "and":
            union = np.maximum(a, b)
            self.check(union)  # refuses two words for one attribute
            return union
        if operator == "in_common":
            return a * b
        if operator == "ignore":
            dropped = self.named_attributes(b)[:, self.attribute_of_word]
            return a * ~dropped
        raise ValueError(f"Unknown operator {operator!r}; expected one of {OPERATORS}.")


def recombination_triples(vocabulary, factors, others, masks, operator, held_out=None):
    """(y₁, y₂, r) for images with factors [B, K] such that each image matches y₁ <r> y₂ (TF).

    others: two factor draws [B, K] that supply unrelated words; masks: three bool [B, A] masks
    u₁, u₂, u₃ over the attributes; operator: int [B] index into `OPERATORS`. With s the image's
    words and s', s'' those of the two draws:
      AND:       y₁ = s on u₁,                     y₂ = s on ¬u₁ ∧ u₂          (result: s on both)
      IN COMMON: y₁ = s on u₁ + s' on ¬u₁ ∧ u₂,    y₂ = s on u₁ + s'' on ¬u₁ ∧ ¬u₂ ∧ u₃
                 (result: s on u₁)
      IGNORE:    y₁ = s on u₁ ∨ (¬u₁ ∧ u₂),        y₂ = s' on ¬u₁ ∧ u₂         (result: s on u₁)
    held_out: k-hot concepts [H, V] that neither y₁, y₂ nor the result may name in full (see
    `Vocabulary.withhold`; the last word of such a concept is dropped, which keeps the image a
    match of the result)."""
    u1, u2, u3 = masks
    rest = ~u1 & u2
    cases = [
        (vocabulary.symbols(factors, u1), vocabulary.symbols(factors, rest)),
        (vocabulary.symbols(factors, u1) + vocabulary.symbols(others[0], rest),
         vocabulary.symbols(factors, u1) + vocabulary.symbols(others[1], ~u1 & ~u2 & u3)),
        (vocabulary.symbols(factors, u1 | rest), vocabulary.symbols(others[0], rest)),
    ]
    pick = tf.one_hot(operator, len(OPERATORS))
    first = tf.einsum("bo,obv->bv", pick, tf.stack([c[0] for c in cases]))
    second = tf.einsum("bo,obv->bv", pick, tf.stack([c[1] for c in cases]))
    if held_out is not None and len(held_out):
        first, second = vocabulary.withhold(first, held_out), vocabulary.withhold(second, held_out)
        # A result naming a held-out concept loses its last word: from y₁ (IGNORE's result is
        # part of y₁), and from y₂ as well for AND and IN COMMON.
        both = pick[:, 0] + pick[:, 1]
        for concept, last in vocabulary.held_out_parts(held_out):
            full = vocabulary.names_all(vocabulary.recombine_tf(first, second, pick), concept)
            first *= 1.0 - full[:, None] * last[None, :]
            second *= 1.0 - (full * both)[:, None] * last[None, :]
    return first, second, pick


def default_attributes(factor_names, factor_sizes):
    """`DSPRITES_ATTRIBUTES` for dSprites' factors; otherwise words per value (2–4 values) or
    three bins (more values) of every factor with more than one value."""
    sizes = dict(zip(factor_names, factor_sizes))
    if {k: v for k, v in sizes.items() if v > 1} == DSPRITES_FACTOR_SIZES:
        return DSPRITES_ATTRIBUTES
    attributes = {}
    for name, size in sizes.items():
        if 2 <= size <= 4:
            attributes[name] = tuple(f"{name}_{v}" for v in range(size))
        elif size > 4:
            attributes[name] = tuple(f"{name}_bin{k}" for k in range(3))
    return attributes
