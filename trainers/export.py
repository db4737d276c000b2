r"""Turn a `.keras` model into a SavedModel for TF Serving.

    python -m trainers.export --model_path=runs/x/model.keras --output_dir=runs/x/saved_model

Endpoints: encode, decode, reconstruct, representation and serving_default (= reconstruct), and a
model's own (SCAN: sym2img, img2sym, serving_default = img2sym); list them with `saved_model_cli show --dir <output_dir> --all`.
"""
from absl import flags

from trainers import cli
from zoo import models
from zoo.export import endpoints_of, export_saved_model


def define_flags(flag_values):
    flags.DEFINE_string("model_path", None, "The .keras file to export.", required=True,
                        flag_values=flag_values)
    flags.DEFINE_string("output_dir", None, "Where to write the SavedModel.", required=True,
                        flag_values=flag_values)


def main(argv):
    del argv
    model = models.load(flags.FLAGS.model_path)
    export_saved_model(model, flags.FLAGS.output_dir)
    print(f"Wrote SavedModel {flags.FLAGS.output_dir} with endpoints "
          f"{', '.join(endpoints_of(model))}.")


if __name__ == "__main__":
    cli.run(main, define_flags)
