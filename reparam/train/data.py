"""Datasets for the VAE experiments: static binarized MNIST from disk, and an embedded default.

Every loader returns images as ``uint8`` arrays of shape ``(N, D)`` with values in {0, 1}
(D = 784 for MNIST, 64 for the embedded digits), which is 4x smaller than float32 on the device;
the training step casts a batch to float where it is used.

The static binarization of Larochelle & Murray (2011) is the one the IWAE paper reports on. Its
canonical files are plain text ``.amat`` (one image per line, 784 space-separated 0/1 values);
this module reads them, or their gzipped ``.amat.gz`` form, from a directory. The train and
validation files ship with the repository (``data/binarized_mnist``); the test file does not,
and a user who has it passes its directory. :func:`download_binarized_mnist` fetches the
canonical files and checks their SHA-1; nothing in the tests calls it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")
MNIST_DIM = 784
MNIST_IMAGE_SHAPE = (28, 28)

# Canonical location of the static binarized MNIST (Larochelle & Murray, 2011).
BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{split}.amat"
# SHA-1 of the uncompressed .amat files. train and valid were computed from the files shipped in
# data/binarized_mnist; test is the value published with other loaders of the same files (their
# train checksum matches ours, which is why we trust it).
BINARIZED_MNIST_SHA1 = {
    "train": "cf70514ec5f481e54ad3eb0e6c03c83326ff96f8",
    "valid": "13418487742e6ea6d48db7b5187353a20b1b1f8c",
    "test": "ca70bd7775e182596dec148d4dc1bc6bd6c4c5f4",
}
BINARIZED_MNIST_SIZE = {"train": 50_000, "valid": 10_000, "test": 10_000}

# The repository's copy of the train and validation files (the test file is not shipped).
DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[2] / "data" / "binarized_mnist"


class DataError(ValueError):
    """A data file exists but cannot be parsed (names the file and the line)."""


@dataclass(frozen=True)
class Dataset:
    """Binary images, flattened.

    Attributes:
      train, valid: uint8 arrays of shape (N, D) with values in {0, 1}.
      test: the same, or None when the split is not available.
      image_shape: (H, W) with H·W = D, for plots.
      name: a short name for logs ("mnist", "digits").
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray | None
    image_shape: tuple[int, int]
    name: str

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"reparam.data: `split` must be one of {SPLITS}, got {name!r}")
        array = getattr(self, name)
        if array is None:
            raise FileNotFoundError(
                f"reparam.data: the {name!r} split of {self.name!r} is not available"
            )
        return array


def _missing_file_message(split: str, tried: list[Path]) -> str:
    url = BINARIZED_MNIST_URL.format(split=split)
    tried_text = ", ".join(str(p) for p in tried)
    return (
        f"binarized MNIST {split!r} split not found; tried {tried_text}. "
        f"Get binarized_mnist_{split}.amat from {url} (or call "
        f"reparam.data.download_binarized_mnist(data_dir, splits=({split!r},))) and put it, "
        f"optionally gzipped, in the directory passed as `data_dir`."
    )


def find_amat(data_dir: str | os.PathLike, split: str) -> Path:
    """Path of ``binarized_mnist_<split>.amat`` or ``.amat.gz`` in `data_dir`.

    Raises:
      FileNotFoundError: naming every path tried and where to get the file.
    """
    if split not in SPLITS:
        raise ValueError(f"reparam.data.find_amat: `split` must be one of {SPLITS}, got {split!r}")
    base = Path(data_dir)
    tried = [base / f"binarized_mnist_{split}.amat{ext}" for ext in ("", ".gz")]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(_missing_file_message(split, tried))


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: not a readable gzip file ({error})") from error
    return path.read_bytes()


def _parse_lines_slowly(raw: bytes, path: Path, dim: int) -> np.ndarray:
    """Line-by-line parse; used when the fixed-width fast path does not apply. Names bad lines."""
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        tokens = line.split()
        if not tokens:  # blank lines (e.g. a trailing one) carry no image
            continue
        if len(tokens) != dim:
            raise DataError(
                f"{path}, line {number}: expected {dim} values (0 or 1), got {len(tokens)}"
            )
        try:
            values = np.array([float(t) for t in tokens])
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            bad_text = bad.decode(errors="replace")
            raise DataError(
                f"{path}, line {number}: expected values 0 or 1, got {bad_text!r}"
            ) from None
        if not np.all((values == 0) | (values == 1)):
            bad = values[(values != 0) & (values != 1)][0]
            raise DataError(f"{path}, line {number}: expected values 0 or 1, got {float(bad)!r}")
        rows.append(values.astype(np.uint8))
    if not rows:
        raise DataError(f"{path}: no images in file")
    return np.stack(rows)


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_amat(path: str | os.PathLike, dim: int = MNIST_DIM) -> np.ndarray:
    """Read an ``.amat`` / ``.amat.gz`` file of binary images.

    Args:
      path: the file.
      dim: values per line (784 for MNIST).

    Returns:
      uint8 array of shape (N, dim) with values in {0, 1}.

    Raises:
      DataError: a malformed row, naming the file and the (1-based) line.
    """
    path = Path(path)
    raw = _read_bytes(path)
    # Fast path: the canonical files are fixed-width, "v v ... v\n" with one-byte values, so a
    # reshape checks and parses 50 000 lines in milliseconds instead of seconds.
    width = 2 * dim
    if raw and len(raw) % width == 0:
        table = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
        separators_ok = np.all(table[:, 1:-1:2] == ord(" ")) and np.all(table[:, -1] == ord("\n"))
        values = table[:, 0::2]
        if separators_ok and np.all((values == ord("0")) | (values == ord("1"))):
            return (values - ord("0")).astype(np.uint8)
    return _parse_lines_slowly(raw, path, dim)


def load_binarized_mnist(
    data_dir: str | os.PathLike = DEFAULT_MNIST_DIR, splits: tuple[str, ...] = ("train", "valid")
) -> dict[str, np.ndarray]:
    """Load splits of the static binarized MNIST from `data_dir`.

    Returns:
      {split: uint8 array (N, 784)}.

    Raises:
      FileNotFoundError: a split's file is missing (names the paths tried and the URL).
      DataError: a malformed row (names file and line).
    """
    return {split: parse_amat(find_amat(data_dir, split)) for split in splits}


def mnist(data_dir: str | os.PathLike | None = None, require_test: bool = False) -> Dataset:
    """Static binarized MNIST; the test split is loaded when its file is in `data_dir`."""
    data_dir = DEFAULT_MNIST_DIR if data_dir is None else Path(data_dir)
    arrays = load_binarized_mnist(data_dir, ("train", "valid"))
    try:
        test = parse_amat(find_amat(data_dir, "test"))
    except FileNotFoundError:
        if require_test:
            raise
        test = None
    return Dataset(arrays["train"], arrays["valid"], test, MNIST_IMAGE_SHAPE, "mnist")


def digits(threshold: float = 8.0, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits, binarized (pixel > `threshold` of 16), needing no file.

    1797 images split 1297 / 250 / 250 (train / valid / test) by a fixed permutation.
    """
    from sklearn.datasets import load_digits  # local import: sklearn is slow to import

    images = load_digits().data  # (1797, 64), values 0..16
    binary = (images > threshold).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(binary))
    binary = binary[order]
    return Dataset(binary[:1297], binary[1297:1547], binary[1547:], (8, 8), "digits")


def load(
    name: str, data_dir: str | os.PathLike | None = None, require_test: bool = False
) -> Dataset:
    """A dataset by name: "digits" (embedded) or "mnist" (files in `data_dir`).

    With require_test=True a missing MNIST test file is an error naming the paths tried.
    """
    if name == "digits":
        return digits()
    if name == "mnist":
        return mnist(data_dir, require_test=require_test)
    raise ValueError(f"reparam.data.load: `name` must be 'digits' or 'mnist', got {name!r}")


def download_binarized_mnist(
    data_dir: str | os.PathLike,
    splits: tuple[str, ...] = SPLITS,
    *,
    compress: bool = True,
) -> list[Path]:
    """Download the canonical static binarized MNIST files and verify their SHA-1.

    Needs network access (tests never call this). Writes ``binarized_mnist_<split>.amat.gz``
    (or ``.amat`` with compress=False) into `data_dir`; an existing file is kept.

    Raises:
      DataError: a downloaded file's checksum does not match (the file is removed).
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        target = data_dir / f"binarized_mnist_{split}.amat{'.gz' if compress else ''}"
        if target.exists():
            written.append(target)
            continue
        url = BINARIZED_MNIST_URL.format(split=split)
        partial = target.with_name(target.name + ".part")
        with urllib.request.urlopen(url) as response:
            raw = response.read()
        digest = hashlib.sha1(raw).hexdigest()
        if digest != BINARIZED_MNIST_SHA1[split]:
            raise DataError(
                f"{url}: SHA-1 {digest} does not match the expected {BINARIZED_MNIST_SHA1[split]}"
            )
        # Write then rename, so an interrupted download never leaves a truncated file behind.
        if compress:
            with gzip.open(partial, "wb") as f:
                f.write(raw)
        else:
            partial.write_bytes(raw)
        shutil.move(partial, target)
        written.append(target)
    return written


__all__ = [
    "BINARIZED_MNIST_SHA1",
    "BINARIZED_MNIST_SIZE",
    "BINARIZED_MNIST_URL",
    "DEFAULT_MNIST_DIR",
    "MNIST_DIM",
    "MNIST_IMAGE_SHAPE",
    "SPLITS",
    "DataError",
    "Dataset",
    "digits",
    "download_binarized_mnist",
    "find_amat",
    "load",
    "load_binarized_mnist",
    "mnist",
    "parse_amat",
]
