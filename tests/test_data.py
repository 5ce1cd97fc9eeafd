"""reparam.data: the .amat parser, its error messages, the shipped MNIST files, the digits."""

from __future__ import annotations

import gzip
import hashlib
import io

import numpy as np
import pytest

from reparam.train import data


def _write(path, text: str, gz: bool = False):
    raw = text.encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def test_digits_are_binary_and_split_deterministically():
    a, b = data.digits(), data.digits()
    assert a.train.shape == (1297, 64) and a.valid.shape == (250, 64) and a.test.shape == (250, 64)
    assert a.train.dtype == np.uint8 and set(np.unique(a.train)) == {0, 1}
    assert a.image_shape == (8, 8) and a.dim == 64
    np.testing.assert_array_equal(a.train, b.train)
    assert 0.1 < a.train.mean() < 0.6


@pytest.mark.parametrize("gz", [False, True])
def test_parse_fixed_width_file(tmp_path, gz):
    rows = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]], np.uint8)
    text = "".join(" ".join(str(v) for v in row) + "\n" for row in rows)
    path = _write(tmp_path / ("x.amat.gz" if gz else "x.amat"), text, gz)
    parsed = data.parse_amat(path, dim=4)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, rows)


def test_parse_free_form_file(tmp_path):
    # CRLF line ends, extra spaces, floats and a trailing blank line take the slow path.
    text = "0 1  1 0\r\n1.0 1 0 0 \r\n\r\n"
    parsed = data.parse_amat(_write(tmp_path / "x.amat", text), dim=4)
    np.testing.assert_array_equal(parsed, [[0, 1, 1, 0], [1, 1, 0, 0]])


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("0 1 1 0\n1 1 0\n", 2, "expected 4 values"),
        ("0 1 1 0\n0 0 0 0\n1 2 0 0\n", 3, "got 2.0"),
        ("0 1 1 0\n0 x 0 0\n", 2, "got 'x'"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_row_names_file_and_line(tmp_path, text, line, what, gz):
    path = _write(tmp_path / ("bad.amat.gz" if gz else "bad.amat"), text, gz)
    with pytest.raises(data.DataError) as info:
        data.parse_amat(path, dim=4)
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and what in message


def test_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "binarized_mnist_valid.amat.gz"
    buffer = io.BytesIO()
    with gzip.open(buffer, "wb") as f:
        f.write(b"0 1\n" * 1000)
    path.write_bytes(buffer.getvalue()[:30])
    with pytest.raises(data.DataError, match=str(path)):
        data.parse_amat(path, dim=2)


def test_missing_file_names_paths_tried_and_url(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_binarized_mnist(tmp_path, splits=("test",))
    message = str(info.value)
    assert str(tmp_path / "binarized_mnist_test.amat") in message
    assert str(tmp_path / "binarized_mnist_test.amat.gz") in message
    assert data.BINARIZED_MNIST_URL.format(split="test") in message
    assert "download_binarized_mnist" in message


def test_mnist_without_test_file_loads_train_and_valid_only(tmp_path):
    row = " ".join(["0"] * 784) + "\n"
    for split in ("train", "valid"):
        _write(tmp_path / f"binarized_mnist_{split}.amat", row * 3)
    dataset = data.mnist(tmp_path)
    assert dataset.train.shape == (3, 784) and dataset.test is None
    with pytest.raises(FileNotFoundError, match="'test' split"):
        dataset.split("test")
    with pytest.raises(FileNotFoundError, match=r"binarized_mnist_test\.amat"):
        data.mnist(tmp_path, require_test=True)
    with pytest.raises(FileNotFoundError, match=r"binarized_mnist_test\.amat"):
        data.load("mnist", tmp_path, require_test=True)


def test_shipped_validation_file_matches_checksum():
    path = data.find_amat(data.DEFAULT_MNIST_DIR, "valid")
    with gzip.open(path, "rb") as f:
        assert hashlib.sha1(f.read()).hexdigest() == data.BINARIZED_MNIST_SHA1["valid"]
    valid = data.parse_amat(path)
    assert valid.shape == (10_000, 784) and valid.dtype == np.uint8
    assert 0.1 < valid.mean() < 0.16  # MNIST is ~13% ink


def test_download_rejects_a_bad_checksum_without_network(tmp_path, monkeypatch):
    """The download path with urlopen replaced (no network): a wrong file is refused, not kept."""

    class FakeResponse(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    urls = []
    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url: urls.append(url) or FakeResponse(b"0 1\n")
    )
    with pytest.raises(data.DataError, match="SHA-1"):
        data.download_binarized_mnist(tmp_path, splits=("test",))
    assert urls == [data.BINARIZED_MNIST_URL.format(split="test")]
    assert list(tmp_path.iterdir()) == []
