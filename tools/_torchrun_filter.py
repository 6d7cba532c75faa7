"""Filter torchrun's stderr: keep what the ranks print, drop torchrun's own report of a
failed rank (a ChildFailedError traceback and its ===== summary), which repeats in 30
lines what the rank already said in one ``error:`` line, its traceback when it was
stopped by a signal, and repeats of an ``error:`` line that every rank prints. Used by tools/torchrun.sh.
Everything else passes unchanged, a rank's own traceback (a bug) included."""
import re
import sys

ELASTIC = re.compile(r'^[EWI]\d{4} .*torch/distributed/elastic/.*(failed|Sending process)')


def main() -> None:
    block = []    # a traceback being read, kept until its last line says whose it is
    rules = 0     # inside torchrun's summary: the ===== lines still to skip past
    said = set()  # error lines already passed on
    for line in sys.stdin:
        if rules:
            if line.startswith('====='):
                rules -= 1
            continue
        if block:
            block.append(line)
            if line[:1] not in (' ', '\t') and not line.startswith('Traceback'):
                if 'ChildFailedError' in line:
                    rules = 2  # the summary opens and closes with a ===== line
                elif 'SignalException' in line:
                    pass  # torchrun stopped by a signal: the ranks said 'error: interrupted'
                else:
                    sys.stderr.writelines(block)
                block = []
            continue
        if line.startswith('Traceback (most recent call last):'):
            block = [line]
        elif line.startswith('error: ') and line in said:
            continue  # every rank says the same: once is enough
        elif not ELASTIC.match(line):
            if line.startswith('error: '):
                said.add(line)
            sys.stderr.write(line)
            sys.stderr.flush()
    sys.stderr.writelines(block)


if __name__ == '__main__':
    main()
