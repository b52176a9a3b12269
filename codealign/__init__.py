"""codealign: curate code instruction data, train specialist adapters, run execution DPO."""

import os

# OpenMP threads that spin while waiting turn a busy 2-core machine (training beside
# sandbox workers, tokenizers or a second process) into a 10x slowdown: measured 6.1 s
# against 0.54 s per SFT step at load 4. Passive waiting costs nothing when idle. Set
# before torch is imported; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# CODEALIGN_TRACE_DEPS=<dir>: at exit, write <dir>/<pid>.json with the codealign modules
# this process imported and the package files it opened (tests/test_pipeline.py checks
# both against the stage's deps in dvc.yaml). Nothing is installed when it is unset.
if os.environ.get("CODEALIGN_TRACE_DEPS"):

    def _trace_deps(out_dir: str) -> None:
        import atexit
        import json
        import sys

        package = os.path.dirname(os.path.abspath(__file__))
        opened: set[str] = set()

        def audit(event: str, args: tuple) -> None:
            if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
                path = os.path.abspath(os.fsdecode(args[0]))
                if path.startswith(package + os.sep) and not path.endswith((".py", ".pyc")):
                    opened.add(os.path.relpath(path, package))

        def dump() -> None:
            modules = sorted(
                name
                for name, module in list(sys.modules.items())
                if name.split(".")[0] == __name__ and getattr(module, "__file__", None)
            )
            record = {"argv": sys.argv, "modules": modules, "files": sorted(opened)}
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, f"{os.getpid()}.json"), "w") as handle:
                json.dump(record, handle)

        sys.addaudithook(audit)
        atexit.register(dump)

    _trace_deps(os.environ["CODEALIGN_TRACE_DEPS"])
