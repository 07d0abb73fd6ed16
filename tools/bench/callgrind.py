"""Reads a callgrind output file (valgrind --tool=callgrind) into instruction
counts per function, for `tools/bench/report --instructions`.

  profile = callgrind.parse(Path("callgrind.out").read_text())
  profile.total              # Ir collected (the file's `totals:` or `summary:`)
  profile.self_ir            # {(object, function): Ir spent in the function itself}
  callgrind.string_function_ir(profile)   # the part in libc's mem* functions

The format is valgrind's "Callgrind Format Specification" (docs/cl-format):
name compression (`fn=(12) name` once, `fn=(12)` after), a `calls=` line
followed by the call's inclusive cost (not the caller's own), positions
possibly relative (`+2`, `-1`, `*`). Only the Ir event is read.
"""

import re

# Lines that set the current object, file or function, or name a callee's.
_NAME_SPEC = re.compile(r"^(ob|fl|fi|fe|fn|cob|cfi|cfl|cfn)=\s*(?:\((\d+)\))?\s*(.*)$")
# Which compression table each kind of name uses.
_TABLE = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
          "fn": "fn", "cfn": "fn"}
# libc's mem* string functions and their variants (__memcpy_avx_unaligned_erms,
# __memset_avx2_unaligned_erms, ...): for large sizes memcpy, memmove and
# memset run `rep movsb` / `rep stosb`, which callgrind counts one instruction
# a byte. Not memalign (an allocator).
_STRING_FUNCTION = re.compile(r"^_*w?mem(cpy|move|pcpy|set|cmp|chr|rchr)")


class Profile:
    """What one callgrind file counted: the total Ir and each function's own."""

    def __init__(self, total, self_ir):
        self.total = total
        self.self_ir = self_ir


def _is_libc(obj):
    name = obj.rsplit("/", 1)[-1]
    return name.startswith("libc.so") or name.startswith("libc-")


def string_function_ir(profile):
    """The Ir inside libc's mem* functions (their own, not their callees')."""
    return sum(ir for (obj, fn), ir in profile.self_ir.items()
               if _is_libc(obj) and _STRING_FUNCTION.match(fn))


def parse(text, source="callgrind output"):
    """A Profile of `text`. Raises ValueError if it is not callgrind output,
    has no Ir event, or its functions' counts do not add up to its total."""
    lines = text.splitlines()
    if not lines or not (lines[0].startswith("# callgrind format") or
                         lines[0].startswith("version:")):
        raise ValueError(f"{source}: not a callgrind output file")
    names = {"ob": {}, "fl": {}, "fn": {}}
    positions = 1
    ir_index = None
    current = {"ob": "???", "fn": "???"}
    self_ir = {}
    declared_total = None
    skip_next_cost = False
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("positions:"):
            positions = len(line.split(":", 1)[1].split())
            continue
        if line.startswith("events:"):
            events = line.split(":", 1)[1].split()
            if "Ir" not in events:
                raise ValueError(f"{source}: no Ir event (events: {' '.join(events)})")
            ir_index = events.index("Ir")
            continue
        if line.startswith(("totals:", "summary:")):
            value = int(line.split(":", 1)[1].split()[ir_index or 0])
            # `totals:` is the sum over the file; `summary:` is the same.
            declared_total = value if declared_total is None else max(declared_total, value)
            continue
        match = _NAME_SPEC.match(line)
        if match:
            kind, ident, name = match.groups()
            table = names[_TABLE[kind]]
            if ident is not None:
                if name:
                    table[ident] = name
                elif ident not in table:
                    raise ValueError(f"{source}:{number}: ({ident}) used before it is named")
                name = table[ident]
            if kind in ("ob", "fn"):
                current[kind] = name
            continue
        if line.startswith("calls="):
            skip_next_cost = True  # the next line is the call's inclusive cost
            continue
        if line.startswith(("jump=", "jcnd=")):
            raise ValueError(f"{source}:{number}: jump lines (--collect-jumps) are not read")
        if line[0].isdigit() or line[0] in "+-*":
            if skip_next_cost:
                skip_next_cost = False
                continue
            if ir_index is None:
                raise ValueError(f"{source}:{number}: a cost line before the events: line")
            fields = line.split()
            costs = fields[positions:]
            ir = int(costs[ir_index]) if ir_index < len(costs) else 0
            key = (current["ob"], current["fn"])
            self_ir[key] = self_ir.get(key, 0) + ir
            continue
        # Header lines (version:, creator:, cmd:, desc:, part: ...) carry no cost.
    counted = sum(self_ir.values())
    if declared_total is not None and declared_total != counted:
        raise ValueError(f"{source}: its functions add up to {counted:,} Ir but it declares "
                         f"{declared_total:,} (a line this parser misread?)")
    return Profile(counted, self_ir)
