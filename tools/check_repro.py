"""Reproduction check: do the results re-derived in the workspace match the committed ones?

Run it after reproducing the pipeline from scratch (CI runs `dvc repro --force`, then
`python -m tools.check_repro`). It compares, against a git revision (default HEAD):

- the lock files (`dvc.lock`, `builtin/dvc.lock`): every stage's dependencies and params
  must be identical (otherwise the committed results were made by other code or params),
  and the outputs of the data stages (synthesize, ingest, split, normalize) must have
  identical hashes: these stages are pure integer/byte computations, so any difference
  is a real change;
- every metrics JSON file (`git show REV:metrics/<file>` against the working tree), key
  by key: exactly for the data stages, within TOLERANCES for the model stages, whose
  float32 results depend on the CPU's BLAS kernels; timing keys are ignored;
- that each committed metrics file still has the hash the committed `dvc.lock` records
  for it, so a metric edited by hand is caught even without reproducing (a file inside an
  output folder, such as metrics/optimizers/, is only compared key by key: the lock records
  the folder's hash, not the file's);
- that the lock files hold no stage which their dvc.yaml no longer defines (DVC keeps the
  entries of removed or renamed stages, with the hashes of outputs now made elsewhere).

Where the BLAS kernel is pinned (notmnist/plumbing/blas.py: any x86-64 CPU with AVX2, unless
OPENBLAS_CORETYPE is set to another kernel), every result is the same bit for bit, so the check
also requires every tracked result file (lock files, metrics/) to be byte-identical to REV's.
Elsewhere (ARM, another kernel set by the environment) the tolerances are the judge; run the
check with the same environment as the pipeline.

Exit code 0 with a one-line summary when everything reproduced, 1 with one line per
drift (file, key, committed value, reproduced value, tolerance) otherwise.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from notmnist.plumbing import blas, cli

# Each lock file and the prefix DVC gives its stages' names (`dvc repro builtin/dvc.yaml:synthesize`).
LOCKS = {"dvc.lock": "", "builtin/dvc.lock": "builtin/dvc.yaml:"}
DATA_STAGES = ("builtin/dvc.yaml:synthesize", "ingest", "split", "normalize")

# Every tolerance of the check, in one place; keys are dotted paths into the JSON
# ("valid.accuracy", "per_class.A.f1", "accuracy_ci95.0") matched with shell patterns.
IGNORED_KEYS = ("*seconds*", "*time*", "*per_second*", "*throughput*")  # wall-clock, never reproducible
# Model-stage keys derived from individual predictions or from near ties (which confusions
# or optimizers rank first, how many errors): accuracy and the losses carry the same
# information, with tolerances.
DERIVED_KEYS = ("n_errors", "top_confusions.*", "*rank")
# Model-stage numbers: the first matching rule wins, and a value passes when
# |reproduced - committed| <= absolute + relative * |committed|.
TOLERANCES: list[tuple[tuple[str, ...], float, float]] = [
    # (key patterns, absolute, relative)
    (("*accuracy*", "*precision*", "*recall*", "*f1*", "*ece*"), 0.005, 0.0),  # 0.5 percentage points
    (("*gap*",), 0.005, 0.0),  # distance of an SGD objective from the L-BFGS optimum
    (("*loss*", "*objective*", "*optimum"), 0.0, 0.02),  # 2 % of the committed value
    (("*epoch*",), 2, 0.1),  # early stopping may stop a few epochs apart
    (("*iterations",), 5, 0.2),  # L-BFGS stops where its steps stall, which float noise moves
]
COUNTS = ("*epoch*", "*iterations")  # integers with a tolerance; every other integer is exact
OTHER_FLOATS = (1e-4, 0.01)  # any other float of a model stage
# An accuracy beside its set's size n ("test.accuracy" and "test.n") may also move by FLIPPED
# images: float noise flips the predictions that lie on a decision boundary, which on a small
# set is more than the 0.5 points above.
FLIPPED = 2
# Integers, strings and booleans of model stages (counts, class names) must match exactly.


@dataclass(frozen=True)
class Drift:
    file: str
    key: str
    committed: Any
    reproduced: Any
    tolerance: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key}: committed {self.committed!r}, "
            f"reproduced {self.reproduced!r} (tolerance: {self.tolerance})"
        )


def is_ignored(key: str, exact: bool = True) -> bool:
    """Timing keys (seconds_per_epoch, ...) are never compared, derived keys only exactly."""
    patterns = IGNORED_KEYS if exact else IGNORED_KEYS + DERIVED_KEYS
    return any(fnmatch.fnmatch(key, pattern) for pattern in patterns)


def tolerance_for(key: str) -> tuple[float, float]:
    """(absolute, relative) tolerance of a model-stage float metric."""
    for patterns, absolute, relative in TOLERANCES:
        if any(fnmatch.fnmatch(key, pattern) for pattern in patterns):
            return absolute, relative
    return OTHER_FLOATS


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{"valid": {"accuracy": 0.9}, "ci": [1, 2]} -> {"valid.accuracy": 0.9, "ci.0": 1, "ci.1": 2}."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return {prefix: obj}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def compare_metrics(file: str, committed: Any, reproduced: Any, exact: bool) -> list[Drift]:
    """Key-by-key differences between two metrics documents (timing keys ignored)."""
    old, new = flatten(committed), flatten(reproduced)
    drifts = []
    for key in sorted(set(old) | set(new)):
        if is_ignored(key, exact):
            continue
        if key not in new or key not in old:
            drifts.append(
                Drift(file, key, old.get(key, "<missing>"), new.get(key, "<missing>"), "the key must exist in both")
            )
            continue
        a, b = old[key], new[key]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        count = any(fnmatch.fnmatch(key, pattern) for pattern in COUNTS)
        if exact or not numeric or (isinstance(a, int) and isinstance(b, int) and not count):
            if a != b:
                drifts.append(Drift(file, key, a, b, "exact"))
            continue
        absolute, relative = tolerance_for(key)
        if fnmatch.fnmatch(key, "*accuracy"):  # also the predictions that float noise flips
            n = old.get(key.rpartition(".")[0] + ".n" if "." in key else "n", math.inf)
            absolute = max(absolute, (FLIPPED + 0.5) / n)  # + half an image: the JSON's rounding
        if not math.isclose(b, a, rel_tol=relative, abs_tol=absolute):
            tol = f"±{absolute:g}" if not relative else f"±{absolute:g} + {relative:.0%} of committed"
            drifts.append(Drift(file, key, a, b, tol))
    return drifts


def git_show(rev: str, path: str, cwd: Path) -> bytes | None:
    """The bytes of `path` at git revision `rev`, or None when it is not there."""
    result = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True)
    return result.stdout if result.returncode == 0 else None


def committed_metric_files(rev: str, cwd: Path) -> list[str]:
    result = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "--", "metrics/"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return [p for p in result.stdout.split() if p.endswith(".json")]


def _by_path(entries: list[dict] | None) -> dict[str, dict]:
    return {entry["path"]: entry for entry in entries or []}


def load_locks(read) -> dict | None:
    """The stages of all LOCKS as one dvc.lock-shaped dict, names prefixed as DVC addresses
    them; read(path) gives a lock file's text or None. None when there is no lock at all."""
    texts = {path: read(path) for path in LOCKS}
    if all(text is None for text in texts.values()):
        return None
    return {
        "stages": {
            LOCKS[path] + name: stage
            for path, text in texts.items()
            if text
            for name, stage in (yaml.safe_load(text) or {}).get("stages", {}).items()
        }
    }


def _lock_prefix(stage: str) -> str:
    """The LOCKS prefix of a stage's name: the longest one it starts with."""
    return max((prefix for prefix in LOCKS.values() if stage.startswith(prefix)), key=len)


def stale_stages(lock: dict, read) -> list[str]:
    """Stages of a lock that its dvc.yaml no longer defines: DVC keeps the entries of removed
    or renamed stages, and their recorded outputs would be checked as if they were current.
    read(path) gives a dvc.yaml's text or None (then its lock's stages are not judged)."""
    stale = []
    for lock_path, prefix in LOCKS.items():
        text = read(lock_path.replace(".lock", ".yaml"))
        if text is None:
            continue
        stages = (yaml.safe_load(text) or {}).get("stages") or {}
        single = {prefix + name for name, stage in stages.items() if not {"foreach", "matrix"} & set(stage)}
        items = {prefix + name for name in stages} - single  # locked one entry per item: "name@item"
        own = [name for name in lock.get("stages", {}) if _lock_prefix(name) == prefix]
        stale += [name for name in own if name.partition("@")[0] not in (items if "@" in name else single)]
    return sorted(stale)


def compare_locks(committed: dict, reproduced: dict) -> list[Drift]:
    """Stage-level differences between the committed and the reproduced dvc.lock."""
    drifts = []
    old_stages, new_stages = committed.get("stages", {}), reproduced.get("stages", {})
    # Outputs of model stages depend on BLAS; as a dependency (evaluate <- model.npz), or inside
    # one (a folder such as metrics/optimizers), they are skipped.
    model_outs = {
        path for name, stage in old_stages.items() if name not in DATA_STAGES for path in _by_path(stage.get("outs"))
    }

    def holds_model_output(path: str) -> bool:
        return path in model_outs or any(out.startswith(path.rstrip("/") + "/") for out in model_outs)

    for name in sorted(set(old_stages) | set(new_stages)):
        if name not in new_stages or name not in old_stages:
            drifts.append(
                Drift(
                    "dvc.lock",
                    f"stage {name}",
                    "present" if name in old_stages else "<missing>",
                    "present" if name in new_stages else "<missing>",
                    "the stage must exist in both",
                )
            )
            continue
        old, new = old_stages[name], new_stages[name]
        if old.get("params") != new.get("params"):
            drifts.append(Drift("dvc.lock", f"{name}.params", old.get("params"), new.get("params"), "exact"))
        kinds = ["deps"] + (["outs"] if name in DATA_STAGES else [])
        for kind in kinds:
            old_entries, new_entries = _by_path(old.get(kind)), _by_path(new.get(kind))
            for path in sorted(set(old_entries) | set(new_entries)):
                if (kind == "deps" and holds_model_output(path)) or path.endswith(".json"):
                    continue  # JSON metrics are compared key by key instead
                a = old_entries.get(path, {}).get("md5", "<missing>")
                b = new_entries.get(path, {}).get("md5", "<missing>")
                if a != b:
                    drifts.append(Drift("dvc.lock", f"{name}.{kind}: {path} md5", a, b, "exact"))
    return drifts


def json_outputs(lock: dict) -> dict[str, tuple[str, str | None]]:
    """Every JSON output recorded in a dvc.lock: path -> (stage, md5)."""
    return {
        path: (name, entry.get("md5"))
        for name, stage in lock.get("stages", {}).items()
        for path, entry in _by_path(stage.get("outs")).items()
        if path.endswith(".json")
    }


def edited_by_hand(file: str, committed: bytes, md5: str, rev: str, root: Path) -> list[Drift]:
    """A committed metrics file that is not the one dvc.lock records: the keys that differ
    from the version with the recorded md5 (searched in the file's git history)."""
    advice = "dvc.lock records another file (edited by hand?); run `dvc repro` and commit"
    history = subprocess.run(
        ["git", "rev-list", "--max-count=100", rev, "--", file], cwd=root, capture_output=True, text=True
    ).stdout.split()
    for commit in history:
        recorded = git_show(commit, file, root)
        if recorded is not None and hashlib.md5(recorded).hexdigest() == md5:
            return [
                Drift(d.file, d.key, d.reproduced, d.committed, advice)  # committed vs recorded
                for d in compare_metrics(file, json.loads(recorded), json.loads(committed), exact=True)
            ]
    return [Drift(file, "md5", hashlib.md5(committed).hexdigest(), md5, advice)]


RESULT_FILES = ("dvc.lock", "builtin/dvc.lock", "metrics")


def changed_files(rev: str, root: Path) -> list[str]:
    """Result files (RESULT_FILES) of the working tree whose bytes are not those of `rev`,
    new ones included."""
    tracked = subprocess.run(
        ["git", "diff", "--name-only", rev, "--", *RESULT_FILES], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    new = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", *RESULT_FILES],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(set(tracked) | set(new))


def check(root: Path | str = ".", rev: str = "HEAD", bit_for_bit: bool = False) -> tuple[list[Drift], str]:
    """All drifts between revision `rev` and the working tree at `root`, and a summary line;
    bit_for_bit: also every result file must be byte-identical."""
    root = Path(root)
    committed_lock = load_locks(lambda path: git_show(rev, path, root))
    if committed_lock is None:
        return [Drift("dvc.lock", "-", "<missing>", "-", "commit dvc.lock after `dvc repro`")], ""
    reproduced_lock = load_locks(lambda path: (root / path).read_text() if (root / path).exists() else None)
    drifts = []
    for name in stale_stages(committed_lock, lambda path: git_show(rev, path, root)):
        advice = "DVC keeps the entries of removed stages: delete it from the lock file and commit"
        drifts.append(Drift("dvc.lock", f"stage {name}", "present", "not in dvc.yaml", advice))
        for lock in (committed_lock, reproduced_lock or {}):
            lock.get("stages", {}).pop(name, None)
    drifts += compare_locks(committed_lock, reproduced_lock or {})

    recorded = json_outputs(committed_lock)
    files = sorted(set(recorded) | set(committed_metric_files(rev, root)))
    n_values = 0
    for file in files:
        stage, md5 = recorded.get(file, (None, None))
        old_bytes = git_show(rev, file, root)
        if old_bytes is None:
            drifts.append(Drift(file, "-", "<missing>", "-", "commit the metrics files with dvc.lock"))
            continue
        if md5 is not None and hashlib.md5(old_bytes).hexdigest() != md5:
            drifts += edited_by_hand(file, old_bytes, md5, rev, root)
        if not (root / file).exists():
            drifts.append(Drift(file, "-", "present", "<missing>", "run `dvc repro` first"))
            continue
        old, new = json.loads(old_bytes), json.loads((root / file).read_text(encoding="utf-8"))
        exact = stage in DATA_STAGES
        drifts += compare_metrics(file, old, new, exact)
        n_values += sum(not is_ignored(k, exact) for k in flatten(old))
    if bit_for_bit:
        why = f"bit for bit: the BLAS kernel is pinned ({blas.PINNED})"
        drifts += [Drift(file, "bytes", "committed", "changed", why) for file in changed_files(rev, root)]
    data_outs = sum(len(committed_lock.get("stages", {}).get(s, {}).get("outs", [])) for s in DATA_STAGES)
    summary = (
        f"reproduced: {len(committed_lock.get('stages', {}))} stages match {rev}; "
        f"{data_outs} data-stage outputs identical, {n_values} metric values in "
        f"{len(files)} files within tolerance"
    ) + ("; every result file identical" if bit_for_bit else "")
    return drifts, summary


def _numbers(obj: Any) -> Any:
    """obj with the strings that read as numbers made numbers: PyYAML reads `1e-08` (how
    dvc.lock writes 1.0e-8) as a string."""
    if isinstance(obj, dict):
        return {key: _numbers(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_numbers(value) for value in obj]
    if isinstance(obj, str):
        try:
            return float(obj)
        except ValueError:
            return obj
    return obj


def inconsistent_workspace(root: Path) -> str | None:
    """One line naming what disagrees, when the workspace's params.yaml, dvc.lock and stage
    outputs are not of one run (two `dvc exp run` at once in one workspace leave them so,
    and `dvc status` can't tell); None when they agree."""
    lock_file, params_file = root / "dvc.lock", root / "params.yaml"
    if not lock_file.exists() or not params_file.exists():
        return None
    stages = (yaml.safe_load(lock_file.read_text()) or {}).get("stages", {})
    params = _numbers(yaml.safe_load(params_file.read_text()) or {})
    for name, stage in stages.items():
        for section, recorded in _numbers((stage.get("params") or {}).get("params.yaml", {})).items():
            current = params.get(section)
            if current != recorded:
                key = next((k for k in recorded if current is None or current.get(k) != recorded[k]), section)
                return (
                    f"the workspace is inconsistent: params.yaml's {section} differs from what dvc.lock records "
                    f"for stage {name} (at {section}.{key}); two runs at once in one workspace? run `dvc repro`"
                )
        for out in stage.get("outs", []):
            path = root / out["path"]
            if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != out.get("md5"):
                return (
                    f"the workspace is inconsistent: {out['path']} is not the file dvc.lock records for stage "
                    f"{name}; two runs at once in one workspace? run `dvc repro`"
                )
    return None


def main(args) -> int:
    problem = inconsistent_workspace(Path("."))
    if problem:
        print(problem)
        return 1
    pinned = blas.is_pinned()
    kernels = ", ".join(sorted(blas.loaded_kernels())) or "none found"
    mode = (
        f"BLAS kernel {blas.PINNED}, pinned: every result file must be identical"
        if pinned
        else f"BLAS kernel {kernels} (not the pinned {blas.PINNED}): model results within tolerance"
    )
    print(f"check_repro: {mode}")
    drifts, summary = check(".", args.rev, bit_for_bit=pinned)
    if drifts:
        print(f"NOT reproduced: {len(drifts)} difference(s) from {args.rev}:")
        for drift in drifts:
            print(f"  {drift}")
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("--rev", default="HEAD", help="git revision holding the committed results (default: HEAD)")
    cli.run(main, parser)
