"""The README's Python examples run as written (a user copies them first)."""

import pathlib
import re

import jax

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    namespace: dict = {}
    # The README reuses one key on purpose, to show sample == transform(noise) for that key.
    with jax.debug_key_reuse(False):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
