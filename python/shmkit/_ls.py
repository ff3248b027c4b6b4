"""`python -m shmkit ls`: the listing of `shmkit ls`, made in Python over the library.

Every POSIX segment (/dev/shm) and System V segment (/proc/sysvipc/shm), described by
shmkit_seg_inspect() (shmkit.inspect), with the processes that use it found in /proc by
the object's device and inode, and the same STALE verdict. Same columns, same JSON,
same escapes of names as the tool (tools/segments.c, tools/json.c).
"""
import json
import os
import pwd
import re
import stat as _stat
import sys

from . import _shmkit

_TOKEN = re.compile(r"\.shmkit-(live|owner)-[0-9a-f]{16}\Z")
_KINDS = {1: "data", 2: "blob", 3: "chan", 4: "topic", 255: "-"}
_STATES = {0: "init", 1: "ready", 2: "deleted"}
RAW = _shmkit.KIND_RAW


class Entry:
    __slots__ = ("info", "name", "dev", "ino", "users", "blind", "stale")

    def __init__(self, info, name, dev=0, ino=0):
        self.info, self.name, self.dev, self.ino = info, name, dev, ino
        self.users, self.blind, self.stale = -1, False, False


def _raw_info(sysv, size, mode, uid, gid, **extra):
    info = dict(sysv=sysv, kind=RAW, state=0, total_size=size, data_size=0, creator_pid=0,
                creator_alive=None, ctime_ns=0, shmid=-1, key=0, mode=mode & 0o777,
                uid=uid, gid=gid, nattch=-1, persistent=False, name="")
    info.update(extra)
    return info


def _collect_posix(out):
    try:
        names = os.listdir(b"/dev/shm")
    except OSError:
        return  # no POSIX shared memory here
    for f in names:
        if _TOKEN.match(f.decode("latin-1")):
            continue
        try:
            st = os.lstat(b"/dev/shm/" + f)
        except OSError:
            continue
        if not _stat.S_ISREG(st.st_mode):
            continue
        name = b"/" + f
        info = None
        if len(f) < _shmkit.NAME_MAX:
            try:
                info = _shmkit.inspect(name)
            except OSError:
                pass
        if info is None:  # unreadable to us, or longer than shmkit makes
            info = _raw_info(False, st.st_size, st.st_mode, st.st_uid, st.st_gid)
        out.append(Entry(info, name, st.st_dev, st.st_ino))


def _collect_sysv(out):
    try:
        with open("/proc/sysvipc/shm") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        col = line.split()
        try:
            key, shmid, mode, size, _cpid, _lpid, nattch, uid, gid = (
                int(col[0]), int(col[1]), int(col[2], 8), int(col[3]), col[4], col[5],
                int(col[6]), int(col[7]), int(col[8]))
        except (ValueError, IndexError):
            continue
        try:
            info = _shmkit.inspect("id:%d" % shmid, sysv=True)
        except OSError:
            info = _raw_info(True, size, mode, uid, gid, shmid=shmid, key=key, nattch=nattch)
        if info["kind"] == RAW:
            name = b"0x%08x" % (info["key"] & 0xffffffff)
        else:
            name = os.fsencode(info["name"])
        e = Entry(info, name)
        e.users = info["nattch"]
        out.append(e)


def _gone(err):
    return isinstance(err, (FileNotFoundError, ProcessLookupError))


def _scan_users(entries):
    """Processes mapping or holding each POSIX segment, found by (dev, ino)."""
    ids = {(e.dev, e.ino): e for e in entries if not e.info["sysv"]}
    count = dict.fromkeys(ids, 0)
    blind = 0
    try:
        procs = [p for p in os.listdir("/proc") if p.isdigit() and int(p) > 0]
    except OSError:
        procs, blind = [], 1
    for p in procs:
        hits = set()
        try:
            with open("/proc/%s/maps" % p, "rb") as f:
                for line in f:
                    col = line.split(None, 5)
                    if len(col) < 5:
                        continue
                    try:
                        maj, mnr = col[3].split(b":")
                        ino = int(col[4])
                        dev = os.makedev(int(maj, 16), int(mnr, 16))
                    except ValueError:
                        continue
                    if ino and (dev, ino) in count:
                        hits.add((dev, ino))
        except OSError as err:
            if not _gone(err):
                blind += 1
        try:
            fds = os.listdir("/proc/%s/fd" % p)
        except OSError as err:
            if not _gone(err):
                blind += 1
            fds = []
        denied = 0
        for fd in fds:
            try:
                st = os.stat("/proc/%s/fd/%s" % (p, fd))
            except OSError as err:
                if not _gone(err) and getattr(err, "errno", 0) != 9:  # EBADF
                    denied = 1
                continue
            if (st.st_dev, st.st_ino) in count:
                hits.add((st.st_dev, st.st_ino))
        blind += denied
        for k in hits:
            count[k] += 1
    for k, e in ids.items():
        e.blind = blind > 0
        e.users = -1 if e.blind and not count[k] else count[k]


def _stale(e):
    """ls's verdict (gc --all-users before any lease is tried): a shmkit segment, not
    persistent, whose creator is dead, that no process is seen using."""
    i = e.info
    if i["kind"] == RAW:
        return False
    if i["persistent"] or i["creator_alive"] is not False:
        return False
    if e.users > 0:
        return False
    if i["sysv"] and e.users < 0:
        return False
    if not i["sysv"] and e.blind:
        return False
    return True


def collect():
    entries = []
    _collect_posix(entries)
    _collect_sysv(entries)
    _scan_users(entries)
    for e in entries:
        e.stale = _stale(e)
    return entries


def _is_control(cp):
    return cp < 0x20 or 0x7f <= cp <= 0x9f


def text_str(name):
    """The tool's text escape of a name (bytes)."""
    out = []
    for ch in name.decode("utf-8", "surrogateescape"):
        cp = ord(ch)
        if 0xdc80 <= cp <= 0xdcff:
            out.append("\\x%02x" % (cp - 0xdc00))
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif _is_control(cp):
            out.append("".join("\\x%02x" % b for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def json_str(name):
    """The tool's JSON string of a name (bytes); bytes that are not UTF-8 as \\udcXX."""
    if name is None:
        return "null"
    out = ['"']
    for ch in name.decode("utf-8", "surrogateescape"):
        cp = ord(ch)
        if 0xdc80 <= cp <= 0xdcff:
            out.append("\\udc%02x" % (cp - 0xdc00))
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _is_control(cp):
            out.append("\\u%04x" % cp)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _kind(i):
    return _KINDS.get(i["kind"], "?")


def _state(i):
    return "-" if i["kind"] == RAW else _STATES.get(i["state"], "?")


def _owner(uid):
    try:
        n = pwd.getpwuid(uid).pw_name
        if len(n.encode()) < 9:
            return n
    except KeyError:
        pass
    return str(uid)


def _json_bool(v):
    return "null" if v is None else "true" if v else "false"


def json_entry(e):
    i = e.info
    s = '{"backend": "%s", "name": %s' % ("sysv" if i["sysv"] else "posix", json_str(e.name))
    if i["sysv"]:
        s += ', "key": "0x%08x", "id": %d' % (i["key"] & 0xffffffff, i["shmid"])
    else:
        s += ', "key": null, "id": null'
    s += ', "size": %d, "data_size": %d, "mode": "%04o", "uid": %d' % (
        i["total_size"], i["data_size"], i["mode"], i["uid"])
    if i["kind"] == RAW:
        s += (', "shmkit": false, "kind": null, "state": null, "creator_pid": null, '
              '"creator_alive": null, "persistent": null')
    else:
        s += (', "shmkit": true, "kind": "%s", "state": "%s", "creator_pid": %d, '
              '"creator_alive": %s, "persistent": %s') % (
            _kind(i), _state(i), i["creator_pid"], _json_bool(i["creator_alive"]),
            _json_bool(i["persistent"]))
    if e.users >= 0 and not e.blind:
        s += ', "attached": %d' % e.users
    else:
        s += ', "attached": null'
    return s + ', "stale": %s}' % _json_bool(e.stale)


_ROW = "%-5s %s %-10s %-7s %12s %-4s %-8s %7s %5s %6s %-5s %-7s %-7s %s"


def _pad(text, width):
    # printf's %-32s counts bytes, not characters: so does this.
    return text + " " * max(0, width - len(text.encode("utf-8")))


def main(argv, out=sys.stdout):
    usage = "usage: python -m shmkit ls [--json]"
    if any(a in ("-h", "--help") for a in argv):
        print(usage + "\n\nList every POSIX (/dev/shm) and System V shared-memory segment, "
              "as 'shmkit ls' does.", file=out)
        return 0
    if any(a != "--json" for a in argv):
        print(usage, file=sys.stderr)
        return 2
    entries = collect()
    w = out.buffer if hasattr(out, "buffer") else None
    if "--json" in argv:
        text = "[" + "".join((",\n " if k else "\n ") + json_entry(e)
                             for k, e in enumerate(entries))
        text += ("\n" if entries else "") + "]\n"
    else:
        rows = [_ROW % ("TYPE", _pad("NAME", 32), "KEY", "ID", "SIZE", "MODE", "OWNER", "CPID", "ALIVE",
                        "ATTACH", "KIND", "STATE", "PERSIST", "STALE")]
        for e in entries:
            i = e.info
            key = "0x%08x" % (i["key"] & 0xffffffff) if i["sysv"] else "-"
            sid = "%d" % i["shmid"] if i["sysv"] else "-"
            users = ("%d+" if e.blind else "%d") % e.users if e.users >= 0 else "-"
            cpid = "%d" % i["creator_pid"] if i["creator_pid"] > 0 else "-"
            alive = {True: "yes", False: "no", None: "-"}[i["creator_alive"]]
            persist = "-" if i["kind"] == RAW else "yes" if i["persistent"] else "no"
            rows.append(_ROW % ("sysv" if i["sysv"] else "posix", _pad(text_str(e.name), 32), key, sid,
                                i["total_size"], "%04o" % i["mode"], _owner(i["uid"]), cpid,
                                alive, users, _kind(i), _state(i), persist,
                                "stale" if e.stale else ""))
        text = "\n".join(rows) + "\n"
    # Names may hold any character: write UTF-8 (surrogates were escaped above).
    data = text.encode("utf-8")
    if w is not None:
        out.flush()
        w.write(data)
        w.flush()
    else:
        out.write(text)
    return 0
