"""Command-line programs of the zoo: train, export, benchmark, demo (`python -m trainers.<name>`)."""
