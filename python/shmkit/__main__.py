"""python -m shmkit COMMAND: the parts of the shmkit tool that Python offers.

    python -m shmkit ls [--json]     every segment, as `shmkit ls` lists them
    python -m shmkit version         the library's version
"""
import sys

from . import _ls, library_version


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "ls":
        return _ls.main(rest)
    if cmd == "version":
        print(library_version)
        return 0
    print("python -m shmkit: unknown command %r (ls, version)" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
