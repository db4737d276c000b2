"""Pictures of a trained model: latent traversals, reconstructions, KL per dimension, what each
category of a discrete code draws, and densities over a 2-D latent space.

Functions return float arrays in [0, 1] of shape [H, W, C] (so TensorBoard can take them as they
are) and `save_png` writes them, with optional row labels, as an 8-bit PNG.
"""
import math

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from zoo import assignment, distributions


def kl_per_dimension(model, images):
    """Mean KL(q(z_j|x) ‖ N(0,1)) of each latent dimension over `images`, shape [d]."""
    posterior = model.encode(images)
    kl = distributions.kl_to_standard_normal(posterior["mean"], posterior["logvar"])
    return tf.reduce_mean(kl, axis=0).numpy()


def _tile(rows, pad=1):
    """rows: [R, N, H, W, C] → one image [R·(H+pad)+pad, N·(W+pad)+pad, C] on a grey grid."""
    r, n, h, w, c = rows.shape
    grid = np.full((r * (h + pad) + pad, n * (w + pad) + pad, c), 0.5, np.float32)
    for i in range(r):
        for j in range(n):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[top:top + h, left:left + w] = rows[i, j]
    return grid


def _traversals(model, image, values, dims=None):
    """Decoded traversals of one image, [len(dims), len(values), H, W, C]: row k sets latent
    `dims[k]` to each of `values` with the other latents at the posterior mean. dims defaults to
    all latents sorted by decreasing KL on this image (informative first). Returns (images, dims)."""
    image = np.asarray(image)[None]
    posterior = model.encode(image)
    mean = posterior["mean"].numpy()[0]
    if dims is None:
        kl = distributions.kl_to_standard_normal(posterior["mean"], posterior["logvar"])
        dims = np.argsort(-kl.numpy()[0])
    codes = np.repeat(mean[None, None], len(dims), 0).repeat(len(values), 1)  # [R, N, d]
    for row, dim in enumerate(dims):
        codes[row, :, dim] = values
    decoded = model.decode_mean(codes.reshape(-1, mean.shape[0])).numpy()
    return decoded.reshape((len(dims), len(values)) + decoded.shape[1:]), list(dims)


def traversal_grid(model, image, num_values=9, limit=2.0, dims=None):
    """Latent traversals of one image: row k varies latent `dims[k]` over
    linspace(−limit, limit, num_values) with the other latents at the posterior mean.

    dims defaults to all latents sorted by decreasing KL on this image (informative first).
    Returns (grid, dims).
    """
    values = np.linspace(-limit, limit, num_values, dtype=np.float32)
    decoded, dims = _traversals(model, image, values, dims)
    return _tile(decoded), dims


def save_traversal_gif(model, image, path, num_frames=24, limit=2.0, dims=None, scale=2,
                       frame_ms=120):
    """An animated GIF of one image's traversals: one panel per latent (sorted by decreasing KL,
    as in `traversal_grid`), each moving its latent from −limit to +limit and back while the
    others stay at the posterior mean. Returns the path."""
    half = np.linspace(-limit, limit, num_frames // 2 + 1, dtype=np.float32)
    values = np.concatenate([half, half[-2:0:-1]])  # there and back, no repeated ends
    decoded, _ = _traversals(model, image, values, dims)  # [D, F, H, W, C]
    frames = []
    for frame in np.swapaxes(decoded, 0, 1)[:, None]:  # each frame: one row of D panels
        pixels = (np.clip(_tile(frame), 0.0, 1.0) * 255).round().astype(np.uint8)
        picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        frames.append(picture.convert("RGB").resize(
            (picture.width * scale, picture.height * scale), Image.NEAREST))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return path


def reconstruction_grid(model, images):
    """Two rows: the images, and their reconstructions (likelihood mean at z = μ)."""
    images = np.asarray(images, np.float32)
    return _tile(np.stack([images, model(images).numpy()]))


def category_grid(model, images):
    """Row i: image i, then its decoding with the first discrete code set to each category
    k = 0 … S−1 in turn (continuous latents at the posterior mean, other codes as inferred).
    Shows what each category draws. Returns (grid, the category the model infers for each image)."""
    sizes = model.discrete_code_sizes
    if not sizes:
        raise ValueError(f"{type(model).__name__} has no discrete code.")
    images = np.asarray(images, np.float32)
    posterior = model.encode(images)
    mean, discrete = posterior["mean"].numpy(), posterior["discrete"].numpy()
    first = sizes[0]
    columns = []
    for k in range(first):
        codes = discrete.copy()
        codes[:, :first] = np.eye(first, dtype=codes.dtype)[k]
        columns.append(model.decode_mean(np.concatenate([mean, codes], axis=1)).numpy())
    return _tile(np.stack([images] + columns, axis=1)), posterior["category"].numpy()[:, 0]


def save_png(grid, path, row_labels=None, scale=2):
    """Write a [H, W, C] array in [0, 1] as a PNG, upscaled `scale`× with nearest neighbour,
    with one text label per row drawn in a left margin."""
    grid = np.clip(np.asarray(grid), 0.0, 1.0)
    pixels = (grid * 255).round().astype(np.uint8)
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    image = image.convert("RGB").resize((image.width * scale, image.height * scale),
                                        Image.NEAREST)
    if row_labels:
        margin = 8 * max(len(label) for label in row_labels) + 8
        canvas = Image.new("RGB", (image.width + margin, image.height), "white")
        canvas.paste(image, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_height = image.height / len(row_labels)
        for k, label in enumerate(row_labels):
            draw.text((4, int((k + 0.5) * row_height) - 5), label, fill="black")
        image = canvas
    image.save(path)
    return path


def save_image_rows(rows, path, row_labels=None, scale=2):
    """Images [R, N, H, W, C] in [0, 1] as a PNG grid, one labelled row per first axis."""
    return save_png(_tile(np.asarray(rows, np.float32)), path, row_labels, scale)


def save_traversals(model, image, path, **kwargs):
    """Traversal grid of one image as a PNG whose rows are labelled with latent index and KL."""
    grid, dims = traversal_grid(model, image, **kwargs)
    kl = kl_per_dimension(model, np.asarray(image)[None])
    return save_png(grid, path, row_labels=[f"z{d} KL {kl[d]:.2f}" for d in dims])


def save_category_picture(model, data, factor, path, rows_per_value=2, seed=0):
    """`category_grid` of `rows_per_value` random images of every value of `factor`,
    each row labelled "<factor>=<value> -> <inferred category>"."""
    factor = assignment.factor_index(data, factor)
    rng = np.random.default_rng(seed)
    factors = data.sample_factors(rows_per_value * data.factor_sizes[factor], rng)
    factors[:, factor] = np.repeat(np.arange(data.factor_sizes[factor]), rows_per_value)
    grid, inferred = category_grid(model, data.images_from_factors(factors, rng))
    name = data.factor_names[factor]
    labels = [f"{name}={value} -> {code}" for value, code in zip(factors[:, factor], inferred)]
    return save_png(grid, path, row_labels=labels)


# --------------------------------------------------------------------------------------------------
# Densities over a 2-D latent space (the pinwheel clustering experiment)
# --------------------------------------------------------------------------------------------------
def density_grid(size, extent=2.5):
    """The [size², 2] points at which a `density_figure` panel is drawn: a size × size grid over
    [−extent, extent]², row by row from the top (the largest z₂) as an image is."""
    axis = np.linspace(-extent, extent, size, dtype=np.float32)
    zx, zy = np.meshgrid(axis, axis[::-1])
    return np.stack([zx.ravel(), zy.ravel()], axis=1)


def _density_colours(density):
    """Density map [G, G] → RGB uint8 with a white → blue → dark-purple ramp (square-root scale)."""
    value = np.sqrt(density / max(float(density.max()), 1e-30))
    anchors = np.array([[255, 255, 255], [120, 170, 230], [40, 60, 170], [30, 10, 60]], float)
    position = value * (len(anchors) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(anchors) - 2)
    t = (position - low)[..., None]
    return ((1 - t) * anchors[low] + t * anchors[low + 1]).astype(np.uint8)


def density_figure(path, panels, points, labels, points_title="data (x)", extent=2.5, size=220):
    """One PNG of 2-D panels side by side, each `size` pixels square over [−extent, extent]²: the
    `points` [n, 2] coloured by their integer `labels` (titled `points_title`), then one panel per
    (title, density) of `panels`, the density given at the `density_grid` points (G² values)."""
    classes = [(214, 39, 40), (44, 160, 44), (31, 119, 180), (255, 127, 14)]
    title_height, margin = 18, 6
    tiles = []
    data_panel = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(data_panel)
    points = np.asarray(points)
    xs = (points[:, 0] + extent) / (2 * extent) * (size - 1)
    ys = (extent - points[:, 1]) / (2 * extent) * (size - 1)
    for x, y, label in zip(xs, ys, labels):
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=classes[int(label) % 4])
    tiles.append((points_title, data_panel))
    for title, density in panels:
        grid = math.isqrt(density.size)
        tile = Image.fromarray(_density_colours(density.reshape(grid, grid)))
        tiles.append((title, tile.resize((size, size), Image.BILINEAR)))
    canvas = Image.new("RGB", (len(tiles) * (size + margin) + margin,
                               size + title_height + 2 * margin), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (title, tile) in enumerate(tiles):
        left = margin + i * (size + margin)
        draw.text((left, margin), title, fill="black")
        canvas.paste(tile, (left, margin + title_height))
        draw.rectangle([left - 1, margin + title_height - 1, left + size,
                        margin + title_height + size], outline=(150, 150, 150))
    canvas.save(path)
    return path
