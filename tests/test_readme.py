"""README's Python section runs as written (the notebook workflow: attach, train, save, load, predict)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_block_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "my-adapter" / "adapter.safetensors").is_file()
    assert capsys.readouterr().out.strip() == "[1, 0]"  # what the README says it prints
    assert not namespace["loaded"].training and len(namespace["gates"]) == 6
