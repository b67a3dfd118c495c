# SPDX-License-Identifier: MIT
"""tests/test_pel_check.py - run pel-check against the fixture trees and the live host.

    test_pel_check.py PEL_CHECK FIXTURE_DIR [PEL_CHECK_TABLE4]

Checks exit codes (0 ready, 1 not, 2 bad usage), that --json is one valid object with every check
id once, and specific verdicts of each tree. PEL_CHECK_TABLE4, pel-check built with room for 4
checks, shows what a check that does not fit gives: the first 4 and one failed "internal" entry. Prints one line per case; exits 1 on the first
mismatch.
"""
import json
import os
import subprocess
import sys

IDS = ["isolcpus", "nohz_full", "rcu_nocbs", "irq_affinity", "governor", "smt", "thp",
       "hugepages", "swap", "rt_runtime", "timer_migration", "nmi_watchdog", "cpuidle",
       "stat_interval", "io_uring", "memlock", "kthreads"]

exe, fixtures = sys.argv[1], sys.argv[2]
exe_table4 = sys.argv[3] if len(sys.argv) > 3 else None
failed = 0


def run(*args, prog=None):
    p = subprocess.run([prog or exe, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, why=""):
    global failed
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + why))
    if not cond:
        failed += 1


def verdict(name, tree, cpus, code, want):
    """Run --json on a tree; check exit code, shape and the statuses in want ({id: status})."""
    args = ["--json"] + (["--root", os.path.join(fixtures, tree)] if tree else [])
    args += ["--cpus", cpus] if cpus else []
    rc, out, err = run(*args)
    check(f"{name}: exit {code}", rc == code, f"exit {rc}, stderr {err!r}")
    try:
        doc = json.loads(out)
    except ValueError as e:
        check(f"{name}: valid JSON", False, f"{e}: {out[:300]!r}")
        return None
    check(f"{name}: keys", set(doc) == {"ready", "cpus", "checks"}, str(sorted(doc)))
    check(f"{name}: ready matches exit", doc["ready"] == (rc == 0), str(doc["ready"]))
    ids = [c["id"] for c in doc["checks"]]
    check(f"{name}: every id once", ids == IDS, str(ids))
    for c in doc["checks"]:
        if set(c) != {"id", "status", "detail", "fix"} or c["status"] not in ("ok", "warn", "fail"):
            check(f"{name}: check {c}", False, "bad shape")
        if c["status"] == "fail" and not c["fix"]:
            check(f"{name}: {c['id']} fail has a fix", False, c["detail"])
    st = {c["id"]: c["status"] for c in doc["checks"]}
    for cid, s in want.items():
        check(f"{name}: {cid} {s}", st[cid] == s, f"{st[cid]}: {doc['checks'][IDS.index(cid)]}")
    return doc


# A tuned 2-socket host: default CPUs are the isolated ones; ready, with SMT siblings warned about.
d = verdict("2s32c default", "sysfs-2s32c-smt", None, 0, {
    "isolcpus": "ok", "nohz_full": "ok", "rcu_nocbs": "ok", "irq_affinity": "warn",
    "governor": "ok", "smt": "warn", "thp": "ok", "hugepages": "ok", "swap": "ok",
    "rt_runtime": "ok", "timer_migration": "ok", "nmi_watchdog": "ok", "cpuidle": "ok",
    "stat_interval": "ok", "io_uring": "ok", "memlock": "ok"})
if d:
    check("2s32c default cpus", d["cpus"] == "2-15,34-47", d["cpus"])
    smt = d["checks"][IDS.index("smt")]
    check("2s32c smt names 2/34 and a fix list", "2/34" in smt["detail"]
          and "(--cpus 2-15)" in smt["fix"], str(smt))
# One thread per core on the isolated CPUs: nothing to warn about SMT.
verdict("2s32c 2-15", "sysfs-2s32c-smt", "2-15", 0, {"smt": "ok", "cpuidle": "ok"})
# Housekeeping CPUs are not isolated and take every IRQ.
d = verdict("2s32c 0-1", "sysfs-2s32c-smt", "0-1", 1, {
    "isolcpus": "fail", "nohz_full": "fail", "rcu_nocbs": "warn", "irq_affinity": "fail",
    "smt": "warn", "cpuidle": "warn"})
if d:
    check("2s32c 0-1 fix names isolcpus", "isolcpus=managed_irq,domain,0-1"
          in d["checks"][0]["fix"], d["checks"][0]["fix"])

# An untuned desktop: default CPUs are all but 0; nearly everything is off.
d = verdict("1s8c default", "sysfs-1s8c", None, 1, {
    "isolcpus": "fail", "nohz_full": "fail", "rcu_nocbs": "warn", "irq_affinity": "fail",
    "governor": "fail", "smt": "ok", "thp": "ok", "hugepages": "warn", "swap": "warn",
    "rt_runtime": "fail", "timer_migration": "warn", "nmi_watchdog": "warn",
    "cpuidle": "warn", "stat_interval": "warn", "io_uring": "ok", "memlock": "warn"})
if d:
    check("1s8c default cpus", d["cpus"] == "1-7", d["cpus"])
    rt = d["checks"][IDS.index("rt_runtime")]
    check("1s8c rt_runtime says 50 ms", "50 ms of every 1000 ms" in rt["detail"], rt["detail"])

# EPYC NPS4: ondemand on nodes 2-3, IRQ 45 pinned to CPU 12, THP always, swap, no hugepages on
# node 3, isolcpus without managed_irq, io_uring restricted.
d = verdict("epyc default", "sysfs-epyc-4n", None, 1, {
    "isolcpus": "warn", "nohz_full": "ok", "rcu_nocbs": "ok", "irq_affinity": "fail",
    "governor": "fail", "smt": "warn", "thp": "warn", "hugepages": "warn", "swap": "warn",
    "rt_runtime": "ok", "cpuidle": "warn", "io_uring": "warn", "memlock": "ok"})
if d:
    irq = d["checks"][IDS.index("irq_affinity")]
    check("epyc irq 45 named", "45 (on 12)" in irq["detail"] and "for i in 45;" in irq["fix"],
          str(irq))
    gov = d["checks"][IDS.index("governor")]
    check("epyc governor lists 16-31,48-63", "cpus 16-31,48-63 " in gov["detail"]
          and "ondemand" in gov["detail"], gov["detail"])
    hp = d["checks"][IDS.index("hugepages")]
    check("epyc hugepages node 3", "node 3" in hp["detail"] and "node 3: 0" in hp["detail"],
          hp["detail"])
# The first CCX pair of node 1 minus CPU 12: ready, with warnings only.
verdict("epyc 8-11,40-43", "sysfs-epyc-4n", "8-11,40-43", 0, {
    "irq_affinity": "ok", "governor": "ok", "hugepages": "ok", "smt": "warn"})

# Trees with only the CPU sets still give a verdict.
d = verdict("8cpu-iso", "sysfs-8cpu-iso", None, 1, {"isolcpus": "ok", "kthreads": "fail"})
if d:
    # proc/: kdamond.0 (0-1: housekeeping only), rcu_preempt (0-5, 9.39 s of CPU), ksoftirqd/3
    # (bound to 3), an idle unbound kworker (0-7), a user process whose name holds ") ("
    k = d["checks"][IDS.index("kthreads")]
    check("8cpu-iso: kthreads names the unbound ones on the workers, busiest first",
          "2 unbound kernel threads may run on cpus 2-7" in k["detail"] and
          k["detail"].index("rcu_preempt (pid 15)") < k["detail"].index("kworker/u16:2") and
          "kdamond" not in k["detail"] and "ksoftirqd" not in k["detail"] and
          "my app" not in k["detail"], k["detail"])
    check("8cpu-iso: kthreads fix moves the busy one", "for p in 15; do taskset -pc 0-1 $p" in k["fix"]
          and "isolcpus=domain,2-7" in k["fix"], k["fix"])
d = verdict("8cpu-iso 6-7", "sysfs-8cpu-iso", "6-7", 1, {"kthreads": "warn"})
if d:
    k = d["checks"][IDS.index("kthreads")]
    check("8cpu-iso 6-7: only the idle kworker, no taskset line",
          "1 unbound kernel threads" in k["detail"] and "taskset" not in k["fix"], k)
d = verdict("8cpu-iso 0", "sysfs-8cpu-iso", "0", 1, {"kthreads": "fail"})
if d:
    k = d["checks"][IDS.index("kthreads")]
    check("8cpu-iso 0: kdamond.0 too", "kdamond.0 (pid 107)" in k["detail"] and
          "for p in 107 15;" in k["fix"], k)

# Bad usage: exit 2 with a message on stderr, nothing on stdout.
for name, args, text in [
        ("bad list", ["--cpus", "3-1", "--root", os.path.join(fixtures, "sysfs-1s8c")], "reversed"),
        ("empty list", ["--cpus", "", "--root", os.path.join(fixtures, "sysfs-1s8c")], "empty"),
        ("offline cpu", ["--cpus", "8", "--root", os.path.join(fixtures, "sysfs-1s8c")],
         "cpu 8 is not online"),
        ("unknown option", ["--frobnicate"], "unknown option --frobnicate"),
        ("missing argument", ["--cpus"], "--cpus needs an argument"),
        ("extra argument", ["extra"], "unexpected argument"),
        ("missing root", ["--root", "/nonexistent/pel-root"], "cannot open /nonexistent"),
        ("bad root", ["--root", os.path.join(fixtures, "sysfs-bad")], "not a CPU list")]:
    rc, out, err = run(*args)
    check(f"usage {name}: exit 2", rc == 2 and out == "" and text in err,
          f"exit {rc}, stdout {out[:80]!r}, stderr {err!r}")

# Text output on a tree: one line per check and the verdict last.
rc, out, err = run("--root", os.path.join(fixtures, "sysfs-epyc-4n"))
lines = out.splitlines()
check("text: verdict line", rc == 1 and lines[-1].startswith("ready: no"), out[-200:])
check("text: fix lines", any(l.strip().startswith("fix: cpupower") for l in lines), out[:400])

# Checks that do not fit in the table: reported as one failed "internal" entry after the rest.
if exe_table4:
    tree = os.path.join(fixtures, "sysfs-2s32c-smt")
    rc, out, err = run("--json", "--root", tree, prog=exe_table4)
    try:
        doc = json.loads(out)
        ids = [c["id"] for c in doc["checks"]]
        last = doc["checks"][-1]
        check("table of 4: the first 4 checks, then internal, not ready",
              rc == 1 and not doc["ready"] and ids == IDS[:4] + ["internal"]
              and last["status"] == "fail" and "13 check(s) from governor on did not fit"
              in last["detail"] and last["fix"], f"exit {rc}, {out[-400:]!r}, {err!r}")
    except ValueError as e:
        check("table of 4: valid JSON", False, f"{e}: exit {rc}, {out[:200]!r} {err!r}")
    rc, out, err = run("--root", tree, prog=exe_table4)
    lines = out.splitlines()
    check("table of 4: text has the internal line and the verdict",
          rc == 1 and any(l.startswith("fail  internal") for l in lines)
          and lines[-1] == "ready: no (1 failed, 1 warned, 3 ok)", out[-600:])
else:
    print("SKIP table of 4: no PEL_CHECK_TABLE4 given")

# The live host: runs, valid JSON, exit 0 or 1.
rc, out, err = run("--json")
try:
    doc = json.loads(out)
    ok = rc in (0, 1) and [c["id"] for c in doc["checks"]] == IDS and doc["ready"] == (rc == 0)
    check("live host", ok, f"exit {rc}, {out[:200]!r}, {err!r}")
except ValueError as e:
    check("live host valid JSON", False, f"{e}: exit {rc}, {out[:200]!r} {err!r}")

print(f"{failed} failed")
sys.exit(1 if failed else 0)
