"""The ``outreach`` command line: :func:`main` is the console script; the commands are in :mod:`.main`."""

import gc

# The youngest generation's collection threshold in an ``outreach`` process. Starting a command allocates a few
# hundred thousand objects that live as long as the process (typer's commands, pydantic's schemas, the engine's
# modules, the loaded data): at Python's default of 700 the collector ran about 120 times in a demo `explain`,
# 30-70 ms, and freed nothing (docs/BENCHMARKS.md, "Start-up"). Cycles are still collected, less often; a
# long-running command (serve, worker) keeps that too.
PROCESS_GC_THRESHOLD = 100_000


def main() -> None:
    """``outreach …``: the command line, in a process of its own (the threshold is not put back: the process ends
    with the command; in-process callers such as tests call ``outreach.cli.main.app``).

    When the command is done, every object left is frozen (:func:`gc.freeze`): the interpreter's shutdown runs
    full collections after clearing the modules, each tracing everything the command built (typer's commands,
    pydantic's schemas, the engine's modules): 0.09 s of a demo `explain` (0.02 s once frozen) to free what the
    operating system frees anyway (docs/BENCHMARKS.md, "Start-up"). The rest of shutdown runs as before: the
    ``atexit`` handlers (logging's flush, temporary directories), the standard streams' flush, and every object its
    last reference going away frees."""
    gc.set_threshold(PROCESS_GC_THRESHOLD, *gc.get_threshold()[1:])
    from outreach.cli.main import app

    try:
        app()
    finally:
        gc.freeze()
