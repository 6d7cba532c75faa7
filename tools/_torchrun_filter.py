"""Filter torchrun's stderr: keep what the ranks print, drop torchrun's own report of a
failed rank (a ChildFailedError traceback and its ===== summary), which repeats in 30
lines what the rank already said in one ``error:`` line, its traceback when it was
stopped by a signal, and repeats of an ``error:`` line that every rank prints. Used by tools/torchrun.sh.
Everything else passes unchanged, a rank's own traceback (a bug) included."""
import re
import sys

ELASTIC = re.compile(r'^[EWI]\d{4} .*torch/distributed/elastic/.*(failed|Sending process)')


#: the lines that join a traceback to the next one of its chain
CHAINED = ('During handling of the above exception', 'The above exception was the direct')
#: an exception line that makes a whole (chained) traceback torchrun's own: a failed
#: rank's report, or torchrun stopped by a signal (the ranks said 'error: interrupted')
TORCHRUN_OWN = ('ChildFailedError', 'SignalException')


class _Traceback:
    """A traceback being read, with the tracebacks chained to it ("During handling of
    the above exception ..."), kept until its end says whose it is."""

    def __init__(self, first: str) -> None:
        self.lines = [first]
        self.ended = False   # its exception line was read; a chained one may follow
        self.held: list = []  # blank lines after an exception line, not yet placed
        self.own = False
        self.summary = False  # a ChildFailedError: the ===== summary follows

    def add(self, line: str) -> bool:
        """Take ``line``; False when it is not part of this traceback (it has ended)."""
        stripped = line.strip()
        if self.ended:
            if not stripped:
                self.held.append(line)
                return True
            if stripped.startswith(CHAINED) or line.startswith('Traceback'):
                self.lines += self.held + [line]
                self.held, self.ended = [], False
                return True
            return False
        self.lines.append(line)
        if line[:1] not in (' ', '\t') and not line.startswith('Traceback') and stripped \
                and not stripped.startswith(CHAINED):
            self.ended = True  # the exception line
            self.own = self.own or any(name in line for name in TORCHRUN_OWN)
            self.summary = self.summary or 'ChildFailedError' in line
        return True


def main() -> None:
    block = None  # a traceback being read
    rules = 0     # inside torchrun's summary: the ===== lines still to skip past
    said = set()  # error lines already passed on
    for line in sys.stdin:
        if rules:
            if line.startswith('====='):
                rules -= 1
            continue
        if block is not None:
            if block.add(line):
                continue
            rules = _end(block)
            block = None
            if rules:
                if line.startswith('====='):
                    rules -= 1
                continue
        if line.startswith('Traceback (most recent call last):'):
            block = _Traceback(line)
        elif line.startswith('error: ') and line in said:
            continue  # every rank says the same: once is enough
        elif not ELASTIC.match(line):
            if line.startswith('error: '):
                said.add(line)
            sys.stderr.write(line)
            sys.stderr.flush()
    if block is not None:
        _end(block)


def _end(block: _Traceback) -> int:
    """Pass on a finished traceback unless it is torchrun's own; returns the ===== lines
    of a failed rank's summary still to skip."""
    if not block.own:
        sys.stderr.writelines(block.lines + block.held)
        sys.stderr.flush()
        return 0
    return 2 if block.summary else 0


def _outlive_stop_signals() -> None:
    """A Ctrl-C or SIGTERM sent to the whole process group (a terminal, a scheduler)
    reaches this filter too: it reads on until torchrun and the ranks close the pipe, so
    their ``error: interrupted`` still gets through, instead of dying first with a
    ``KeyboardInterrupt`` traceback of its own."""
    import signal
    for name in ('SIGINT', 'SIGTERM', 'SIGHUP'):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)


if __name__ == '__main__':
    _outlive_stop_signals()
    main()
