"""Notes and prompts (issue 11): the hidden-processes note only where hidden processes change
the answer, once, naming at most 5 pids; bulk rm asks on a terminal (a real pty) whenever a
filter chose anything, shows human sizes and owners, and a no removes nothing."""
import os
import re
import select
import subprocess
import time

import pytest

from conftest import ENV, ROOT, SECOND_UID, SHMCTL, run, run_as, stop_child

NOTE = re.compile(r"^shmctl: attachments of process(?:es)? ([0-9, ]+?)(?: and ([0-9]+) more)? not visible", re.M)
pytestmark = pytest.mark.skipif(not ROOT, reason="needs root: pid 1's maps closed to this root, other users")


def _notes(err: str):
    found = NOTE.findall(err)
    return [([int(p) for p in pids.split(", ")], int(more or 0)) for pids, more in found]


def test_sysv_listing_has_no_note(hold, unique):
    hold({"kind": "sysv", "key": unique.key, "size": 4096})
    r = run("list", "--kind", "sysv")
    assert r.code == 0 and f"0x{unique.key:08x}" in r.out
    assert _notes(r.err) == []  # SysV nattch is the kernel's: hidden processes change nothing
    assert _notes(run("list", "--kind", "sysv", "--json").err) == []


def test_posix_nobody_holds_names_pid_1_once(unique, cleanup_shm):
    names, _ = cleanup_shm
    assert subprocess.run(["cat", "/proc/1/maps"], capture_output=True).returncode != 0, "pid 1 is not hidden here"
    names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    r = run("list", "--kind", "posix", "-o", "ADDRESS,NATTCH,STATUS")
    row = next(l.split() for l in r.out.splitlines() if unique.name in l)
    assert row[1:] == ["?", "orphan?"]
    notes = _notes(r.err)
    assert len(notes) == 1 and 1 in notes[0][0] and len(notes[0][0]) <= 5
    # the same object with columns hidden processes do not change: no note
    assert _notes(run("list", "--kind", "posix", "-o", "ADDRESS,SIZE").err) == []
    stat = run("stat", f"/{unique.name}")
    assert len(_notes(stat.err)) == 1


def test_as_another_user_at_most_five_and_how_many_more(unique, cleanup_shm):
    names, _ = cleanup_shm
    names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K", "--owner", str(SECOND_UID), "--mode", "0644").code == 0
    # six root processes of our own, so the host need not be busy for there to be more than 5
    sleepers = [subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) for _ in range(6)]
    try:
        r = run_as(SECOND_UID, "list", "--kind", "posix")
    finally:
        for proc in sleepers:
            stop_child(proc, 10)
    assert r.code == 0, r
    notes = _notes(r.err)
    assert len(notes) == 1, r.err
    pids, more = notes[0]
    assert len(pids) == 5 and more >= 1 and pids == sorted(pids)  # root's: the sleepers at least
    assert os.getpid() in pids or more  # this test's own process (root) is hidden from that user


def _pid_1_hidden():
    assert subprocess.run(["cat", "/proc/1/maps"], capture_output=True).returncode != 0, "pid 1 is not hidden here"


def test_summary_notes_only_what_hidden_processes_change(unique, cleanup_shm, hold):
    """-u prints counts and sizes: SysV's and /dev/shm's own, whatever processes are hidden
    (no note); a kind only the processes show (mmap), or deleted objects (only processes
    hold those), may miss what hidden ones hold (the note, once)."""
    _pid_1_hidden()
    cleanup_shm[0].append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    for args in (("-u", "-k", "posix"), ("-u", "-k", "posix", "--json"), ("-u", "-k", "sysv")):
        r = run("list", *args)
        assert r.code == 0 and _notes(r.err) == [], (args, r.err)
    r = run("list", "-u", "-k", "mmap")
    assert r.code == 0 and len(_notes(r.err)) == 1, r.err
    held = f"{unique.name}-deleted"
    hold({"kind": "posix", "name": f"/{held}", "size": 8192})
    os.unlink(f"/dev/shm/{held}")
    r = run("list", "-u", "-k", "posix")
    assert "deleted but still held" in r.out and len(_notes(r.err)) == 1, r


def test_a_kind_only_processes_show_notes_whatever_the_columns(hold, unique):
    _pid_1_hidden()
    hold({"kind": "memfd", "name": unique.name, "size": 4096})
    r = run("list", "-k", "mmap", "-o", "ADDRESS,SIZE")
    assert r.code == 0 and len(_notes(r.err)) == 1, r.err  # pid 1 may map segments never seen


def test_rm_skips_say_the_hidden_processes_once_with_addresses_to_paste(unique, cleanup_shm):
    """rm --all passing over objects whose users may be hidden: a line for each, its address
    as list prints it (accepted back), and which processes are hidden said once."""
    _pid_1_hidden()
    names = [f"{unique.name}-a b", f"{unique.name}-c"]
    cleanup_shm[0].extend(names)
    for name in names:
        assert run("create", f"/{name}", "--size", "4K").code == 0
    r = run("rm", "--all=posix", "--name", f"{unique.name}-*", "--dry-run")
    assert r.code == 0, r
    skips = [line for line in r.err.splitlines() if line.startswith("shmctl: skipped ")]
    printed = [f"posix:/{unique.name}-a\\x20b", f"posix:/{unique.name}-c"]
    assert sorted(skips) == sorted(f"shmctl: skipped {a}: may be in use unseen (--force removes it anyway)"
                                   for a in printed), r.err
    assert r.err.count("not visible") == 1 and len(_notes(r.err)) == 1, r.err
    for address, name in zip(printed, names):  # pasted back, each names its object
        r = run("stat", address)
        assert r.code == 0 and f"/{name}\n" in r.out, r
    plan = run("rm", "--all=posix", "--name", f"{unique.name}-*", "--dry-run", "--json").json()
    assert all("not visible" in s["why"] for s in plan["skipped"])  # the plan keeps each why whole
    assert all(os.path.exists(f"/dev/shm/{name}") for name in names)


# --- rm's question, in a real pseudo-terminal ---

def _in_pty(args, answer: bytes = None, timeout: float = 30.0):
    """shmctl with stdin, stdout and stderr on a pty; `answer` typed once the question shows."""
    master, slave = os.openpty()
    proc = subprocess.Popen([*SHMCTL, *args], stdin=slave, stdout=slave, stderr=slave, env=ENV,
                            start_new_session=True)
    os.close(slave)
    seen, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every end of the slave closed, the command is done
                    break
                if not chunk:
                    break
                seen += chunk
            if answer is not None and not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, seen.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.fixture
def owned_segment(unique, cleanup_shm):
    """A SysV segment of SECOND_UID: `--all=sysv --user 4242` chooses it alone."""
    _, shmids = cleanup_shm
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "6K", "--owner", str(SECOND_UID))
    assert r.code == 0, r
    address = r.out.strip()
    shmids.append(int(address.split(":")[1]))
    return address


def _exists(address: str) -> bool:
    return run("stat", address).code == 0


def test_one_chosen_by_a_filter_is_asked_and_yes_removes(owned_segment):
    code, screen = _in_pty(["rm", "--all=sysv", "--user", str(SECOND_UID)], b"y\n")
    assert "about to remove 1 segment:" in screen
    line = next(l for l in screen.splitlines() if owned_segment in l)
    assert re.search(r"\b6(\.0)?Ki?B?\b", line) and f"owner {SECOND_UID}" in line and "nattch 0" in line
    assert "bytes" not in screen
    assert code == 0 and not _exists(owned_segment)


@pytest.mark.parametrize("answer", [b"n\n", b"\x04"], ids=["no", "eof"])
def test_declined_removes_nothing(owned_segment, answer):
    code, screen = _in_pty(["rm", "--orphans", "-k", "sysv", "--user", str(SECOND_UID)], answer)
    assert "shmctl: rm: nothing removed (declined)" in screen, screen
    assert code == 1 and _exists(owned_segment)


def test_off_a_terminal_a_filter_needs_yes(owned_segment):
    r = run("rm", "--all=sysv", "--user", str(SECOND_UID))
    assert r.code == 2 and "--yes" in r.err and _exists(owned_segment)
    r = run("rm", "--all=sysv", "--user", str(SECOND_UID), "--dry-run")
    assert r.code == 0 and _exists(owned_segment)


def test_nothing_chosen_says_so(unique):
    r = run("rm", "--all=sysv", "--user", str(SECOND_UID + 1))
    assert r.code == 0 and r.out == "" and "nothing to remove" in r.err
    code, screen = _in_pty(["rm", "--orphans", "-k", "sysv", "--user", str(SECOND_UID + 1)])
    assert code == 0 and "nothing to remove" in screen and "[y/N]" not in screen
