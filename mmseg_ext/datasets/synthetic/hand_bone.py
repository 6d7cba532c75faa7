"""Synthetic hand-bone X-rays in the competition's exact file layout.

Layout written under ``root`` (docs/FORMATS.md section 1)::

    train/DCM/ID001/image1661130012345_R.png        (H, W) uint8 grey PNG
    train/outputs_json/ID001/image1661130012345_R.json
    test/DCM/ID009/image1661138012345.png           (no JSON, no _R/_L)

Each image is an X-ray-like picture of one hand: dark background, a soft-tissue
silhouette and 29 bright polygon "bones" (finger chains, the carpal cluster, radius and
ulna) whose outlines are exactly the annotated polygons. To be learnable by a small CNN
in minutes, every class has a distinctive place in the hand and its own bone density
(grey level); bones are additive like X-ray attenuation, so where two bones overlap
(metacarpal bases over the distal carpals, pisiform over triquetrum, some finger
joints) the pixel is brighter and belongs to both classes. Patients differ by a random
scale/rotation/shift of the whole hand and small per-bone jitter; ``_L`` images are
mirrored right hands. Everything is a pure function of the seed: patient ``i``'s
images do not depend on how many patients are generated.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ...io.hand_bone_json import hand_bone_document, write_hand_bone_json
from ...io.image_write import write_image
from ...utils.class_names import HAND_BONE_CLASSES
from ...utils.errors import InvalidArgumentError

#: First timestamp used in the image names (``image<13 digits>[_R|_L].png``).
TIMESTAMP_BASE = 1661130000000

# Bones of a canonical right hand in a unit square (u = x / W, v = y / H), as
# (class name, proximal end (u, v), distal end (u, v), half-width). Fingers run from
# the tip down (finger-1 = thumb distal phalanx ... finger-3 = thumb metacarpal,
# finger-4..7 = index finger, ..., finger-16..19 = little finger).
_FINGER_BASES = [(0.300, 0.625), (0.385, 0.590), (0.495, 0.578), (0.605, 0.590),
                 (0.700, 0.615)]
_FINGER_TIPS = [(0.055, 0.330), (0.215, 0.035), (0.470, 0.012), (0.730, 0.045),
                (0.935, 0.170)]
# Fraction of the base->tip length per bone (metacarpal first) and half-width.
_THUMB_SEGMENTS = [(0.42, 0.046), (0.32, 0.042), (0.26, 0.038)]
_FINGER_SEGMENTS = [(0.36, 0.038), (0.27, 0.035), (0.19, 0.031), (0.18, 0.028)]
_CARPALS = {  # centre (u, v), radii (ru, rv), rotation in degrees
    'Trapezium': ((0.305, 0.680), (0.056, 0.044), 20),
    'Trapezoid': ((0.395, 0.655), (0.042, 0.037), 0),
    'Capitate': ((0.495, 0.680), (0.050, 0.062), 0),
    'Hamate': ((0.605, 0.668), (0.052, 0.050), -15),
    'Scaphoid': ((0.360, 0.772), (0.065, 0.042), 35),
    'Lunate': ((0.485, 0.790), (0.050, 0.042), 0),
    'Triquetrum': ((0.600, 0.772), (0.050, 0.040), -10),
    'Pisiform': ((0.645, 0.800), (0.035, 0.033), 0),
}
_LONG_BONES = {  # proximal end, distal end, half-width
    'Radius': ((0.420, 1.060), (0.420, 0.850), 0.090),
    'Ulna': ((0.625, 1.060), (0.620, 0.855), 0.055),
}
_JOINT_GAP = 0.012  # gap between consecutive finger bones (fraction of unit square)
_OVERLAP_METACARPALS = ('finger-7', 'finger-15')  # heads stretched over the phalanx


def _densities() -> Dict[str, float]:
    """A distinct grey level per class, neighbours far apart: 90 .. 200 (of 255)."""
    n = len(HAND_BONE_CLASSES)
    order = [(k * 11) % n for k in range(n)]  # 11 is coprime with 29: a permutation
    return {name: 90.0 + 110.0 * order[k] / (n - 1)
            for k, name in enumerate(HAND_BONE_CLASSES)}


DENSITY = _densities()


def _capsule(p0: np.ndarray, p1: np.ndarray, half_width: float, n: int) -> np.ndarray:
    """Outline of a bone from ``p0`` to ``p1``: waisted shaft, round wide ends."""
    axis = p1 - p0
    length = float(np.hypot(*axis)) or 1e-6
    d = axis / length
    normal = np.array([-d[1], d[0]])
    t = np.linspace(0.0, 1.0, n)
    profile = half_width * (0.78 + 0.22 * (2 * t - 1) ** 2)  # wider at both ends
    w = profile * np.sqrt(1.0 - np.abs(2 * t - 1) ** 6)  # rounded ends
    left = p0 + np.outer(t * length, d) + np.outer(w, normal)
    right = p0 + np.outer(t * length, d) - np.outer(w, normal)
    return np.concatenate([left, right[::-1]])


def _ellipse(centre, radii, angle_deg: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.stack([radii[0] * np.cos(a), radii[1] * np.sin(a)], 1)
    r = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return pts @ rot.T + np.asarray(centre)


def canonical_hand(rng: np.random.Generator, vertices: int = 24) -> List[Tuple[str, np.ndarray]]:
    """The 29 bone outlines of one jittered right hand in the unit square.

    Returns ``(class name, (N, 2) float (u, v) points)`` in class order.
    """
    bones: Dict[str, np.ndarray] = {}
    k = 1
    for finger, (base, tip) in enumerate(zip(_FINGER_BASES, _FINGER_TIPS)):
        base = np.asarray(base) + rng.normal(0, 0.004, 2)
        tip = np.asarray(tip) + rng.normal(0, 0.008, 2)
        segments = _THUMB_SEGMENTS if finger == 0 else _FINGER_SEGMENTS
        fractions = np.array([s[0] for s in segments]) * rng.uniform(0.96, 1.04, len(segments))
        fractions /= fractions.sum()
        axis = tip - base
        total = float(np.hypot(*axis))
        d = axis / total
        names = [f'finger-{k + i}' for i in range(len(segments))][::-1]  # base -> tip
        start = 0.0
        for name, frac, (_, hw) in zip(names, fractions, segments):
            end = start + frac * total
            gap = _JOINT_GAP / 2
            p0 = base + d * (start + (gap if start > 0 else 0))
            p1 = base + d * (end - gap)
            bones[name] = _capsule(p0, p1, hw * rng.uniform(0.94, 1.06), vertices)
            start = end
        k += len(segments)
    for name in _OVERLAP_METACARPALS:  # metacarpal head over the proximal phalanx
        pts = bones[name]
        centre = pts.mean(0)
        top = pts[:, 1] < centre[1]
        pts[top, 1] -= 0.02
    for name, (centre, radii, angle) in _CARPALS.items():
        c = np.asarray(centre) + rng.normal(0, 0.003, 2)
        r = np.asarray(radii) * rng.uniform(0.94, 1.06, 2)
        bones[name] = _ellipse(c, r, angle + rng.normal(0, 4), vertices)
    for name, (p0, p1, hw) in _LONG_BONES.items():
        bones[name] = _capsule(np.asarray(p0), np.asarray(p1) + rng.normal(0, 0.004, 2),
                               hw * rng.uniform(0.95, 1.05), vertices)
    return [(name, bones[name]) for name in HAND_BONE_CLASSES]


def _patient_pose(rng: np.random.Generator) -> Tuple[float, float, np.ndarray]:
    scale = rng.uniform(0.9, 1.04)
    angle = rng.uniform(-8.0, 8.0)
    shift = rng.uniform(-0.03, 0.03, 2)
    return scale, angle, shift


def _apply_pose(pts: np.ndarray, scale: float, angle: float, shift: np.ndarray,
                mirror: bool) -> np.ndarray:
    centre = np.array([0.5, 0.6])
    r = np.deg2rad(angle)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    out = (pts - centre) @ rot.T * scale + centre + shift
    if mirror:
        out[:, 0] = 1.0 - out[:, 0]
    return out


def render_hand(size: Tuple[int, int], rng: np.random.Generator,
                pose: Optional[Tuple[float, float, np.ndarray]] = None,
                left: bool = False, vertices: int = 24
                ) -> Tuple[np.ndarray, List[Tuple[str, np.ndarray]]]:
    """Draw one synthetic hand X-ray.

    Args:
        size: ``(H, W)`` in pixels (any aspect ratio).
        rng: random generator (bone jitter, texture, noise).
        pose: ``(scale, angle_deg, (du, dv))`` of the whole hand; None draws one.
        left: mirror the hand horizontally (a left hand).
        vertices: points per side of a finger bone / per carpal outline.

    Returns:
        ``(image, polygons)``: ``(H, W)`` uint8 grey image and, in class order, 29
        ``(label, (N, 2) int32 (x, y) points)`` clipped to the image; the bright bone
        areas are exactly ``cv2.fillPoly`` of these points.
    """
    height, width = int(size[0]), int(size[1])
    pose = pose if pose is not None else _patient_pose(rng)
    jitter = (pose[0] * rng.uniform(0.99, 1.01), pose[1] + rng.normal(0, 1.5),
              np.asarray(pose[2]) + rng.normal(0, 0.005, 2))
    frame = np.array([width - 1, height - 1], np.float64)
    polygons = []
    for name, uv in canonical_hand(rng, vertices):
        xy = _apply_pose(uv, *jitter, mirror=left) * frame
        xy = np.clip(np.rint(xy), 0, frame).astype(np.int32)
        polygons.append((name, xy))

    # soft tissue: the bones' hull regions, widened and blurred
    tissue = np.zeros((height, width), np.uint8)
    widen = max(1, int(round(0.025 * min(height, width))))
    for _, xy in polygons:
        cv2.fillPoly(tissue, [cv2.convexHull(xy)], 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * widen + 1, 2 * widen + 1))
    tissue = cv2.dilate(tissue, kernel).astype(np.float32)
    tissue = cv2.GaussianBlur(tissue, (0, 0), sigmaX=max(widen / 2, 0.5))

    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    img = 18.0 + 10.0 * yy + 30.0 * tissue  # background gradient + soft tissue
    # low-frequency "trabecular" texture shared by all bones
    small = rng.normal(0.0, 1.0, (max(2, height // 16), max(2, width // 16))).astype(np.float32)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    rim_px = max(1, int(round(0.006 * min(height, width))))
    for name, xy in polygons:
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0) + 1
        box = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(box, [xy - np.array([x0, y0], np.int32)], 1)
        inner = cv2.erode(box, np.ones((2 * rim_px + 1,) * 2, np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=0)
        level = box * DENSITY[name] * 0.8 + (box - inner) * 28.0  # bright cortex rim
        level = level * (1.0 + 0.06 * texture[y0:y1, x0:x1] * box)
        img[y0:y1, x0:x1] += level.astype(np.float32)
    img += rng.normal(0.0, 3.0, (height, width)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), polygons


def annotation_json(polygons: List[Tuple[str, np.ndarray]], filename: str, patient: str,
                    size: Tuple[int, int], rng: np.random.Generator) -> dict:
    """The annotation file content for one image (random ids from ``rng``)."""
    anns = [(label, xy.astype(int), rng.bytes(16).hex()) for label, xy in polygons]
    return hand_bone_document(anns, filename, f'/{patient}', size, rng.bytes(8).hex(),
                              'synthetic')


@dataclass
class SyntheticHandBone:
    """What :func:`make_handbone_dataset` wrote."""

    root: str
    train_images: int
    test_images: int
    annotations: int
    train_patients: int
    test_patients: int


def _write_png(path: str, img: np.ndarray) -> None:
    write_image(path, img)


def handbone_plan(num_patients: int, images_per_patient: int, num_test_patients: int,
                  seed: int) -> List[Tuple[str, str, int, int, str]]:
    """The images to generate: ``(split, patient, patient index, image index, stem)``."""
    plan = []
    for split, first, count in (('train', 0, num_patients),
                                ('test', num_patients, num_test_patients)):
        for p in range(first, first + count):
            patient = f'ID{p + 1:03d}'
            for i in range(images_per_patient):
                stamp = TIMESTAMP_BASE + p * 1_000_000 + i * 10_000 + \
                    int(np.random.default_rng([seed, p, i, 7]).integers(0, 10_000))
                side = '' if split == 'test' else ('_R' if i % 2 == 0 else '_L')
                plan.append((split, patient, p, i, f'image{stamp}{side}'))
    return plan


def make_handbone_dataset(root: str, num_patients: int = 8, images_per_patient: int = 2,
                          size: Tuple[int, int] = (256, 256), num_test_patients: int = 1,
                          seed: int = 0, progress: bool = False,
                          vertices: int = 24) -> SyntheticHandBone:
    """Write a synthetic hand-bone data set under ``root`` (see the module doc).

    Args:
        root: output folder (created; existing files with the same names are rewritten
            identically: the output is a pure function of the arguments).
        num_patients: training patients ``ID001..``; each gets ``images_per_patient``
            images named ``image<stamp>_R.png`` / ``_L.png`` alternately.
        images_per_patient: images per patient (2 = a right and a left hand).
        size: ``(H, W)`` in pixels; non-square sizes work.
        num_test_patients: patients after the training ones, written to ``test/DCM``
            without JSON and without ``_R``/``_L``.
        seed: random seed.
        progress: show a tqdm progress bar.
        vertices: points per bone side (2 * vertices points per finger bone).

    Returns:
        a :class:`SyntheticHandBone` with the counts.
    """
    if num_patients < 0 or num_test_patients < 0 or images_per_patient < 1:
        raise InvalidArgumentError('num_patients', 'need num_patients >= 0, '
                                   'num_test_patients >= 0 and images_per_patient >= 1')
    if num_patients + num_test_patients == 0:
        raise InvalidArgumentError('num_patients', 'no patients to make (training and '
                                   'test patients are both 0)')
    from tqdm import tqdm

    plan = handbone_plan(num_patients, images_per_patient, num_test_patients, seed)
    annotations = 0
    for split, patient, p, i, stem in tqdm(plan, disable=not progress, unit='img',
                                           desc='hand-bone'):
        pose = _patient_pose(np.random.default_rng([seed, p, 1]))
        rng = np.random.default_rng([seed, p, i, 2])
        img, polygons = render_hand(size, rng, pose=pose, left=(i % 2 == 1),
                                    vertices=vertices)
        img_dir = osp.join(root, split, 'DCM', patient)
        os.makedirs(img_dir, exist_ok=True)
        _write_png(osp.join(img_dir, stem + '.png'), img)
        if split == 'train':
            content = annotation_json(polygons, stem + '.png', patient, size, rng)
            write_hand_bone_json(osp.join(root, split, 'outputs_json', patient,
                                          stem + '.json'), content)
            annotations += len(content['annotations'])
    train_images = num_patients * images_per_patient
    return SyntheticHandBone(root=root, train_images=train_images,
                             test_images=num_test_patients * images_per_patient,
                             annotations=annotations, train_patients=num_patients,
                             test_patients=num_test_patients)
