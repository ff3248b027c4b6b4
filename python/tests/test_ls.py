"""python -m shmkit ls lists what the tool lists, in the same form."""
import json
import os
import subprocess
import sys

import shmkit


def run(*cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


def test_ls_matches_tool(tool, name):
    odd = name + "-\u00e9\n\x01"  # a name the escapes must carry
    try:
        check_ls(tool, name, odd)
    finally:  # the name fixture removes name only
        try:
            shmkit.unlink(odd)
        except OSError:
            pass


def check_ls(tool, name, odd):
    with shmkit.Segment(name, 100, create=True), shmkit.Blob(odd, 64, create=True):
        py = json.loads(run(sys.executable, "-m", "shmkit", "ls", "--json").stdout)
        c = json.loads(run(tool, "ls", "--json").stdout)
        mine = lambda rows: sorted((r for r in rows if r["name"].startswith(name)),
                                   key=lambda r: r["name"])
        assert len(mine(py)) == 2
        assert mine(py) == mine(c)
        text = run(sys.executable, "-m", "shmkit", "ls").stdout.decode().splitlines()
        ctext = run(tool, "ls").stdout.decode().splitlines()
        assert text[0] == ctext[0]
        assert [l for l in text if name in l] == [l for l in ctext if name in l]
        assert any("\\n\\x01" in l for l in text)
