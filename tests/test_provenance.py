"""results.json names the commit of the code that ran: the one loaded when the process imported adaprefix, not
the one its checkout holds when a later run of the same sweep process starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "adaprefix"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_commit_is_the_loaded_code_even_after_the_checkout_moves(tmp_path):
    repo = tmp_path / "checkout"
    shutil.copytree(PACKAGE, repo / "src" / "adaprefix", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    # In one process: import, then the checkout gets a new commit, then a run would ask for its provenance.
    script = (
        "import subprocess, sys\n"
        f"sys.path.insert(0, {str(repo / 'src')!r})\n"
        "from adaprefix.training import provenance\n"
        f"open({str(repo / 'src' / 'adaprefix' / 'NEW.txt')!r}, 'w').write('x')\n"
        f"subprocess.run({GIT!r} + ['commit', '-q', '-a', '--allow-empty', '-m', 'second'], cwd={str(repo)!r}, check=True)\n"
        "print(provenance()['adaprefix_commit'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    second = git(repo, "rev-parse", "HEAD")
    assert second != first
    assert out.stdout.strip().splitlines()[-1] == first
    # A process started now loads the second commit's code; the untracked file makes the package dirty.
    out = subprocess.run([sys.executable, "-c", script.replace("second", "third")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == second + "+uncommitted"


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse avx2 avx512f avx512_bf16 sha_ni

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: other
flags\t\t: amx_bf16
"""


def test_cpu_info_reads_the_first_processor_and_names_the_host_type(tmp_path):
    from adaprefix.training import _cpu_info

    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    # Hosts behind one model name ("AMD EPYC") differ in family/model/stepping, and their float results differ.
    assert _cpu_info(str(path)) == {"cpu_model": "AMD EPYC", "cpu_id": "AuthenticAMD family 25 model 17 stepping 1",
                                    "cpu_flags": ["avx2", "avx512_bf16", "avx512f"]}
    assert _cpu_info(str(tmp_path / "absent")) == {"cpu_model": None, "cpu_id": None, "cpu_flags": None}
