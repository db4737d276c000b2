"""disentanglement-zoo: a TensorFlow 2 / Keras 3 model zoo for disentangled representation learning."""
from setuptools import find_packages, setup

setup(
    name="disentanglement-zoo",
    version="0.1.0",
    description="Disentangled representation learning models, metrics and ground-truth data sets "
    "for TensorFlow 2 / Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # The registry of published models travels with the package as zoo/published/registry.json;
    # the model files do not (zoo.pretrained downloads them from the registry's URL template).
    packages=find_packages(include=["zoo", "zoo.*", "trainers", "trainers.*"]) + ["zoo.published"],
    package_dir={"zoo.published": "pretrained"},
    package_data={"zoo.published": ["registry.json"]},
    python_requires=">=3.10",
    # Ranges are the ones tested together; tensorflow, tf-keras and tensorflow-probability move in
    # lock-step (TFP's distributions need tf-keras beside Keras 3).
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-probability[tf]>=0.25,<0.26",
        "tf-keras>=2.21,<2.22",
        "tensorflow-datasets>=4.9.10,<4.10",
        "tensorboard>=2.21,<2.22",
        "importlib_resources>=6",  # tfds download_and_prepare needs it on Python 3.11
        "numpy>=1.26,<3",
        "scipy>=1.14,<1.18",
        # Metric values depend on scikit-learn's estimator defaults: one minor version only.
        "scikit-learn>=1.9,<1.10",
        "absl-py>=2.1,<3",
        "pillow>=10,<14",
        "pyyaml>=6,<7",  # the zoo build plan and sweep specs
    ],
    extras_require={
        "solvers": ["ortools>=9.15,<9.16"],
        "sweep": ["ray>=2.40,<3", "matplotlib>=3.8,<4"],
        "dev": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "ruff>=0.6"],
        # The PyTorch peer of `trainers.benchmark --against=pytorch` (CPU build, pinned exactly).
        "bench": ["torch==2.13.0"],
    },
)
