"""The zoo's standard β-VAE step in PyTorch, for `trainers.benchmark --against=pytorch`.

The same computation as `zoo.models.get("beta_vae")` on `conv64` (docs/methods.md): encoder four
4×4 stride-2 convolutions (32, 32, 64, 64 channels, ReLU; padding 1 is Keras' "same" for these
sizes), a 256-unit dense layer, a dense head to the posterior mean and log-variance; decoder dense
256 and 1024, reshape to 4×4×64, four 4×4 stride-2 transposed convolutions (64, 32, 32, 1);
Bernoulli likelihood with logits (cross-entropy summed over pixels), KL to N(0, I) summed over
latents, both averaged over the batch, loss = recon + β·KL; Adam(1e-4, ε 1e-8). It exists only to
time a step against ours in the same process, so it is built once per benchmark and never saved.
"""
from __future__ import annotations


def install_hint():
    return ("PyTorch is not installed: `pip install -e '.[bench]'` (CPU PyTorch 2.13) adds it; "
            "then rerun with --against=pytorch.")


def build_step(batch_size=64, latent_dim=10, beta=4.0, threads=None, seed=0):
    """A callable that runs one training step on a fixed batch of dSprites-like images and
    returns the loss (float). Raises ImportError with `install_hint()` without PyTorch."""
    try:
        import torch
        from torch import nn
    except ImportError as error:
        raise ImportError(install_hint()) from error
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)

    encoder = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 2 * latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
        nn.Unflatten(1, (64, 4, 4)),
        nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.ReLU(), nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1))
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-4, eps=1e-8)
    images = (torch.rand(batch_size, 1, 64, 64) > 0.9).float()
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def step():
        mean, logvar = encoder(images).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = decoder(z)
        recon = bce(logits, images).sum(dim=(1, 2, 3)).mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(dim=1).mean()
        loss = recon + beta * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    step.num_parameters = sum(p.numel() for p in parameters)
    return step
