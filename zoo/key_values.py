"""`key=value` arguments, the one parser behind every flag that takes them (trainers.train's
--model_arg and --eval_metric_arg, trainers.evaluate's --metric_arg, trainers.benchmark's
--model_arg, trainers.experiments' --experiment_model_arg, trainers.cascade_results'
--run_dirs) and behind `zoo.metrics.parse_metric_args`.

Values are read as JSON where they parse (`4` → 4, `1e-3` → 0.001, `true` → True, `null` → None,
`[1,2]` → [1, 2], `"4"` → "4"), and kept as the text otherwise (`procedural` → "procedural"), so a
number or list needs no quoting and a word needs none either."""
import json


def split_key_value(pair, what="an argument"):
    """"key=value" → ("key", "value") (the value as written; it may hold "=" itself). `what`
    names the flag in the error for a pair without "=" or without a key."""
    key, sep, value = str(pair).partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what} must look like key=value, got {pair!r}.")
    return key.strip(), value


def json_value(text):
    """`text` read as JSON where it parses, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_key_values(pairs, what="an argument"):
    """["beta=4", "name=x"] → {"beta": 4, "name": "x"}, values read by `json_value`. A key given
    twice is refused: one of the two would be silently ignored."""
    parsed = {}
    for pair in pairs:
        key, value = split_key_value(pair, what)
        if key in parsed:
            raise ValueError(f"{what} sets {key!r} twice ({key}={json.dumps(parsed[key])} and "
                             f"{pair!r}); give it once.")
        parsed[key] = json_value(value)
    return parsed
