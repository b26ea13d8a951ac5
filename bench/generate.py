#!/usr/bin/env python3
"""Generates the issue-13 side-by-side workload (standard library only).

    python3 bench/generate.py OUT_DIR [--posts 1000000] [--logs 1000000]
                              [--data ../shared/data] [--seed 13] [--files 4]

Writes into OUT_DIR:

* ``posts-N.jsonl`` (``--files`` files): one ``{"id","created_at","text"}``
  object per line. Bodies are the texts of the recorded posts in
  ``DATA/social`` (X v1.1/v2, Gnip and Mastodon payloads; Mastodon HTML
  reduced to text), with every ``#``/``＃`` removed so that the only hashtags
  are the ones added here: one to three distinct tags per post, drawn from a
  Zipf distribution (s = 1.1) over 5 000 tag names made of words of the
  bodies, in random letter case, inserted between words.
* ``logs-HDFS.log``, ``logs-Hadoop.log``, ``logs-Spark.log``,
  ``logs-Zookeeper.log``: the Loghub 2k lines of those four systems, cycled
  to ``--logs`` lines in all, each line's own timestamp rewritten in its own
  format. These four are the log4j-style files whose every line starts with
  a timestamp and a level (checked: all 8 000 lines match), so the peers can
  read time and level with one regular expression each.

Every record's time lies in one hour (2024-05-01 12:00 to 13:00 UTC),
increasing within each file. Same arguments and seed, same bytes.

The Loghub files are research-only: they are read from DATA at run time
and never copied into the repository; the generated files stay outside it.
"""

import argparse
import bisect
import datetime as dt
import glob
import html
import json
import os
import random
import re
import sys

HOUR_START = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
HOUR_MS = 3_600_000
TAGS = 5_000
ZIPF_S = 1.1

LOG_FILES = {
    # name: (regex of the header to rewrite, formatter of a datetime)
    "HDFS": (
        re.compile(r"^\d{6} \d{6} "),
        lambda t: t.strftime("%y%m%d %H%M%S "),
    ),
    "Hadoop": (
        re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} "),
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d} ",
    ),
    "Spark": (
        re.compile(r"^\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "),
        lambda t: t.strftime("%y/%m/%d %H:%M:%S "),
    ),
    "Zookeeper": (
        re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} "),
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d} ",
    ),
}

TAG_RE = re.compile(r"<[^>]*>")
WORD_RE = re.compile(r"\b[A-Za-z]{4,12}\b")
URL_RE = re.compile(r"\S*(?:https?://|www\.|@)\S*")


def texts_of(value, out):
    """Collects post texts from any of the recorded payload shapes."""
    if isinstance(value, dict):
        content = value.get("content")
        if isinstance(content, str) and "created_at" in value:
            text = html.unescape(TAG_RE.sub(" ", content))
            out.append(text)
        else:
            for key in ("full_text", "text", "body"):
                if isinstance(value.get(key), str) and (
                    "created_at" in value or "postedTime" in value or "id" in value
                ):
                    out.append(value[key])
                    break
        for v in value.values():
            if isinstance(v, (dict, list)):
                texts_of(v, out)
    elif isinstance(value, list):
        for v in value:
            texts_of(v, out)


def load_bodies(data):
    found = []
    paths = sorted(glob.glob(os.path.join(data, "social", "raw", "*.json")))
    paths += sorted(glob.glob(os.path.join(data, "social", "raw", "*.jsonl")))
    paths += sorted(glob.glob(os.path.join(data, "social", "extracted", "*.json")))
    for path in paths:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
        try:
            docs = [json.loads(raw)]
        except json.JSONDecodeError:
            docs = []
            for line in raw.splitlines():
                try:
                    docs.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        for d in docs:
            texts_of(d, found)
    bodies = []
    seen = set()
    for t in found:
        t = " ".join(t.replace("#", "").replace("＃", "").split())
        if len(t) < 10 or t in seen:
            continue
        seen.add(t)
        bodies.append(t)
    if not bodies:
        sys.exit(f"no post bodies found under {data}/social")
    return bodies


def tag_names(bodies, rng):
    words = sorted(
        {w.lower() for b in bodies for w in WORD_RE.findall(URL_RE.sub(" ", b))}
    )
    rng.shuffle(words)
    names = []
    i = 0
    while len(names) < TAGS:
        w = words[i % len(words)]
        names.append(w if i < len(words) else f"{w}{i // len(words)}")
        i += 1
    return names


def zipf_sampler(n, s, rng):
    cum = []
    total = 0.0
    for k in range(1, n + 1):
        total += 1.0 / k**s
        cum.append(total)

    def draw():
        return bisect.bisect_left(cum, rng.random() * total)

    return draw


def random_case(tag, rng):
    r = rng.random()
    if r < 0.6:
        return tag
    if r < 0.9:
        return tag.capitalize()
    return tag.upper()


def spread_ms(i, n):
    """The i-th of n times spread evenly over the hour, in ms."""
    return i * HOUR_MS // n


def write_posts(out_dir, n, files, bodies, rng):
    names = tag_names(bodies, rng)
    draw = zipf_sampler(len(names), ZIPF_S, rng)
    per_file = [n // files + (1 if f < n % files else 0) for f in range(files)]
    pid = 0
    for f, count in enumerate(per_file):
        path = os.path.join(out_dir, f"posts-{f}.jsonl")
        with open(path, "w", encoding="utf-8") as out:
            for i in range(count):
                words = rng.choice(bodies).split(" ")
                k = rng.choice((1, 1, 2, 2, 3))
                picked = []
                while len(picked) < k:
                    t = names[draw()]
                    if t not in picked:
                        picked.append(t)
                for t in picked:
                    words.insert(rng.randint(0, len(words)), "#" + random_case(t, rng))
                ms = spread_ms(i, count)
                ts = HOUR_START + dt.timedelta(milliseconds=ms)
                created = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
                pid += 1
                line = json.dumps(
                    {"id": str(pid), "created_at": created, "text": " ".join(words)},
                    ensure_ascii=False,
                )
                out.write(line + "\n")


def write_logs(out_dir, n, data):
    names = list(LOG_FILES)
    per_file = [n // len(names) + (1 if f < n % len(names) else 0) for f in range(len(names))]
    for name, count in zip(names, per_file):
        header, fmt = LOG_FILES[name]
        src = os.path.join(data, "loghub", f"{name}_2k.log")
        with open(src, encoding="utf-8", errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        for l in lines:
            if not header.match(l):
                sys.exit(f"{src}: a line without a rewritable header: {l[:80]}")
        path = os.path.join(out_dir, f"logs-{name}.log")
        with open(path, "w", encoding="utf-8") as out:
            for i in range(count):
                line = lines[i % len(lines)]
                t = HOUR_START + dt.timedelta(milliseconds=spread_ms(i, count))
                out.write(header.sub(fmt(t), line, count=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--logs", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4, help="post files")
    ap.add_argument("--seed", type=int, default=13)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    rng = random.Random(a.seed)
    bodies = load_bodies(a.data)
    write_posts(a.out_dir, a.posts, a.files, bodies, rng)
    write_logs(a.out_dir, a.logs, a.data)
    print(f"{len(bodies)} post bodies; wrote {a.posts} posts and {a.logs} log lines to {a.out_dir}")


if __name__ == "__main__":
    main()
