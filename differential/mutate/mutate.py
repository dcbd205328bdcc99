#!/usr/bin/env python3
"""Mutation testing of ioas: plant one small bug at a time, rebuild, run the tests.

A mutant is one edit of one source line by one rule (below). For each mutant
of the sample the tool writes the mutated file, rebuilds incrementally in a
build dir, runs a ctest selection, writes the original back, and reports
  killed      the build succeeded and a test failed,
  timeout     the tests ran past --timeout (counted as killed: the suite
              noticed something; a build only times out after an hour),
  survived    the build succeeded and every test passed,
  stillborn   the mutant does not compile (left out of the score),
  equivalent  the site is listed in equivalent.txt with the reason no test
              can tell it apart (left out of the score; it is still run unless
              --skip-equivalent, and a listed mutant that is killed is
              reported so the list can be corrected).
The last line is
  mutation score: K killed / V viable (S survived, E equivalent excluded, B stillborn) = P%
with V = K + S (killed includes timeouts).

Restoring. The original bytes are kept in memory and in a journal file in the
build dir before a mutant is written; they are written back in a `finally`
(and on SIGTERM/SIGINT/SIGHUP, and by atexit), and the file's SHA-256 is
checked afterwards. A run killed with SIGKILL leaves the journal behind: the
next run restores from it before anything else (or run --restore).

Rules (a site is a place on a line where a rule applies):
  rel       <  <->  <=,   >  <->  >=,   ==  <->  !=
  logic     &&  <->  ||
  plus1     `+ 1` dropped, or turned into `- 1`
  minus1    `- 1` dropped, or turned into `+ 1`
  const     an integer literal n -> n + 1 and n -> n - 1 (n > 0)
  not       a `!` before an operand removed
  cond      the condition of an `if (...)` forced to true, and to false
Skipped: comments, string and character literals, preprocessor lines
(#include, #define, ...), static_assert lines, template brackets
(`std::vector<T>`, `static_cast<u64>(x)`, `template <typename W>`) and
anything inside them, shifts (`<<`, `>>`, `<<=`, `>>=`), `->`, `<=>`, and
operators written without spaces around them (the project's format puts
spaces around every binary operator, never around template brackets).

Standard library only (python3 from Debian).
"""

import argparse
import atexit
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EQUIVALENT_FILE = os.path.join(HERE, "equivalent.txt")

# What the mutants live in, relative to the repository root.
SOURCE_DIRS = ["impl", "hw", "uapi"]
SOURCE_FILES = ["include/ioas/arith.hpp"]
SOURCE_EXTS = (".cpp", ".hpp", ".h", ".cc")
# Inside SOURCE_DIRS: tests and fuzz drivers (code that tests, not code
# under test), and the parts of hw/ that need a VM, KVM or TCG guest (not run
# by the default selection, so every mutant would live).
SKIP_PARTS = ("/tests/", "/fuzz/", "hw/kvm/", "hw/tcg/", "hw/vfio/", "hw/vm/")

# The default ctest selection: the differential and rule tests of the
# engine and the page tables, the fail-nth sweeps (seconds each: they are
# the only tests that reach the undo paths taken when the heap runs out),
# without the long stress, extremes, VM and TCG tests and the benchmarks'
# smoke runs. Measured on the project's 2-core
# machine: see the README's "Mutation testing" section.
# The uAPI's tests without the kernel's selftest (minutes per engine).
DEFAULT_TESTS = r"^(impl|lockstep|corpus|hw|capi|uapi)\."
DEFAULT_EXCLUDE = (r"(Stress|stress|Extremes|Exhaustive|tcg|Tcg|TCG|Kvm|KVM|^hw\.vfio\.|bench"
                   r"|^uapi\.Selftest\.)")
DEFAULT_TARGETS = ["ioas_impl_tests", "ioas_impl_spec_tests", "ioas_capi_tests",
                   "ioas_lockstep_tests", "ioas", "ioas_hw_tests",
                   "ioas_uapi_tests", "ioas_iommufd_preload", "ioas_uapi_preload_check",
                   "ioas_fail_nth_tests", "ioas_heap_fail_nth_tests", "ioas_uapi_fail_nth_tests",
                   "ioas_uapi_heap_fail_nth_tests"]


# ---------------------------------------------------------------- lexing

def mask_code(lines):
    """For each line, the line with comments, string and char literals
    replaced by spaces (same length), so rules only see code. Block comments
    may span lines."""
    out = []
    in_block = False
    for line in lines:
        chars = list(line)
        i = 0
        n = len(line)
        while i < n:
            if in_block:
                end = line.find("*/", i)
                stop = n if end < 0 else end + 2
                for k in range(i, stop):
                    chars[k] = " "
                in_block = end < 0
                i = stop
                continue
            c = line[i]
            if line.startswith("//", i):
                for k in range(i, n):
                    chars[k] = " "
                break
            if line.startswith("/*", i):
                in_block = True
                continue
            if c == '"' or (c == "'" and not (i > 0 and line[i - 1].isalnum())):
                # A string or char literal (a ' after a digit is a separator).
                if c == '"' and i > 0 and line[i - 1] == "R":
                    # Raw strings are rare here: blank the rest of the line.
                    for k in range(i, n):
                        chars[k] = " "
                    break
                j = i + 1
                while j < n and line[j] != c:
                    j += 2 if line[j] == "\\" else 1
                stop = min(j + 1, n)
                for k in range(i, stop):
                    chars[k] = " "
                i = stop
                continue
            i += 1
        out.append("".join(chars))
    return out


OPERATORS = ["<<=", ">>=", "<=>", "<<", ">>", "<=", ">=", "->", "==", "!=", "&&", "||",
             "<", ">", "!", "+", "-", "(", ")"]
IDENT_CHAR = re.compile(r"[A-Za-z0-9_]")


def tokens(code):
    """(pos, op) for every operator token of OPERATORS in `code`, longest
    match first; identifiers and numbers are skipped."""
    i, n = 0, len(code)
    while i < n:
        if IDENT_CHAR.match(code[i]):
            j = i
            while j < n and (IDENT_CHAR.match(code[j]) or code[j] == "'"):
                j += 1
            i = j
            continue
        for op in OPERATORS:
            if code.startswith(op, i):
                yield i, op
                i += len(op)
                break
        else:
            i += 1


def template_spans(code):
    """Positions of tokens that are template brackets or lie inside them.
    A `<` opens a template when it follows an identifier with no space
    (`vector<`, `static_cast<`) or the keyword `template`."""
    inside = set()
    depth = 0
    for pos, op in tokens(code):
        if op == "<":
            before = code[:pos]
            if (before and IDENT_CHAR.match(before[-1])) or before.rstrip().endswith("template"):
                depth += 1
                inside.add(pos)
                continue
        if depth > 0:
            inside.add(pos)
            if op == ">":
                depth -= 1
            elif op == ">>":
                depth = max(0, depth - 2)
    return inside


def spaced(code, pos, op):
    """True when op at pos has whitespace (or the line's edge) on both sides."""
    before = code[pos - 1] if pos > 0 else " "
    after = code[pos + len(op)] if pos + len(op) < len(code) else " "
    return before.isspace() and after.isspace()


REL_SWAP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
LOGIC_SWAP = {"&&": "||", "||": "&&"}
INT_LIT = re.compile(r"(?<![A-Za-z0-9_.'])(0[xX][0-9a-fA-F']+|[0-9][0-9']*)([uUlL]*)(?![A-Za-z0-9_.'])")


def matching_paren(code, open_pos):
    depth = 0
    for k in range(open_pos, len(code)):
        if code[k] == "(":
            depth += 1
        elif code[k] == ")":
            depth -= 1
            if depth == 0:
                return k
    return -1


def line_sites(text, code):
    """Every (rule, col, old, new) of one line. `text` is the real line,
    `code` the masked one (same length)."""
    stripped = code.strip()
    if not stripped or stripped.startswith("#") or "static_assert" in code:
        return []
    sites = []
    tmpl = template_spans(code)
    for pos, op in tokens(code):
        if pos in tmpl:
            continue
        if op in REL_SWAP and spaced(code, pos, op):
            sites.append(("rel", pos, op, REL_SWAP[op]))
        elif op in LOGIC_SWAP and spaced(code, pos, op):
            sites.append(("logic", pos, op, LOGIC_SWAP[op]))
        elif op == "!":
            nxt = code[pos + 1:pos + 2]
            if nxt and (IDENT_CHAR.match(nxt) or nxt in "(*!"):
                sites.append(("not", pos, "!", ""))
        elif op in ("+", "-") and spaced(code, pos, op):
            m = re.match(r"\s1(?![A-Za-z0-9_.'xX])", code[pos + 1:])
            if m and code[pos + 1:].startswith(" 1"):
                rule = "plus1" if op == "+" else "minus1"
                old = op + " 1"
                # Drop " + 1" including the space before it.
                sites.append((rule + "-drop", pos - 1, " " + old, ""))
                sites.append((rule + "-flip", pos, old, ("- 1" if op == "+" else "+ 1")))
    # Integer constants (not the 1 of `+ 1` / `- 1`, already covered).
    for m in INT_LIT.finditer(code):
        pos = m.start()
        if _inside_template(code, pos):
            continue
        before = code[:pos].rstrip()
        if before.endswith("+") or before.endswith("-"):
            if m.group(1) == "1":
                continue
        if re.match(r"\s*;", code[m.end():]) and before.endswith("=") and re.search(r"\)\s*(const\s*)?(override\s*)?=$", before):
            continue  # a pure virtual's `= 0`
        lit, suffix = m.group(1), m.group(2)
        digits = lit.replace("'", "")
        value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
        if digits.startswith("0") and len(digits) > 1 and digits[1] not in "xX":
            continue  # octal: leave alone
        fmt = (lambda v: hex(v)) if digits[:2] in ("0x", "0X") else str
        old = m.group(0)
        sites.append(("const+1", pos, old, fmt(value + 1) + suffix))
        if value > 0:
            sites.append(("const-1", pos, old, fmt(value - 1) + suffix))
    # if (...) forced true and false.
    for m in re.finditer(r"\bif\s*\(", code):
        if code[m.end():].lstrip().startswith("constexpr"):
            continue
        open_pos = m.end() - 1
        close = matching_paren(code, open_pos)
        if close < 0:
            continue  # the condition goes on past this line
        cond = text[open_pos + 1:close]
        if ";" in code[open_pos + 1:close] or cond.strip() in ("true", "false"):
            continue  # an init-statement, or already constant
        for value in ("true", "false"):
            sites.append(("cond-" + value, open_pos + 1, cond, value))
    sites.sort(key=lambda s: (s[1], s[0]))
    return sites


def _inside_template(code, pos):
    """True when pos lies between a template's < and its >."""
    depth = 0
    for p, op in tokens(code[:pos]):
        if op == "<":
            before = code[:p]
            if (before and IDENT_CHAR.match(before[-1])) or before.rstrip().endswith("template"):
                depth += 1
                continue
        if depth > 0 and op == ">":
            depth -= 1
        elif depth > 0 and op == ">>":
            depth = max(0, depth - 2)
    return depth > 0


# ---------------------------------------------------------------- mutants

class Mutant:
    def __init__(self, path, lineno, rule, col, old, new, line, occurrence):
        self.path = path            # relative to the root
        self.lineno = lineno        # 1-based
        self.rule = rule
        self.col = col
        self.old = old
        self.new = new
        self.line = line            # the original line, without newline
        self.occurrence = occurrence  # index among this rule's sites on this line

    def mutated_line(self):
        return self.line[:self.col] + self.new + self.line[self.col + len(self.old):]

    def key(self):
        """Robust to line-number drift: file, rule, occurrence, line text."""
        return (self.path, self.rule, self.occurrence, self.line.strip())

    def where(self):
        return "%s:%d" % (self.path, self.lineno)

    def describe(self):
        return "%s [%s] %s  =>  %s" % (self.where(), self.rule, self.line.strip(), self.mutated_line().strip())


def file_mutants(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        lines = f.read().split("\n")
    masked = mask_code(lines)
    out = []
    for i, (text, code) in enumerate(zip(lines, masked)):
        seen = {}
        for rule, col, old, new in line_sites(text, code):
            if text[col:col + len(old)] != old:
                continue  # masked text differs from the real one: skip
            occ = seen.get(rule, 0)
            seen[rule] = occ + 1
            out.append(Mutant(rel, i + 1, rule, col, old, new, text, occ))
    return out


def source_files(root, only=None):
    files = []
    for d in SOURCE_DIRS:
        base = os.path.join(root, d)
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                rel = os.path.relpath(os.path.join(dirpath, fn), root)
                if fn.endswith(SOURCE_EXTS) and not any(p in "/" + rel + "/" or rel.startswith(p) for p in SKIP_PARTS):
                    files.append(rel)
    for rel in SOURCE_FILES:
        if os.path.exists(os.path.join(root, rel)):
            files.append(rel)
    files = sorted(set(files))
    if only:
        want = [os.path.normpath(p) for p in only]
        files = [f for f in files if any(f == w or f.startswith(w.rstrip("/") + "/") for w in want)]
    return files


def all_mutants(root, only=None):
    out = []
    for rel in source_files(root, only):
        out.extend(file_mutants(root, rel))
    return out


def choose(mutants, seed, n):
    """n mutants drawn without replacement, deterministic for a seed and a tree,
    in source order."""
    if n is None or n >= len(mutants):
        return list(mutants)
    idx = sorted(random.Random(seed).sample(range(len(mutants)), n))
    return [mutants[i] for i in idx]


# ---------------------------------------------------------------- equivalents

def load_equivalents(path):
    """equivalent.txt: for each entry, one line
         FILE :: RULE #OCCURRENCE :: LINE TEXT
       and one line, indented, starting with `because:` (the argument).
    Returns {key: argument}."""
    eq = {}
    if not os.path.exists(path):
        return eq
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    pending = None
    for n, raw in enumerate(lines, 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[:1].isspace():
            body = raw.strip()
            if pending is None or not body.startswith("because:"):
                raise SystemExit("%s:%d: expected `FILE :: RULE #N :: LINE` before `because:`" % (path, n))
            eq[pending] = body[len("because:"):].strip()
            pending = None
            continue
        if pending is not None:
            raise SystemExit("%s:%d: the entry before this line has no `because:` argument" % (path, n))
        parts = raw.split(" :: ", 2)
        m = re.match(r"^(\S+) #(\d+)$", parts[1].strip()) if len(parts) == 3 else None
        if not m:
            raise SystemExit("%s:%d: expected `FILE :: RULE #N :: LINE TEXT`" % (path, n))
        pending = (parts[0].strip(), m.group(1), int(m.group(2)), parts[2].strip())
    if pending is not None:
        raise SystemExit("%s: the last entry has no `because:` argument" % path)
    return eq


def equivalent_entry(m):
    path, rule, occ, text = m.key()
    return "%s :: %s #%d :: %s" % (path, rule, occ, text)


# ---------------------------------------------------------------- restoring

class Restorer:
    """Writes a mutant and guarantees the original comes back."""

    def __init__(self, root, journal):
        self.root = root
        self.journal = journal
        self.active = None  # (abs path, original bytes, sha256)
        atexit.register(self.restore)

    def recover(self):
        """Restores a file left mutated by a run that was killed outright."""
        if not os.path.exists(self.journal):
            return None
        with open(self.journal, "rb") as f:
            data = f.read()
        header, _, original = data.partition(b"\n")
        rel, digest = header.decode().split("\t")
        if hashlib.sha256(original).hexdigest() != digest:
            raise SystemExit("journal %s is damaged; restore %s with git" % (self.journal, rel))
        with open(os.path.join(self.root, rel), "wb") as f:
            f.write(original)
        os.remove(self.journal)
        return rel

    def write(self, rel, original, mutated):
        path = os.path.join(self.root, rel)
        digest = hashlib.sha256(original).hexdigest()
        os.makedirs(os.path.dirname(self.journal), exist_ok=True)
        tmp = self.journal + ".tmp"
        with open(tmp, "wb") as f:
            f.write(rel.encode() + b"\t" + digest.encode() + b"\n" + original)
        os.replace(tmp, self.journal)
        self.active = (path, original, digest)
        with open(path, "wb") as f:
            f.write(mutated)

    def restore(self):
        if self.active is None:
            return
        path, original, digest = self.active
        with open(path, "wb") as f:
            f.write(original)
        with open(path, "rb") as f:
            back = f.read()
        if hashlib.sha256(back).hexdigest() != digest:
            raise RuntimeError("could not restore %s (checksum differs); the journal %s keeps the original"
                               % (path, self.journal))
        self.active = None
        if os.path.exists(self.journal):
            os.remove(self.journal)


def on_signals(restorer):
    def handler(signum, frame):
        restorer.restore()
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


# ---------------------------------------------------------------- running

KILLED, SURVIVED, STILLBORN, TIMEOUT, EQUIVALENT = "killed", "survived", "stillborn", "timeout", "equivalent"


def run_cmd(cmd, timeout, cwd, tail=3000):
    """(returncode or None on timeout, output: its last `tail` characters,
    all of it for None). Kills the whole process group on timeout."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        out = out.decode(errors="replace")
        return p.returncode, (out if tail is None else out[-tail:])
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None, ""
    except BaseException:
        # Ctrl-C or SIGTERM: the build or ctest runs in its own session, so
        # it would outlive us; end it before the file is restored.
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise


class Runner:
    """The plain runner: build every target, run the whole selection.
    evaluate() -> (status, detail); build() -> (ok|None on timeout, log);
    test() -> (passed|None, log)."""

    def __init__(self, args):
        self.a = args

    def build(self, timeout, targets=None):
        cmd = ["nice", "-n", str(self.a.nice), "cmake", "--build", self.a.build, "-j", str(self.a.jobs)]
        for t in (targets or self.a.targets):
            cmd += ["--target", t]
        rc, log = run_cmd(cmd, timeout, ROOT)
        return (None if rc is None else rc == 0), log

    def ctest(self, timeout, selection):
        cmd = ["nice", "-n", str(self.a.nice), "ctest", "--test-dir", self.a.build, "-j", str(self.a.jobs),
               "--stop-on-failure", "--timeout", str(int(timeout))] + selection
        rc, log = run_cmd(cmd, timeout, ROOT, tail=None)
        return (None if rc is None else rc == 0), log

    def test(self, timeout):
        return self.ctest(timeout, ["-R", self.a.tests] + (["-E", self.a.exclude] if self.a.exclude else []))

    def evaluate(self, timeout, path):
        return evaluate_plain(self, timeout)


# A build that runs this long hangs (a mutant in a constant evaluated at
# compile time can do that).
BUILD_TIMEOUT = 3600


def evaluate_plain(runner, timeout):
    """Build, then test (`timeout` bounds the tests): (status, detail)."""
    ok, blog = runner.build(BUILD_TIMEOUT)
    if ok is None:
        return TIMEOUT, "build ran past %ds" % BUILD_TIMEOUT
    if not ok:
        return STILLBORN, first_error(blog)
    passed, tlog = runner.test(timeout)
    if passed is None:
        return TIMEOUT, "tests ran past the timeout"
    if not passed:
        return KILLED, first_failure(tlog)
    return SURVIVED, ""


# ---------------------------------------------------------------- staged runs
#
# A mutant touches one file. The selection's programs it reaches are those
# with an object whose dependencies (ninja's deps log: the source and every
# header it included) hold the file; the objects of a program, its static
# libraries' included, are `ninja -t inputs`. Only those programs are built and only their tests run, program by
# program, the cheapest first (by the unmutated run's test times), each
# program's fast tests before its slow ones, and the first failure ends the
# mutant.

CTEST_LINE = re.compile(r"Test\s+#(\d+): (\S+) \.*\s*(?:\*+)?(\w[\w ]*?)\s+([0-9.]+) sec")
FAST_TEST_SECONDS = 2.0


def ctest_times(log):
    """{test number: seconds} of the tests that passed in a ctest log."""
    out = {}
    for m in CTEST_LINE.finditer(log):
        if m.group(3).strip() == "Passed":
            out[int(m.group(1))] = float(m.group(4))
    return out


def test_artifacts(command, build):
    """The build dir's files a test's command names (its programs and
    libraries), relative to the build dir."""
    out = []
    prefix = build.rstrip("/") + "/"
    for arg in command:
        if arg.startswith(prefix) and os.path.isfile(arg) and not arg.endswith((".trace", ".txt", ".cmake")):
            out.append(arg[len(prefix):])
    return tuple(sorted(set(out)))


def parse_deps(log, build):
    """{object: {absolute paths of its source and headers}} from `ninja -t deps`."""
    out = {}
    obj = None
    for line in log.splitlines():
        if not line.strip():
            continue
        if not line[:1].isspace():
            obj = line.split(":", 1)[0]
            out[obj] = set()
        elif obj is not None:
            out[obj].add(os.path.normpath(os.path.join(build, line.strip())))
    return out


def reaching(objects, deps, path):
    """The artifacts (keys of `objects`: {artifact: [its objects]}) with an
    object that depends on `path` (absolute)."""
    return {a for a, objs in objects.items() if any(path in deps.get(o, ()) for o in objs)}


class Plan:
    """The selection's tests: number (ctest's), name, artifacts, seconds."""

    def __init__(self, tests):
        self.tests = tests  # list of (number, name, artifacts)
        self.seconds = {}
        self.objects = {}   # artifact: its objects
        self.deps = {}      # object: the files it was compiled from

    def load_graph(self, build):
        """Reads which objects each artifact links and what each object was
        compiled from, from ninja."""
        for a in self.artifacts():
            rc, log = run_cmd(["ninja", "-C", build, "-t", "inputs", a], 120, ROOT, tail=None)
            if rc != 0:
                raise SystemExit("ninja -t inputs %s failed:\n%s" % (a, log[-2000:]))
            self.objects[a] = [x for x in log.split() if x.endswith(".o")]
        rc, log = run_cmd(["ninja", "-C", build, "-t", "deps"], 120, ROOT, tail=None)
        if rc != 0:
            raise SystemExit("ninja -t deps failed:\n" + log[-2000:])
        self.deps = parse_deps(log, build)

    @staticmethod
    def load(build, include, exclude):
        rc, log = run_cmd(["ctest", "--test-dir", build, "--show-only=json-v1"], 600, ROOT, tail=None)
        if rc != 0:
            raise SystemExit("ctest --show-only failed:\n" + log[-2000:])
        data = json.loads(log[log.index("{"):])
        tests = []
        for number, t in enumerate(data["tests"], 1):
            name = t["name"]
            if not re.search(include, name) or (exclude and re.search(exclude, name)):
                continue
            tests.append((number, name, test_artifacts(t.get("command") or [], build)))
        plan = Plan(tests)
        plan.load_graph(build)
        return plan

    def artifacts(self):
        return sorted({a for _, _, arts in self.tests for a in arts})

    def stages(self, touched, near=""):
        """[(artifacts to build, [test numbers])] for the tests whose
        artifacts are in `touched`: first every program's fast tests, then
        the slow ones; programs in the folder `near` (the mutated file's)
        first, then the cheapest."""
        groups = {}
        for number, _, arts in self.tests:
            if arts and set(arts) & touched:
                groups.setdefault(arts, []).append(number)
        cost = lambda n: self.seconds.get(n, FAST_TEST_SECONDS)
        order = lambda g: (not (near and g[0][0].startswith(near + "/")), sum(map(cost, g[1])), g[0])
        fast, slow = [], []
        for arts, numbers in sorted(groups.items(), key=order):
            numbers.sort(key=lambda n: (cost(n), n))
            for batches, pick in ((fast, lambda n: cost(n) < FAST_TEST_SECONDS),
                                  (slow, lambda n: cost(n) >= FAST_TEST_SECONDS)):
                batch = [n for n in numbers if pick(n)]
                if batch:
                    batches.append((list(arts), batch))
        return fast + slow


class StagedRunner(Runner):
    """Builds and tests only what the mutated file reaches (see above)."""

    def __init__(self, args, plan):
        super().__init__(args)
        self.plan = plan

    def evaluate(self, timeout, path):
        """`timeout` bounds the time in tests (a mutant that makes them hang
        is caught); builds, however many programs a header reaches, only
        have BUILD_TIMEOUT."""
        spent = 0.0
        left = lambda: timeout - spent
        near = os.path.relpath(path, ROOT).split(os.sep)[0]
        stages = self.plan.stages(reaching(self.plan.objects, self.plan.deps, path), near)
        if not stages:
            return SURVIVED, "no selected test's program links this file"
        built = set()
        for arts, numbers in stages:
            need = [a for a in arts if a not in built]
            if need:
                ok, blog = self.build(BUILD_TIMEOUT, targets=need)
                if ok is None:
                    return TIMEOUT, "build ran past %ds" % BUILD_TIMEOUT
                if not ok:
                    return STILLBORN, first_error(blog)
                built.update(need)
            if left() < 5:
                return TIMEOUT, "tests ran past the timeout"
            t0 = time.monotonic()
            passed, tlog = self.ctest(left(), ["-I", "0,0,0," + ",".join(map(str, numbers))])
            spent += time.monotonic() - t0
            if passed is None:
                return TIMEOUT, "tests ran past the timeout"
            if not passed:
                return KILLED, first_failure(tlog)
        return SURVIVED, ""


# Where a failing lockstep campaign writes its shrunk counterexample (the
# source tree's corpus): files a mutant's run adds there are removed.
WRITTEN_BY_TESTS = ["differential/corpus"]


def listing(root):
    out = set()
    for d in WRITTEN_BY_TESTS:
        full = os.path.join(root, d)
        if os.path.isdir(full):
            out.update(os.path.join(full, f) for f in os.listdir(full))
    return out


def run_mutant(m, restorer, runner, root, timeout, log=print):
    """Plants m, builds, tests, restores. Returns (status, detail, seconds)."""
    before = listing(root)
    try:
        return _run_mutant(m, restorer, runner, root, timeout)
    finally:
        for f in sorted(listing(root) - before):
            os.remove(f)


def _run_mutant(m, restorer, runner, root, timeout):
    path = os.path.join(root, m.path)
    with open(path, "rb") as f:
        original = f.read()
    lines = original.decode("utf-8").split("\n")
    if lines[m.lineno - 1] != m.line:
        return STILLBORN, "the line changed since the sites were listed", 0.0
    lines[m.lineno - 1] = m.mutated_line()
    t0 = time.monotonic()
    try:
        restorer.write(m.path, original, "\n".join(lines).encode("utf-8"))
        status, detail = runner.evaluate(timeout, os.path.normpath(path))
        return status, detail, time.monotonic() - t0
    finally:
        restorer.restore()


def first_error(log):
    for line in log.splitlines():
        if "error:" in line:
            return line.strip()[:200]
    return "build failed"


def first_failure(log):
    for line in log.splitlines():
        if "***Failed" in line or "(Failed)" in line or "***Exception" in line or "Timeout" in line:
            return line.strip()[:200]
    return "a test failed"


def score_line(results):
    k = sum(1 for s, _ in results if s in (KILLED, TIMEOUT))
    s = sum(1 for st, _ in results if st == SURVIVED)
    e = sum(1 for st, _ in results if st == EQUIVALENT)
    b = sum(1 for st, _ in results if st == STILLBORN)
    v = k + s
    p = 100.0 * k / v if v else 100.0
    return k, v, p, "mutation score: %d killed / %d viable (%d survived, %d equivalent excluded, %d stillborn) = %.1f%%" % (
        k, v, s, e, b, p)


def run_sample(sample, equivalents, restorer, runner, root, timeout, skip_equivalent, out=print,
               done=None, record=None):
    """Runs the sample. `done` maps a mutant's key to the (status, detail,
    seconds) of an earlier run, which is reused unless the mutant survived
    (a test may have been added since); `record(m, status, detail, seconds)`
    is called after each mutant that ran."""
    results = []
    times = []
    for i, m in enumerate(sample, 1):
        eq = equivalents.get(m.key())
        if done and m.key() in done and done[m.key()][0] != SURVIVED:
            status, detail, secs = done[m.key()]
            results.append((status, m))
            out("[%d/%d] %-10s %s  (%.0fs, an earlier run)" % (i, len(sample), status, m.describe(), secs))
            continue
        if eq is not None and skip_equivalent:
            status, detail, secs = EQUIVALENT, eq, 0.0
        else:
            status, detail, secs = run_mutant(m, restorer, runner, root, timeout)
            if eq is not None:
                if status in (KILLED, TIMEOUT):
                    detail = "LISTED AS EQUIVALENT BUT KILLED: remove it from equivalent.txt (" + detail + ")"
                elif status == SURVIVED:
                    status, detail = EQUIVALENT, eq
            times.append(secs)
            if record:
                record(m, status, detail, secs)
        results.append((status, m))
        out("[%d/%d] %-10s %s  (%.0fs)" % (i, len(sample), status, m.describe(), secs))
        if detail and status != SURVIVED:
            out("           %s" % detail)
        sys.stdout.flush()
    return results, times


def load_results(path):
    """{key: (status, detail, seconds)} from a --results file (JSON lines)."""
    done = {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                if raw.strip():
                    try:
                        r = json.loads(raw)
                        done[tuple(r["key"])] = (r["status"], r["detail"], r["seconds"])
                    except (ValueError, KeyError, TypeError):
                        raise SystemExit("%s:%d: not a result line" % (path, n))
    return done


def result_recorder(path):
    def record(m, status, detail, secs):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": list(m.key()), "where": m.describe(), "status": status,
                                "detail": detail, "seconds": round(secs, 1)}) + "\n")
    return record


SITE = re.compile(r"^(.+?):(\d+)(?::([\w+-]+?)(?:#(\d+))?)?$")


def pick_sites(mutants, specs):
    """The mutants named by FILE:LINE[:RULE[#OCCURRENCE]] specs, in order;
    a spec that names none is an error."""
    out = []
    for spec in specs:
        m = SITE.match(spec)
        if not m:
            raise SystemExit("--site %s: expected FILE:LINE[:RULE[#N]]" % spec)
        path, line, rule, occ = os.path.normpath(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        hit = [x for x in mutants if x.path == path and x.lineno == line and (rule is None or x.rule == rule)
               and (occ is None or x.occurrence == int(occ))]
        if not hit:
            raise SystemExit("--site %s: no mutant site there" % spec)
        out.extend(x for x in hit if x not in out)
    return out


# ---------------------------------------------------------------- self-test

FIXTURE = """\
// A fixture for mutate.py --self-test: a comment with a < b and x + 1 and "s".
#include <vector>
#include "ioas/arith.hpp"
template <typename W>
W f(const std::vector<W>& v, W a, W b) {
  auto c = static_cast<unsigned long>(a) << 3;  // shift only: no site
  if (a < b && !v.empty()) return a + 1;
  const char* s = "a <= b || c";  /* a block
  comment: a == b */
  return p->x >= 4 ? b - 1 : c >> 2;
  std::vector<std::vector<W> > nested(2); std::array<W, 4> arr;
}
"""

# (line, rule, the mutated line's code) expected from FIXTURE, in order.
FIXTURE_EXPECT = [
    (6, "const+1", "auto c = static_cast<unsigned long>(a) << 4;"),
    (6, "const-1", "auto c = static_cast<unsigned long>(a) << 2;"),
    (7, "cond-false", "if (false) return a + 1;"),
    (7, "cond-true", "if (true) return a + 1;"),
    (7, "rel", "if (a <= b && !v.empty()) return a + 1;"),
    (7, "logic", "if (a < b || !v.empty()) return a + 1;"),
    (7, "not", "if (a < b && v.empty()) return a + 1;"),
    (7, "plus1-drop", "if (a < b && !v.empty()) return a;"),
    (7, "plus1-flip", "if (a < b && !v.empty()) return a - 1;"),
    (10, "rel", "return p->x > 4 ? b - 1 : c >> 2;"),
    (10, "const+1", "return p->x >= 5 ? b - 1 : c >> 2;"),
    (10, "const-1", "return p->x >= 3 ? b - 1 : c >> 2;"),
    (10, "minus1-drop", "return p->x >= 4 ? b : c >> 2;"),
    (10, "minus1-flip", "return p->x >= 4 ? b + 1 : c >> 2;"),
    (10, "const+1", "return p->x >= 4 ? b - 1 : c >> 3;"),
    (10, "const-1", "return p->x >= 4 ? b - 1 : c >> 1;"),
    (11, "const+1", "std::vector<std::vector<W> > nested(3); std::array<W, 4> arr;"),
    (11, "const-1", "std::vector<std::vector<W> > nested(1); std::array<W, 4> arr;"),
]


class FakeRunner:
    """Build fails when the fixture holds `<= b &&` (a stillborn stand-in);
    tests fail when it holds `a - 1` or `if (false)`; the third test call
    raises KeyboardInterrupt (a Ctrl-C in the middle of a run)."""

    def __init__(self, path):
        self.path = path
        self.calls = 0

    def build(self, timeout):
        with open(self.path) as f:
            return ("<= b &&" not in f.read()), ""

    def evaluate(self, timeout, path):
        return evaluate_plain(self, timeout)

    def test(self, timeout):
        self.calls += 1
        with open(self.path) as f:
            text = f.read()
        corpus = os.path.join(os.path.dirname(os.path.dirname(self.path)), "differential", "corpus")
        with open(os.path.join(corpus, "found-seed%d.trace" % self.calls), "w") as f:
            f.write("# a counterexample\n")
        if self.calls == 3 and getattr(self, "interrupt", False):
            raise KeyboardInterrupt()
        return not ("a - 1" in text or "if (false)" in text), ""


CTEST_LOG = """\
Test project /b
    Start 12: impl.A.fast
 1/3 Test #12: impl.A.fast ......................   Passed    0.05 sec
 2/3 Test  #3: hw.B.slow ........................   Passed    7.50 sec
 3/3 Test #40: corpus.c .........................***Failed    0.20 sec
"""

NINJA_DEPS = """\
impl/CMakeFiles/ioas_impl.dir/space_tree.cpp.o: #deps 3, deps mtime 1 (VALID)
    ../impl/space_tree.cpp
    ../impl/space_tree.hpp
    /usr/include/c++/12/vector

uapi/CMakeFiles/ioas_iommufd.dir/iommufd.cpp.o: #deps 2, deps mtime 1 (VALID)
    ../uapi/iommufd.cpp
    ../impl/space_tree.hpp
"""


def staged_self_test(expect, ms):
    """The pieces of a staged run, a result file and --site on fixtures."""
    expect(ctest_times(CTEST_LOG) == {12: 0.05, 3: 7.5}, "ctest times misread: %s" % ctest_times(CTEST_LOG))
    deps = parse_deps(NINJA_DEPS, "/b/build")
    expect(deps.get("uapi/CMakeFiles/ioas_iommufd.dir/iommufd.cpp.o") == {"/b/uapi/iommufd.cpp", "/b/impl/space_tree.hpp"},
           "ninja deps misread: %s" % deps)
    objects = {"impl/ioas_impl_tests": ["impl/CMakeFiles/ioas_impl.dir/space_tree.cpp.o"],
               "uapi/libioas-iommufd.so": ["uapi/CMakeFiles/ioas_iommufd.dir/iommufd.cpp.o"],
               "hw/ioas_hw_tests": ["hw/CMakeFiles/ioas_hw.dir/radix.cpp.o"]}
    expect(reaching(objects, deps, "/b/impl/space_tree.hpp") == {"impl/ioas_impl_tests", "uapi/libioas-iommufd.so"},
           "a header does not reach every program that includes it")
    expect(reaching(objects, deps, "/b/uapi/iommufd.cpp") == {"uapi/libioas-iommufd.so"},
           "a source reaches programs that do not link it")
    plan = Plan([(1, "impl.slow", ("impl/ioas_impl_tests",)), (2, "impl.fast", ("impl/ioas_impl_tests",)),
                 (3, "hw.x", ("hw/ioas_hw_tests",)), (4, "uapi.preload", ("uapi/check", "uapi/libioas-iommufd.so")),
                 (5, "uapi.y", ("uapi/ioas_uapi_tests",))])
    plan.seconds = {1: 9.0, 2: 0.1, 3: 0.2, 4: 0.5, 5: 0.1}
    got = plan.stages({"impl/ioas_impl_tests", "uapi/libioas-iommufd.so", "hw/ioas_hw_tests"})
    expect(got == [(["hw/ioas_hw_tests"], [3]), (["uapi/check", "uapi/libioas-iommufd.so"], [4]),
                   (["impl/ioas_impl_tests"], [2]), (["impl/ioas_impl_tests"], [1])],
           "stages: only the programs reached, fast tests first, cheapest program first; got %s" % got)
    got = plan.stages({"impl/ioas_impl_tests", "uapi/libioas-iommufd.so", "hw/ioas_hw_tests"}, "impl")
    expect(got[0] == (["impl/ioas_impl_tests"], [2]) and got[-1] == (["impl/ioas_impl_tests"], [1]),
           "stages: the programs of the mutated file's folder do not come first; got %s" % got)
    expect(plan.stages(set()) == [], "a file no program links has stages")
    # --site picks by line, rule and occurrence.
    expect([m.rule for m in pick_sites(ms, ["impl/fixture.cpp:10:const+1"])] == ["const+1", "const+1"],
           "--site FILE:LINE:RULE does not pick every occurrence")
    expect([m.new for m in pick_sites(ms, ["impl/fixture.cpp:10:const+1#1"])] == ["3"],
           "--site FILE:LINE:RULE#N does not pick occurrence N")
    expect(len(pick_sites(ms, ["impl/fixture.cpp:7"])) == 7, "--site FILE:LINE does not pick the whole line")
    try:
        pick_sites(ms, ["impl/fixture.cpp:8"])
        expect(False, "--site on a line without sites is not an error")
    except SystemExit:
        pass
    # A result file: written per mutant, read back for a resumed run.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.jsonl")
        result_recorder(path)(ms[0], KILLED, "a test failed", 12.34)
        result_recorder(path)(ms[1], SURVIVED, "", 50.0)
        done = load_results(path)
        expect(done == {ms[0].key(): (KILLED, "a test failed", 12.3), ms[1].key(): (SURVIVED, "", 50.0)},
               "result file not read back: %s" % done)
        lines = []
        results, times = run_sample(ms[:1], {}, None, None, tmp, 60, False, out=lines.append, done=done)
        expect([s for s, _ in results] == [KILLED] and times == [], "a resumed run does not reuse a recorded kill")
        runner = FakeRunner(os.path.join(tmp, "impl", "fixture.cpp"))
        os.makedirs(os.path.join(tmp, "impl"))
        os.makedirs(os.path.join(tmp, "differential", "corpus"))
        with open(runner.path, "w") as f:
            f.write(FIXTURE)
        results, times = run_sample(ms[1:2], {}, Restorer(tmp, os.path.join(tmp, "journal")), runner, tmp, 60, False,
                                    out=lines.append, done=done)
        expect(len(times) == 1 and runner.calls == 1, "a resumed run does not run a recorded survivor again")


def self_test():
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        rel = "impl/fixture.cpp"
        os.makedirs(os.path.join(tmp, "impl"))
        os.makedirs(os.path.join(tmp, "differential", "corpus"))
        with open(os.path.join(tmp, "differential", "corpus", "kept.trace"), "w") as f:
            f.write("# kept\n")
        path = os.path.join(tmp, rel)
        with open(path, "w") as f:
            f.write(FIXTURE)
        ms = file_mutants(tmp, rel)
        got = [(m.lineno, m.rule, m.mutated_line().split("  //")[0].strip()) for m in ms]
        expect(got == FIXTURE_EXPECT, "sites differ from the expected ones:\n  got      %s\n  expected %s" % (
            "\n           ".join(map(str, got)), "\n           ".join(map(str, FIXTURE_EXPECT))))
        # Nothing in comments, strings, includes, template brackets, shifts, ->.
        expect(all(m.lineno not in (1, 2, 3, 4, 5, 8, 9) for m in ms), "a site in a comment/include/template line")
        expect(not any(m.old in ("<<", ">>", "->") for m in ms), "a shift or -> was mutated")
        # Keys survive a line-number shift.
        with open(path, "w") as f:
            f.write("// one more line\n" + FIXTURE)
        shifted = file_mutants(tmp, rel)
        expect([m.key() for m in shifted] == [m.key() for m in ms], "site keys changed with a line shift")
        expect(shifted[0].lineno == ms[0].lineno + 1, "line numbers did not follow the shift")
        with open(path, "w") as f:
            f.write(FIXTURE)
        # Sampling is deterministic for a seed.
        expect([m.describe() for m in choose(ms, 5, 4)] == [m.describe() for m in choose(ms, 5, 4)],
               "the sample differs between two runs with one seed")
        expect(len(choose(ms, 5, 4)) == 4 and len(choose(ms, 5, 100)) == len(ms), "wrong sample size")
        # Equivalents: parsed, matched by key, excluded from the score.
        eqfile = os.path.join(tmp, "equivalent.txt")
        plus_drop = [m for m in ms if m.rule == "plus1-drop"][0]
        with open(eqfile, "w") as f:
            f.write("# comment\n%s\n  because: the fixture says so\n" % equivalent_entry(plus_drop))
        eq = load_equivalents(eqfile)
        expect(eq.get(plus_drop.key()) == "the fixture says so", "equivalent.txt entry not parsed")
        # A run over every mutant with a fake build and test.
        journal = os.path.join(tmp, "build", "mutate.journal")
        restorer = Restorer(tmp, journal)
        runner = FakeRunner(path)
        lines = []
        results, _ = run_sample(ms, eq, restorer, runner, tmp, 60, False, out=lines.append)
        with open(path) as f:
            expect(f.read() == FIXTURE, "the fixture was not restored after the run")
        expect(os.listdir(os.path.join(tmp, "differential", "corpus")) == ["kept.trace"],
               "a counterexample written by a mutant's test run was left behind")
        expect(not os.path.exists(journal), "the journal was left behind")
        status = {(m.lineno, m.rule, m.occurrence): s for s, m in results}
        expect(status[(7, "rel", 0)] == STILLBORN, "a mutant that does not build is not stillborn")
        expect(status[(7, "plus1-flip", 0)] == KILLED, "a mutant the test sees is not killed")
        expect(status[(7, "cond-false", 0)] == KILLED, "cond-false not killed")
        expect(status[(7, "plus1-drop", 0)] == EQUIVALENT, "a listed equivalent is not excluded")
        expect(status[(7, "logic", 0)] == SURVIVED, "a mutant no test sees does not survive")
        k, v, p, line = score_line(results)
        n_k = sum(1 for s, _ in results if s == KILLED)
        n_s = sum(1 for s, _ in results if s == SURVIVED)
        expect(k == n_k == 2 and v == n_k + n_s and line.endswith("= %.1f%%" % (100.0 * k / v)),
               "score line wrong: " + line)
        expect(line == "mutation score: 2 killed / %d viable (%d survived, 1 equivalent excluded, 1 stillborn) = %.1f%%"
               % (v, n_s, 100.0 * 2 / v), "score line wrong: " + line)
        # Ctrl-C in the middle of a mutant: the file comes back.
        runner = FakeRunner(path)
        runner.interrupt = True
        try:
            run_sample(ms, {}, restorer, runner, tmp, 60, False, out=lambda s: None)
            failures.append("the interrupt did not propagate")
        except KeyboardInterrupt:
            pass
        with open(path) as f:
            expect(f.read() == FIXTURE, "the fixture was not restored after an interrupt")
        # A run killed outright leaves a journal; the next run restores.
        restorer.write(rel, FIXTURE.encode(), b"garbage")
        restorer.active = None  # as if the process had died here
        expect(Restorer(tmp, journal).recover() == rel, "recover() did not restore from the journal")
        with open(path) as f:
            expect(f.read() == FIXTURE, "the journal did not bring the original back")
    staged_self_test(expect, ms)
    # The project's own sources have sites of every rule, and the listed
    # equivalents all still exist.
    real = all_mutants(ROOT)
    rules = {m.rule for m in real}
    for r in ("rel", "logic", "plus1-drop", "minus1-drop", "const+1", "not", "cond-true"):
        expect(r in rules, "no %s site in the project's sources" % r)
    keys = {m.key() for m in real}
    for key in load_equivalents(EQUIVALENT_FILE):
        expect(key in keys, "equivalent.txt lists a site that no longer exists: %s" % (key,))
    for f in failures:
        print("FAIL:", f)
    print("self-test: %d mutant sites in the fixture, %d in the project; %s" % (
        len(ms), len(real), "FAILED" if failures else "ok"))
    return 1 if failures else 0


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-mutate"),
                    help="build dir, configured with CMake (default: build-mutate, configured if absent)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-n", type=int, default=None, help="how many mutants (default: all)")
    ap.add_argument("--file", action="append", help="only sites in this file or folder (repeatable)")
    ap.add_argument("--grep", help="only sites whose `file:line [rule] line => mutated` matches this regex")
    ap.add_argument("--site", action="append",
                    help="run this mutant: FILE:LINE[:RULE[#N]] (N counts the rule's sites on the line from 0;"
                         " without RULE every site of the line); repeatable; -n and --seed then do not apply")
    ap.add_argument("--results", help="append each mutant's result to this file (JSON lines) and reuse the"
                                      " results already in it: a run cut short resumes where it stopped")
    ap.add_argument("--whole", action="store_true",
                    help="build every target and run the whole selection for each mutant (default: only the"
                         " programs the mutated file reaches, cheapest tests first)")
    ap.add_argument("--list", action="store_true", help="print the sites of the sample and exit")
    ap.add_argument("--tests", default=DEFAULT_TESTS, help="ctest -R regex (default %(default)s)")
    ap.add_argument("--exclude", default=DEFAULT_EXCLUDE, help="ctest -E regex (default %(default)s)")
    ap.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, help="build targets the tests need")
    ap.add_argument("--timeout", type=int, default=0,
                    help="seconds of tests per mutant; past it the mutant counts as killed (default: 3 x the"
                         " unmutated tests + 120 s); builds have %d s" % BUILD_TIMEOUT)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--min-score", type=float, default=None, help="exit 1 when the score is below this percentage")
    ap.add_argument("--skip-equivalent", action="store_true", help="do not run mutants listed in equivalent.txt")
    ap.add_argument("--no-final-rebuild", action="store_true",
                    help="leave the build dir as the last mutant left it (its objects are then stale)")
    ap.add_argument("--restore", action="store_true", help="only restore a file left by a killed run")
    ap.add_argument("--self-test", action="store_true", help="test this tool on a fixture (no build)")
    a = ap.parse_args(argv)

    if a.self_test:
        return self_test()
    a.build = os.path.abspath(a.build)
    if not a.list:
        # One run per build dir: the lock is held until this process ends,
        # so a journal found under it belongs to a run that died.
        os.makedirs(a.build, exist_ok=True)
        lock = open(os.path.join(a.build, "mutate.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print("another mutate.py runs in %s; wait for it or use another --build" % a.build, file=sys.stderr)
            return 2
        restorer = Restorer(ROOT, os.path.join(a.build, "mutate.journal"))
        on_signals(restorer)
        rel = restorer.recover()
        if rel:
            print("restored %s from the journal of a run that was killed" % rel)
        if a.restore:
            return 0

    mutants = all_mutants(ROOT, a.file)
    if a.file and not mutants:
        print("no mutant sites in %s" % ", ".join(a.file), file=sys.stderr)
        return 2
    if a.grep:
        mutants = [m for m in mutants if re.search(a.grep, m.describe())]
    sample = pick_sites(mutants, a.site) if a.site else choose(mutants, a.seed, a.n)
    equivalents = load_equivalents(EQUIVALENT_FILE)
    if a.list:
        for m in sample:
            tag = "  (equivalent)" if m.key() in equivalents else ""
            print("%s%s" % (m.describe(), tag))
        print("%d of %d sites" % (len(sample), len(mutants)))
        return 0

    if not os.path.exists(os.path.join(a.build, "CMakeCache.txt")):
        print("configuring %s" % a.build)
        rc, log = run_cmd(["cmake", "-S", ROOT, "-B", a.build, "-G", "Ninja"], 600, ROOT)
        if rc != 0:
            print(log, file=sys.stderr)
            return 2
    print("seed %d: %d of %d sites; build %s; ctest -R '%s' -E '%s'" % (
        a.seed, len(sample), len(mutants), a.build, a.tests, a.exclude))
    runner = Runner(a)
    t0 = time.monotonic()
    ok, log = runner.build(7200)
    tb = time.monotonic() - t0
    if not ok:
        print(log, file=sys.stderr)
        print("the unmutated tree does not build in %s" % a.build, file=sys.stderr)
        return 2
    if not a.whole:
        plan = Plan.load(a.build, a.tests, a.exclude)
        runner = StagedRunner(a, plan)
    t1 = time.monotonic()
    passed, log = runner.test(3600) if a.whole else runner.ctest(
        3600, ["-I", "0,0,0," + ",".join(str(n) for n, _, _ in plan.tests)])
    tt = time.monotonic() - t1
    if not a.whole:
        plan.seconds = ctest_times(log)
    if not passed:
        print(log[-3000:], file=sys.stderr)
        print("the unmutated tree fails the selected tests: fix that first", file=sys.stderr)
        return 2
    timeout = a.timeout or max(120, int(3 * tt + 120))
    print("unmutated: build %.0fs, tests %.0fs; timeout per mutant %ds" % (tb, tt, timeout))
    sys.stdout.flush()

    try:
        results, times = run_sample(sample, equivalents, restorer, runner, ROOT, timeout, a.skip_equivalent,
                                    done=load_results(a.results),
                                    record=result_recorder(a.results) if a.results else None)
    except KeyboardInterrupt:
        restorer.restore()
        print("interrupted; sources restored. %s holds objects built from a mutant: rebuild it before use"
              % a.build, file=sys.stderr)
        return 130
    restorer.restore()
    if not a.no_final_rebuild:
        # The objects of the last mutant are in the build dir: rebuild them
        # from the restored sources.
        runner.build(7200)
    survivors = [m for s, m in results if s == SURVIVED]
    if survivors:
        print("survivors (a test to add, or an entry for equivalent.txt):")
        for m in survivors:
            print("  " + m.describe())
            print("    entry: " + equivalent_entry(m))
    n_to = sum(1 for s, _ in results if s == TIMEOUT)
    if times:
        print("time per mutant: mean %.0fs, max %.0fs; %d timeout(s) counted as killed" % (
            sum(times) / len(times), max(times), n_to))
    k, v, p, line = score_line(results)
    print(line)
    if a.min_score is not None and p < a.min_score:
        print("below the floor of %.1f%%" % a.min_score)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
