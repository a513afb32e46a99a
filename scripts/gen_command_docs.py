#!/usr/bin/env python3
"""Build frtrio/commands/docs.json, what COMMAND DOCS answers.

The facts come from a running redis-server 7.0.15's COMMAND DOCS: each
command's since, group, doc_flags, deprecated_since, replaced_by, the
versions of its history, its argument tree (names, types, tokens, flags,
key_spec_index, values) and its subcommands. Those are interface facts that
clients read (redis-cli's hints, client-library generators).

The prose -- summary, complexity, and the text of each history entry -- is
frtrio's own, taken from scripts/command_docs_prose.txt (hand-written); none of
Redis's text is kept. The script fails when the prose file and the recorded
facts disagree: a command without prose, prose for no command, a history
entry of another version, a complexity where Redis has none or the reverse.

Usage:
  scripts/gen_command_docs.py PORT > frtrio/commands/docs.json
  scripts/gen_command_docs.py --check    (docs.json is the facts it holds
                                          joined with the prose file)
  scripts/gen_command_docs.py --update   (rewrite docs.json from the facts it
                                          holds and the prose file: after
                                          editing the prose, no server needed)

The output has the JSON form of facts.json (``{"map": [[k, v]...]}``,
``{"set": [...]}``, ``{"s": status}``): a list of [name, doc] sorted by name,
subcommands sorted by name.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_command_facts import ask_resp3  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROSE_PATH = os.path.join(HERE, "command_docs_prose.txt")
DOCS_PATH = os.path.join(HERE, "..", "frtrio", "commands", "docs.json")

PROSE_FIELDS = ("summary", "complexity")


def parse_prose(text: str) -> dict:
    """name -> {"summary": str, "complexity": str | None, "history": [(version, text)]}"""
    out: dict = {}
    cur = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in (line.rstrip() + " ").split(" | ")]
        if line[0].isspace():
            if cur is None or len(parts) != 2 or not all(parts):
                raise SystemExit(f"prose line {lineno}: a history line is '  VERSION | text'")
            cur["history"].append((parts[0], parts[1]))
            continue
        if len(parts) != 3:
            raise SystemExit(f"prose line {lineno}: expected 'name | summary | complexity'")
        name, summary, complexity = parts[0], parts[1], parts[2] or None
        if not summary:
            raise SystemExit(f"prose line {lineno}: {name} has no summary")
        if name in out:
            raise SystemExit(f"prose line {lineno}: {name} given twice")
        cur = out[name] = {"summary": summary, "complexity": complexity, "history": []}
    return out


def _field(doc, key):
    for k, v in doc["map"]:
        if k == key:
            return v
    return None


def strip_prose(doc):
    """A doc with its prose blanked: the facts alone (history keeps its versions)."""
    out = []
    for k, v in doc["map"]:
        if k in PROSE_FIELDS:
            v = ""
        elif k == "history":
            v = {"set": [[ver, ""] for ver, _ in v["set"]]}
        elif k == "subcommands":
            v = {"map": [[n, strip_prose(s)] for n, s in v["map"]]}
        out.append([k, v])
    return {"map": out}


def join(name, doc, prose, used):
    """Fill a (stripped) doc's prose fields from ``prose``, checking they fit."""
    p = prose.get(name)
    if p is None:
        raise SystemExit(f"no prose for {name}")
    used.add(name)
    has_complexity = _field(doc, "complexity") is not None
    if has_complexity != (p["complexity"] is not None):
        raise SystemExit(f"{name}: Redis {'has' if has_complexity else 'has no'} complexity")
    hist = _field(doc, "history")
    versions = [ver for ver, _ in hist["set"]] if hist else []
    if versions != [ver for ver, _ in p["history"]]:
        raise SystemExit(f"{name}: history versions {versions} != prose {p['history']}")
    out = []
    for k, v in doc["map"]:
        if k in PROSE_FIELDS:
            v = p[k]
        elif k == "history":
            v = {"set": [[ver, text] for ver, text in p["history"]]}
        elif k == "subcommands":
            v = {"map": [[n, join(n, s, prose, used)] for n, s in sorted(v["map"])]}
        out.append([k, v])
    return {"map": out}


def build(facts, prose):
    """facts: [[name, doc]...] (prose blanked or not) -> docs.json's content."""
    used: set = set()
    out = [[n, join(n, strip_prose(d), prose, used)] for n, d in sorted(facts)]
    extra = sorted(set(prose) - used)
    if extra:
        raise SystemExit(f"prose for commands Redis does not have: {extra}")
    return out


def dumps(docs) -> str:
    return json.dumps(docs, separators=(",", ":"), ensure_ascii=False) + "\n"


def read_prose():
    with open(PROSE_PATH, encoding="utf-8") as f:
        return parse_prose(f.read())


def main():
    if sys.argv[1:] in (["--check"], ["--update"]):
        with open(DOCS_PATH, encoding="utf-8") as f:
            text = f.read()
        new = dumps(build(json.loads(text), read_prose()))
        if sys.argv[1] == "--update":
            with open(DOCS_PATH, "w", encoding="utf-8") as f:
                f.write(new)
            print("docs.json rewritten with the prose file")
        elif new != text:
            raise SystemExit("docs.json is not the prose file joined with its facts: "
                             "run scripts/gen_command_docs.py --update")
        else:
            print("docs.json is up to date")
        return
    facts = ask_resp3(int(sys.argv[1]), b"COMMAND DOCS")["map"]
    sys.stdout.write(dumps(build(facts, read_prose())))


if __name__ == "__main__":
    main()
