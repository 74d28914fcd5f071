"""Re-run every ported-program case and print where each one stops today.

    python tests/_port_report.py            # all cases
    python tests/_port_report.py resnet18   # some cases
    python tests/_port_report.py --probe    # past the known gaps (tests/_port_probe.py)

Prints, per case and aspect, ``ok`` or the error with the program line it was raised
from (the deepest frame in the program's own file) and the deepest jaxmod frame, then
the ``XFAIL`` entries to paste into the test modules. Not a test: a tool for keeping
``XFAIL`` and ``GAPS.md`` current.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _port_checks import describe  # noqa: E402


def _where(exc: BaseException) -> tuple[str, str]:
    """(program line, jaxmod line) the exception came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    prog = [f for f in frames if "torchvision/" in f.filename or "torch_programs/" in f.filename]
    lib = [f for f in frames if "/jaxmod/" in f.filename]

    def fmt(f: traceback.FrameSummary, key: str) -> str:
        return f"{f.filename.split(key)[-1]}:{f.lineno}: {(f.line or '').strip()}"

    return (
        fmt(prog[-1], "site-packages/") if prog else "",
        fmt(lib[-1], "ports/") if lib else "",
    )


def main(argv: list[str]) -> int:
    if "--probe" in argv:
        argv = [a for a in argv if a != "--probe"]
        import _port_probe

        print("probe: pretending these gaps are closed:")
        for gap in _port_probe.install():
            print(f"  - {gap}")
    import test_torch_programs as programs
    import test_torchvision_models as models

    xfails: dict[str, list[str]] = {}
    for mod in (models, programs):
        for name in mod.CASES:
            if argv and name not in argv:
                continue
            for aspect in mod.aspects(name):
                t = time.perf_counter()
                try:
                    mod.run_case(name, aspect)
                    status, where = "ok", ("", "")
                except Exception as e:  # noqa: BLE001
                    status, where = describe(e), _where(e)
                    xfails.setdefault(mod.__name__, []).append(
                        f"    ({name!r}, {aspect!r}): {status!r},"
                    )
                dt = time.perf_counter() - t
                print(f"{name:28s} {aspect:10s} {dt:6.1f}s  {status}")
                for w in where:
                    if w:
                        print(f"{'':48s}at {w}")
    for mod_name, lines in xfails.items():
        print(f"\n# {mod_name}.XFAIL")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
