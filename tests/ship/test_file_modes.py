"""The archive and the state are readable by their owner only, whatever the umask, unless the
setting says group or everyone (#20 item 8).

The real CLI runs under umask 022 (every child a real exec: the umask is the caller's), on a log
of mode 0600 that holds a password, in lines that parse and lines that do not (raw dead letters).
Every file and folder it leaves is checked; as root, a process without the capabilities that
bypass file permissions and with another user id is refused what the owner wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from shiphelp import LOGPIPE, Run, archived_seqs, record, write_records

SECRET = "password=hunter2"
UMASK = 0o022
IS_ROOT = os.geteuid() == 0
NOBODY = 65534
# Files and folders by setting, as the README's table says.
MODES = {"owner": (0o600, 0o700), "group": (0o640, 0o750), "everyone": (0o644, 0o755)}


def run(*args: str, umask: int = UMASK, stdin: bytes | None = None) -> Run:
    proc = subprocess.run(
        [*LOGPIPE, *args], capture_output=True, timeout=120, umask=umask, input=stdin, env={**os.environ}
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def secret_log(path: Path, seqs: range) -> Path:
    """A log only its owner may read: records with a password in their message, and lines that
    are not JSON (which the archive keeps raw, as dead letters)."""
    write_records(path, (record(i, message=f"login {SECRET} seq={i}") for i in seqs))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"not json {SECRET}\n")
    path.chmod(0o600)
    return path


def modes_under(*roots: Path) -> dict[Path, int]:
    """Every file and folder under `roots` (the roots included) -> its permission bits."""
    found: dict[Path, int] = {}
    for root in roots:
        found[root] = stat.S_IMODE(root.lstat().st_mode)
        for path in root.rglob("*"):
            found[path] = stat.S_IMODE(path.lstat().st_mode)
    return found


def wrong_modes(found: dict[Path, int], readable_by: str) -> dict[str, str]:
    file_mode, folder_mode = MODES[readable_by]
    return {
        str(path): f"{mode:04o}"
        for path, mode in found.items()
        if mode != (folder_mode if path.is_dir() else file_mode)
    }


def kinds_of(found: dict[Path, int]) -> set[str]:
    """What the walk met, so a test cannot pass by checking an empty archive."""
    names = {p.name for p in found}
    kinds = set()
    if any(p.suffix == ".parquet" and "logs" in p.parts for p in found):
        kinds.add("part")
    if any(p.suffix == ".parquet" and "dead_letters" in p.parts for p in found):
        kinds.add("dead letter")
    if "checkpoints.json" in names:
        kinds.add("checkpoints")
    if {".lock", ".compact.lock"} <= names:
        kinds.add("locks")
    return kinds


def read_as_nobody(path: Path) -> subprocess.CompletedProcess[bytes]:
    """`cat path` as another user, without root's power to read anything."""
    return read_as(path, NOBODY)


def test_archive_and_state_are_the_owners_only_under_umask_022(tmp_path: Path) -> None:
    """Parts, dead letters, checkpoints, locks, the stdin spool and every folder: 0600 and 0700."""
    log = secret_log(tmp_path / "app.log", range(300))
    archive, state = tmp_path / "a", tmp_path / "state"
    res = run("ship", "--once", str(log), "--archive", str(archive))
    assert res.code == 0, res.err
    # Standard input goes through the spool in a separate state folder.
    res = run(
        "ship", "-", "--archive", str(archive), "--state-dir", str(state), stdin=b'{"message": "x", "seq": 300}\n'
    )
    assert res.code == 0, res.err
    assert archived_seqs(archive) == list(range(301))
    found = modes_under(archive, state)
    assert kinds_of(found) == {"part", "dead letter", "checkpoints", "locks"}
    assert (state / "spool").is_dir() and (state / "checkpoints.json").exists()
    assert wrong_modes(found, "owner") == {}
    if IS_ROOT:
        dead = next(p for p in found if p.suffix == ".parquet" and "dead_letters" in p.parts)
        refused = read_as_nobody(dead)
        assert refused.returncode != 0 and b"ermission denied" in refused.stderr, refused
        assert SECRET.encode() not in refused.stdout


@pytest.mark.parametrize("readable_by", ["group", "everyone"])
def test_the_flag_allows_group_or_everyone(tmp_path: Path, readable_by: str) -> None:
    """`--readable-by group|everyone`: files 0640|0644, folders 0750|0755."""
    log = secret_log(tmp_path / "app.log", range(50))
    archive = tmp_path / "a"
    res = run("ship", "--once", str(log), "--archive", str(archive), "--readable-by", readable_by)
    assert res.code == 0, res.err
    found = modes_under(archive)
    assert kinds_of(found) == {"part", "dead letter", "checkpoints", "locks"}
    assert wrong_modes(found, readable_by) == {}


def test_the_config_key_and_a_strict_umask(tmp_path: Path) -> None:
    """`archive.readable_by: group` in a config file; a user's umask 077 still wins (the setting
    never opens more than the umask allows)."""
    log = secret_log(tmp_path / "app.log", range(50))
    archive, loose, strict = tmp_path / "a", tmp_path / "loose.yaml", tmp_path / "strict.yaml"
    for path, where in ((loose, archive), (strict, tmp_path / "b")):
        doc = {
            "version": 1,
            "archive": {"path": str(where), "readable_by": "group"},
            "sources": [{"paths": [str(log)]}],
        }
        path.write_text(json.dumps(doc))
    assert run("ship", "--once", "--config", str(loose)).code == 0
    assert wrong_modes(modes_under(archive), "group") == {}
    assert run("ship", "--once", "--config", str(strict), umask=0o077).code == 0
    assert wrong_modes(modes_under(tmp_path / "b"), "owner") == {}


def test_a_bad_value_is_one_line(tmp_path: Path) -> None:
    log = secret_log(tmp_path / "app.log", range(5))
    res = run("ship", "--once", str(log), "--archive", str(tmp_path / "a"), "--readable-by", "others")
    assert res.code == 2, res.err
    assert "--readable-by" in res.err and "owner" in res.err and "Traceback" not in res.err


def test_an_archive_written_before_is_closed_and_compaction_follows_it(tmp_path: Path) -> None:
    """An archive an older logpipe left at 0644/0755: the next `ship` makes its folder 0700, so
    nobody else reaches the old parts; `archive compact` writes its merged parts as the
    archive's folder says."""
    log = secret_log(tmp_path / "app.log", range(100))
    archive = tmp_path / "a"
    assert run("ship", "--once", str(log), "--archive", str(archive), "--readable-by", "everyone").code == 0
    old = min(archive.glob("logs/**/*.parquet"))
    write_records(log, (record(i) for i in range(100, 200)))
    assert run("ship", "--once", str(log), "--archive", str(archive)).code == 0
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    if IS_ROOT:
        assert stat.S_IMODE(old.stat().st_mode) == 0o644  # left as it was, but out of reach:
        assert read_as_nobody(old).returncode != 0
    before = set(archive.glob("logs/**/*.parquet"))
    res = run("archive", "compact", "--archive", str(archive))
    assert res.code == 0, res.err
    merged = set(archive.glob("logs/**/*.parquet")) - before
    assert merged, res.out  # compaction wrote parts, at the mode the archive's folder says
    assert {p.name: f"{stat.S_IMODE(p.stat().st_mode):04o}" for p in merged} == {p.name: "0600" for p in merged}
    assert archived_seqs(archive) == list(range(200))


def test_export_output_is_the_users_file(tmp_path: Path) -> None:
    """`logpipe export --out FILE` writes where the person asked, with their own umask (022:
    0644), not the archive's setting: it is theirs, like any file they create."""
    log = secret_log(tmp_path / "app.log", range(20))
    archive, out = tmp_path / "a", tmp_path / "out.parquet"
    assert run("ship", "--once", str(log), "--archive", str(archive)).code == 0
    res = run("export", "--archive", str(archive), "--since", "3650d", "--out", str(out))
    assert res.code == 0, res.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~UMASK


def read_as(path: Path, uid: int, groups: tuple[int, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    """`cat path` as user `uid` in `groups` only, without root's power to read anything."""
    membership = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            *membership,
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            "--",
            "cat",
            str(path),
        ],
        capture_output=True,
        timeout=30,
    )


@pytest.mark.skipif(not IS_ROOT, reason="giving a folder to a group and reading as another user needs root")
def test_a_setgid_team_folder_lets_its_group_read(tmp_path: Path) -> None:
    """The README's team set-up: an archive folder of the team's group with the setgid bit and
    `--readable-by group`. A member of the group reads a dead letter; another user does not."""
    team, member, outsider = 4242, 4243, 4244
    log = secret_log(tmp_path / "app.log", range(50))
    # Outside pytest's folders (its own ancestors let no other user through).
    shared = Path(tempfile.mkdtemp(prefix="logpipe-team-"))
    try:
        shared.chmod(0o711)
        _check_team_folder(shared / "a", log, team, member, outsider)
    finally:
        shutil.rmtree(shared)


def _check_team_folder(archive: Path, log: Path, team: int, member: int, outsider: int) -> None:
    archive.mkdir(mode=0o770)
    os.chown(archive, 0, team)
    archive.chmod(0o2770)
    res = run("ship", "--once", str(log), "--archive", str(archive), "--readable-by", "group")
    assert res.code == 0, res.err
    assert stat.S_IMODE(archive.stat().st_mode) == 0o2750  # narrowed, the setgid bit kept
    found = modes_under(archive)
    assert {str(p): f"{m & 0o777:04o}" for p, m in found.items() if m & 0o777 != (0o750 if p.is_dir() else 0o640)} == {}
    assert {p.stat().st_gid for p in found} == {team}
    dead = next(p for p in found if p.suffix == ".parquet" and "dead_letters" in p.parts)
    read = read_as(dead, member, (team,))
    assert read.returncode == 0 and SECRET.encode() in read.stdout, read
    refused = read_as(dead, outsider)
    assert refused.returncode != 0 and b"ermission denied" in refused.stderr, refused
