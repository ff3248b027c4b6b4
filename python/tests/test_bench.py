"""python -m shmkit.bench runs every case and says PASS or MISS for each target (one
short round: no figure is asserted, only that each case moved its messages intact)."""
import json
import os
import subprocess
import sys


def test_bench_quick_json():
    r = subprocess.run([sys.executable, "-m", "shmkit.bench", "--quick", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert r.returncode == 0, r.stderr.decode()
    data = json.loads(r.stdout)
    cases = {(c["size"], c["mechanism"]) for c in data["cases"]}
    for size in (64, 1 << 20):
        for mech in ("shmkit.Channel", "multiprocessing.Pipe", "multiprocessing.Queue",
                     "shared_memory + Lock"):
            assert (size, mech) in cases
    assert all(c["msgs_per_s"] > 0 for c in data["cases"])
    assert [a["target"] for a in data["acceptance"]] == [10.0, 5.0]
    assert all(isinstance(a["pass"], bool) for a in data["acceptance"])
    assert data["machine"]["cpu"]


def test_bench_text_lines():
    r = subprocess.run([sys.executable, "-m", "shmkit.bench", "--quick"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert r.returncode == 0, r.stderr.decode()
    verdicts = [l for l in r.stdout.decode().splitlines() if l.startswith(("PASS ", "MISS "))]
    assert len(verdicts) == 2
    assert "64 B" in verdicts[0] and "1 MiB" in verdicts[1]
