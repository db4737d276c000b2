"""Models by name. Every model is a registered `keras.Model` subclass (see `zoo.models.base`)."""
import warnings
import zipfile
from pathlib import Path

import keras

from zoo.models.base import VAE, check_images, default_optimizer
from zoo.models.beta_vae import AnnealedVAE, BetaVAE
from zoo.models.beta_vae_dae import BetaVAEDAE, DenoisingAutoencoder
from zoo.models.cascade_vae import CascadeVAE, CascadeVAEC
from zoo.models.dc_ign import DCIGN
from zoo.models.decomposition_vae import DecompositionVAE
from zoo.models.dip_vae import DIPVAEI, DIPVAEII
from zoo.models.factor_vae import FactorVAE
from zoo.models.infogan import InfoGAN
from zoo.models.joint_vae import JointVAE
from zoo.models.kernel_vaes import HSICVAE, VFAE, InfoVAE
from zoo.models.scan import SCAN
from zoo.models.tc_vae import BetaTCVAE

MODELS = {
    "vae": VAE,
    "beta_vae": BetaVAE,
    "annealed_vae": AnnealedVAE,
    "cascade_vae": CascadeVAE,
    "cascade_vae_c": CascadeVAEC,
    "joint_vae": JointVAE,
    "factor_vae": FactorVAE,
    "beta_tcvae": BetaTCVAE,
    "dip_vae_i": DIPVAEI,
    "dip_vae_ii": DIPVAEII,
    "infogan": InfoGAN,
    "decomposition_vae": DecompositionVAE,
    "dc_ign": DCIGN,
    "info_vae": InfoVAE,
    "hsic_vae": HSICVAE,
    "vfae": VFAE,
    "dae": DenoisingAutoencoder,
    "beta_vae_dae": BetaVAEDAE,
    "scan": SCAN,
}


def get(name, **kwargs):
    """Construct a model by registry name, e.g. `get("beta_vae", beta=4, latent_dim=10)`."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}.")
    return MODELS[name](**kwargs)


def load(path):
    """`keras.models.load_model` with clear errors for a missing, truncated or foreign file
    (Keras reports all of these as "File not found")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras archive: the file is truncated, corrupt, or not a "
                         "Keras model.")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        damaged = archive.testzip()
    if damaged is not None:
        raise ValueError(f"{path} is corrupt: member {damaged!r} fails its CRC check.")
    missing = {"config.json", "model.weights.h5"} - names
    if missing:
        raise ValueError(f"{path} is a zip file but not a Keras model (missing {sorted(missing)}).")
    try:
        with warnings.catch_warnings():
            # A published file holds no optimizer state on purpose (fine-tuning starts a fresh
            # optimizer); Keras warns about exactly that case, which is not a problem.
            warnings.filterwarnings("ignore", message=r"Skipping variable loading for optimizer "
                                    r".* the saved optimizer has 0 variables")
            return keras.models.load_model(path)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        # Keras names neither the file nor which part of it is wrong (e.g. an edited config.json).
        raise ValueError(f"{path} could not be loaded as a Keras model: {error}") from error


__all__ = [
    "DCIGN",
    "DIPVAEI",
    "DIPVAEII",
    "HSICVAE",
    "MODELS",
    "SCAN",
    "VAE",
    "VFAE",
    "AnnealedVAE",
    "BetaTCVAE",
    "BetaVAE",
    "BetaVAEDAE",
    "CascadeVAE",
    "CascadeVAEC",
    "DecompositionVAE",
    "DenoisingAutoencoder",
    "FactorVAE",
    "InfoGAN",
    "InfoVAE",
    "JointVAE",
    "check_images",
    "default_optimizer",
    "get",
    "load",
]
