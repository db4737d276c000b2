"""Fit the procedural dSprites geometry to the real frames of the data set's animation.

    python tools/fit_dsprites.py --gif=../shared/data/dsprites.gif

Reads the 320 real frames (``zoo.data.dsprites_reference``: each frame's factors
come from the documented frame order), maps every pixel centre of every frame
into its sprite's frame (position grid 16 + 32 k / 31 px, rotation by the
orientation, scale divided out), and fits, for point sampling (a pixel is on
when its centre is inside):

* the square's half-side: the interval of values that reproduce every square
  frame exactly;
* the ellipse's semi-axes: a grid search for the values that reproduce every
  ellipse frame;
* the heart's outline: a radius per angle, linearly interpolated (mirror
  symmetric), fitted by exact coordinate descent on the number of
  misclassified pixel centres; also fitted without the position sweeps and
  scored on them (held out).

It also compares point sampling with coverage thresholds (a pixel is on when
at least t of it is covered, from 4 x 4 sub-samples, each rule with its own
best square size), compares the position grid with the v1 one, and finally
scores the package's renderers with ``zoo.data.dsprites_reference.fidelity``.
The printed constants are what ``zoo/data/dsprites_render.py`` holds as v2.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from zoo import data
from zoo.data import dsprites_reference
from zoo.data.dsprites_render import ANGLES, SCALES

SQUARE, ELLIPSE, HEART = range(3)


def sprite_coordinates(factors, first_centre=16.0, step=32.0 / 31.0, subsamples=1):
    """Pixel (sub-)sample positions in each frame's sprite frame, float64 [n, 64*s, 64*s] x 2."""
    _, scale, orientation, pos_x, pos_y = factors.T
    offsets = (np.arange(64 * subsamples) + 0.5) / subsamples
    centre_x = first_centre + step * pos_x
    centre_y = first_centre + step * pos_y
    dx = offsets[None, None, :] - centre_x[:, None, None]
    dy = centre_y[:, None, None] - offsets[None, :, None]
    angle = ANGLES[orientation][:, None, None]
    cos, sin = np.cos(angle), np.sin(angle)
    size = SCALES[scale][:, None, None]
    return (cos * dx + sin * dy) / size, (cos * dy - sin * dx) / size


def iou(a, b):
    return dsprites_reference.intersection_over_union(a, b)


def fit_square(x, y, on):
    """The interval of half-sides that reproduce every frame under point sampling."""
    chebyshev = np.maximum(np.abs(x), np.abs(y))
    return chebyshev[on].max(), chebyshev[~on].min()


def fit_ellipse(x, y, on, step=0.002):
    """Semi-axes with the fewest misclassified pixel centres (a coarse, then a fine grid)."""
    near = (np.abs(x) < 16) & (np.abs(y) < 10)
    x2, y2, on = x[near] ** 2, y[near] ** 2, on[near]

    def search(a_values, b_values):
        errors = [
            (int(((x2 / a**2 + y2 / b**2 <= 1) != on).sum()), a, b)
            for a in a_values
            for b in b_values
        ]
        best = min(errors)[0]
        winners = np.array([(a, b) for e, a, b in errors if e == best])
        return best, winners.mean(axis=0)

    _, (a, b) = search(np.arange(12.0, 14.0, 0.02), np.arange(6.5, 8.0, 0.02))
    fine = np.arange(-0.06, 0.06, step)
    return search(a + fine, b + fine)


def _polar(x, y):
    return np.arctan2(y, np.abs(x)), np.hypot(x, y)


def heart_radius(radii, x, y):
    """Interpolated outline radius at each point's angle (mirror-symmetric table)."""
    intervals = len(radii) - 1
    phi, _ = _polar(x, y)
    position = (phi + math.pi / 2) * intervals / math.pi
    lower = np.clip(np.floor(position), 0, intervals - 1).astype(int)
    weight = position - lower
    return radii[lower] * (1 - weight) + radii[lower + 1] * weight


def fit_heart(x, y, on, intervals=36, sweeps=6):
    """Radii at intervals+1 angles from -90 to 90 degrees, by exact coordinate descent.

    For one radius with its neighbours fixed, every pixel centre in the two
    intervals it touches puts a threshold on it (inside: radius >= t, outside:
    radius < t); the best radius is found by sorting those thresholds.
    """
    near = x**2 + y**2 < 14**2
    x, y, on = x[near], y[near], on[near]
    phi, r = _polar(x, y)
    position = (phi + math.pi / 2) * intervals / math.pi
    lower = np.clip(np.floor(position), 0, intervals - 1).astype(int)
    weight = position - lower
    radii = np.full(intervals + 1, 8.0)
    for _ in range(sweeps):
        for k in range(intervals + 1):
            left, right = lower == k, lower == k - 1  # intervals [k, k+1] and [k-1, k]
            own = np.concatenate([1 - weight[left], weight[right]])
            other = np.concatenate([
                radii[min(k + 1, intervals)] * weight[left],
                radii[max(k - 1, 0)] * (1 - weight[right]),
            ])
            radius = np.concatenate([r[left], r[right]])
            inside = np.concatenate([on[left], on[right]])
            usable = own > 1e-3
            threshold = (radius[usable] - other[usable]) / own[usable]
            inside = inside[usable]
            order = np.argsort(threshold)
            threshold, inside = threshold[order], inside[order]
            # Radius just above the j-th smallest threshold: the j points below
            # it are called inside, the rest outside.
            errors = np.concatenate([[0], np.cumsum(~inside)]) + (
                inside.sum() - np.concatenate([[0], np.cumsum(inside)])
            )
            j = int(np.argmin(errors))
            lo = threshold[j - 1] if j > 0 else threshold[0] - 1
            hi = threshold[j] if j < len(threshold) else threshold[-1] + 1
            radii[k] = (lo + hi) / 2
    errors = int(((r <= heart_radius(radii, x, y)) != on).sum())
    return radii, errors


def coverage_rule_iou(frames, factors, threshold, half_sides, subsamples=4):
    """Best mean IoU over square frames for 'on when coverage >= threshold'."""
    x, y = sprite_coordinates(factors, subsamples=subsamples)
    chebyshev = np.maximum(np.abs(x), np.abs(y))
    best = (0.0, None)
    for h in half_sides:
        covered = (chebyshev <= h).reshape(len(factors), 64, subsamples, 64, subsamples)
        on = covered.mean(axis=(2, 4)) >= threshold
        best = max(best, (float(iou(on, frames).mean()), float(h)))
    return best


def save_renderer_picture(path):
    """Rows: each shape from v1, then v2; columns: orientations 0, 5, 10, 15, 20 at scale 1,
    then orientation 0 at scales 0.5 and 0.8 (posX = posY = 15)."""
    from zoo.visualize import save_image_rows

    columns = [(5, o) for o in (0, 5, 10, 15, 20)] + [(0, 0), (3, 0)]
    rows, labels = [], []
    for shape, name in enumerate(("square", "ellipse", "heart")):
        for source, version in (("procedural_v1", "v1"), ("procedural", "v2")):
            factors = np.array([[shape, scale, o, 15, 15] for scale, o in columns])
            rows.append(data.get("dsprites", source=source).images_from_factors(factors))
            labels.append(f"{version} {name}")
    return save_image_rows(np.stack(rows), path, row_labels=labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gif", default="../shared/data/dsprites.gif",
                        help="the dSprites repository's dsprites.gif")
    parser.add_argument("--heart_intervals", type=int, default=36,
                        help="angle intervals of the heart outline over 180 degrees")
    parser.add_argument("--picture", default=None,
                        help="only draw both renderers' sprites side by side into this PNG "
                        "(needs no GIF)")
    args = parser.parse_args()
    if args.picture:
        print(f"wrote {save_renderer_picture(args.picture)}")
        return

    frames = dsprites_reference.read_reference_frames(args.gif)
    factors = dsprites_reference.reference_frame_factors()
    x, y = sprite_coordinates(factors)
    of = {s: factors[:, 0] == s for s in range(3)}

    print("Position grid (heart posX / posY sweeps): bounding-box centre vs the grid")
    sweep = of[HEART] & ((factors[:, 3] > 0) | (factors[:, 4] > 0))
    rows, cols = frames.any(axis=2), frames.any(axis=1)
    first = np.flatnonzero(of[HEART])[0]
    for name, axis, lines in (("posX", 3, cols), ("posY", 4, rows)):
        extent = np.array([(np.flatnonzero(v)[0] + np.flatnonzero(v)[-1] + 1) / 2 for v in lines])
        shift = extent[sweep] - extent[first]
        for grid, step in (("v2: 16 + 32 k / 31", 32 / 31), ("v1: 16.5 + k", 1.0)):
            error = np.abs(shift - step * factors[sweep, axis]).max()
            print(f"  {name} {grid:<20} max |box centre - grid| = {error:.2f} px")

    low, high = fit_square(x[of[SQUARE]], y[of[SQUARE]], frames[of[SQUARE]])
    print(f"\nSquare half-side reproducing all {of[SQUARE].sum()} frames: ({low:.4f}, {high:.4f})")

    print("Rasterisation rule on the square frames (each rule with its best half-side):")
    half_sides = np.arange(9.0, 10.6, 0.025)
    for threshold in (0.25, 0.5, 0.75):
        score, h = coverage_rule_iou(frames[of[SQUARE]], factors[of[SQUARE]], threshold, half_sides)
        print(f"  coverage >= {threshold:.2f}: mean IoU {score:.4f} (half-side {h:.3f})")
    point = (np.maximum(np.abs(x), np.abs(y)) <= (low + high) / 2)[of[SQUARE]]
    print(f"  pixel-centre sampling: mean IoU {iou(point, frames[of[SQUARE]]).mean():.4f}")

    errors, (a, b) = fit_ellipse(x[of[ELLIPSE]], y[of[ELLIPSE]], frames[of[ELLIPSE]])
    print(f"\nEllipse semi-axes ({a:.3f}, {b:.3f}): {errors} misclassified pixel centres")

    hx, hy, hon = x[of[HEART]], y[of[HEART]], frames[of[HEART]]
    radii, errors = fit_heart(hx, hy, hon, args.heart_intervals)
    fitted = x[of[HEART]] ** 2 + y[of[HEART]] ** 2 <= heart_radius(radii, hx, hy) ** 2
    scores = iou(fitted, hon)
    print(f"Heart outline ({args.heart_intervals} intervals): {errors} misclassified pixel "
          f"centres of {hon.size}; mean IoU {scores.mean():.4f}, worst frame {scores.min():.4f}")
    held_out = sweep[of[HEART]]
    radii_cv, _ = fit_heart(hx[~held_out], hy[~held_out], hon[~held_out], args.heart_intervals)
    cv = hx[held_out] ** 2 + hy[held_out] ** 2 <= heart_radius(radii_cv, hx[held_out], hy[held_out]) ** 2
    print(f"  fitted without the position sweeps, on them: mean IoU "
          f"{iou(cv, hon[held_out]).mean():.4f}")

    print("\nConstants for zoo/data/dsprites_render.py (v2):")
    print(f"V2_SQUARE_HALF_SIDE = {(low + high) / 2:.3f}")
    print(f"V2_ELLIPSE_SEMI_AXES = ({a:.3f}, {b:.3f})")
    print("V2_HEART_RADII = (" + ", ".join(f"{v:.4f}" for v in radii) + ",)")

    print("\nThe package's renderers against the real frames (per-frame IoU):")
    for source in ("procedural_v1", "procedural"):
        report = dsprites_reference.fidelity(data.get("dsprites", source=source), args.gif)
        shapes = ", ".join(f"{n} {v['mean_iou']:.4f} (min {v['min_iou']:.4f})"
                           for n, v in report["per_shape"].items())
        print(f"  {source:<14} mean {report['mean_iou']:.4f}, min {report['min_iou']:.4f}; {shapes}")


if __name__ == "__main__":
    main()
