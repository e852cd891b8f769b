"""``python -m lathe.distributed.torchrun ARGS``: torchrun itself (same arguments), reporting a failed run
as one line per rank instead of the launcher's own traceback."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        first, _ = exc.get_first_failure()
        for rank, failure in sorted(exc.failures.items()):
            how = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
            role = "failed first" if rank == first else "stopped"
            print(f"lathe: rank {rank} {role} ({how})", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
