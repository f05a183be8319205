"""The one field table drives every printer: what JSON, stat and the columns show comes from
fields.FIELDS, in the orders scripts know. Pure: fake segments, no kernel."""
from shmctl_cli import fields, render
from shmctl_cli.model import Segment

JSON_KEYS = ["address", "kind", "id", "key", "key_hex", "name", "owner", "group", "uid", "gid", "cuid", "cgid", "cuser",
             "cgroup", "perms", "mode", "size",
             "rss", "swap", "nattch", "nattch_exact", "cpid", "lpid", "atime", "dtime", "ctime", "mtime", "status",
             "hugetlb", "orphan", "orphan_certain", "backing", "device", "namespace", "container"]


def _style():
    return fields.Style(exact_sizes=True, user_name=lambda uid: "root")


def test_json_keys_and_stat_lines_keep_their_order():
    sysv = Segment("sysv", "sysv:7", 7, 0x5EED, mode=0o640, uid=0, gid=0, cuid=0, cgid=0, size=4096, rss=0,
                   swap=0, nattch=0, cpid=1, lpid=1, ctime=1, orphan="creator gone")
    posix = Segment("posix", "posix:/x", 12, name="/x", mode=0o600, uid=0, gid=0, size=4096, rss=4096)
    data = render.segment_dict(sysv, _style())
    assert list(data) == JSON_KEYS and data["perms"] == "0640" and data["mode"] == "rw-r-----"
    assert [k for k, _ in render.detail_fields(sysv, _style())] == [
        "address", "kind", "key", "shmid", "owner", "group", "creator", "perms", "size", "rss", "swap", "nattch", "cpid",
        "lpid", "atime", "dtime", "ctime", "status", "orphan"]
    assert [k for k, _ in render.detail_fields(posix, _style())] == [
        "address", "kind", "name", "inode", "owner", "group", "perms", "size", "allocated", "nattch", "atime", "mtime",
        "ctime", "status"]


def test_a_new_field_is_one_line(monkeypatch):
    new = fields.Field("PAGES", "pages", "size", lambda v, st: str(v // 4096), right=True, sort=True,
                       label="pages", help="size in pages")
    table = fields.FIELDS + [new]
    monkeypatch.setattr(render, "COLUMNS", {f.name: f for f in table if f.name})
    from shmctl_cli.render import json_text
    monkeypatch.setattr(json_text, "COLUMNS", {f.name: f for f in table if f.name})
    monkeypatch.setattr(json_text, "JSON_FIELDS", fields._placed([f for f in table if f.key], "json_after"))
    monkeypatch.setattr(fields, "STAT_FIELDS", fields._placed([f for f in table if f.label], "stat_after"))
    seg = Segment("posix", "posix:/x", 12, name="/x", size=8192)
    assert render.plain_table([seg], ["ADDRESS", "PAGES"], _style()) == "ADDRESS  PAGES\nposix:/x     2\n"
    assert render.segment_dict(seg, _style())["pages"] == 8192
    assert render.detail_fields(seg, _style())[-1] == ("pages", "2")
