#!/usr/bin/env python3
"""Grouping accuracy (GA) and group F1 (FGA) of `selfmon templates` on Loghub-2k.

Usage: python3 benches/loghub_ga.py SELFMON_BINARY DATA_DIR [SYSTEM ...]

DATA_DIR holds the public Loghub-2k data in the layout of logpai/logparser's
`data/loghub_2k_corrected` (the ICSE'22 corrected labels): `<SYS>/<SYS>_2k.log_structured_corrected.csv`
(`<SYS>_2k.log_structured.csv`, the original labels, is used where no corrected file exists).
Each system's Content column is fed to the binary as a user would (`selfmon templates`, defaults,
one message per line on stdin, the whole process); messages are grouped by the fingerprint it
prints and compared with the groups of the EventTemplate column:

- GA: the share of messages whose predicted group holds exactly the messages of their true group;
- FGA: F1 over groups, a predicted group counting when its messages are exactly one true group's.

Prints one line per system and the averages. SELFMON_GA_DEBUG=SYS lists that system's wrong groups
(MERGED: one template over several true groups; SPLIT: a true group cut in parts) with examples.
Only the standard library is needed.
"""
import csv
import io
import os
import subprocess
import sys
from collections import defaultdict

SYSTEMS = ["Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux", "Mac",
           "OpenSSH", "OpenStack", "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper"]


def load(data, system):
    for name in (f"{system}_2k.log_structured_corrected.csv", f"{system}_2k.log_structured.csv"):
        path = os.path.join(data, system, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f)), name
    return None, None


def ga_fga(pred, truth):
    pg, tg = defaultdict(list), defaultdict(list)
    for i, (p, t) in enumerate(zip(pred, truth)):
        pg[p].append(i)
        tg[t].append(i)
    exact = [m for m in pg.values() if tg[truth[m[0]]] == m]
    ga = sum(map(len, exact)) / len(pred)
    prec, rec = len(exact) / len(pg), len(exact) / len(tg)
    fga = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return ga, fga, pg, tg


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, data, only = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for system in only or SYSTEMS:
        recs, name = load(data, system)
        if recs is None:
            print(f"{system:12} (no data)")
            continue
        contents = [" ".join(r["Content"].splitlines()) for r in recs]
        truth = [r["EventTemplate"] for r in recs]
        out = subprocess.run([binary, "templates"], input="\n".join(contents) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        if len(out) != len(contents):
            sys.exit(f"{system}: {len(out)} output lines for {len(contents)} messages")
        pred = [line.split("\t", 1)[0] for line in out]
        ga, fga, pg, tg = ga_fga(pred, truth)
        rows.append((system, ga, fga))
        print(f"{system:12} GA {ga:.3f}  FGA {fga:.3f}  true groups {len(tg):4}  "
              f"predicted {len(pg):4}  messages {len(recs)}  ({name})")
        if os.environ.get("SELFMON_GA_DEBUG") == system:
            template = {line.split("\t", 1)[0]: line.split("\t", 1)[-1] for line in out}
            for p, members in sorted(pg.items(), key=lambda kv: -len(kv[1])):
                kinds = {truth[i] for i in members}
                if len(kinds) == 1 and tg[truth[members[0]]] == members:
                    continue
                print(f"  {'MERGED' if len(kinds) > 1 else 'SPLIT'} {len(members)}  {template[p]!r}")
                for t in sorted(kinds)[:6]:
                    example = contents[next(i for i in members if truth[i] == t)]
                    print(f"      truth {t!r}  e.g. {example!r}")
    if rows:
        n = len(rows)
        print(f"{'average':12} GA {sum(r[1] for r in rows) / n:.3f}  "
              f"FGA {sum(r[2] for r in rows) / n:.3f}  over {n} systems; "
              f"below 0.80: {[r[0] for r in rows if r[1] < 0.8] or 'none'}")


if __name__ == "__main__":
    main()
