"""Names of coverage items that survive regenerating the Verilog: Yosys's numbered temporaries
(`\\$33`) and Amaranth's numbered duplicates (`requant_mult$115`, `crc$39`) renumber whenever
the design changes, so a waiver naming them would go stale (or, worse, match another signal).

`StableNames` rewrites a generated Verilog text's items into a stable shape:

* a temporary defined by ``assign \\$N = expr;`` in its module becomes ``$(expr)``, the
  expression's own temporaries rewritten the same way (two levels deep, then ``$?``);
* a temporary a register is clocked from (``sig <= \\$N ;``, the register's next value)
  becomes ``$next(sig)``;
* a temporary set in a procedural block (``\\$N = value;`` in case items) becomes
  ``$mux(value|value...)``, its distinct values sorted;
* any other temporary (assigned bit by bit) becomes ``$?``;
* a numbered duplicate name ``name$N`` becomes ``name$n``.

A toggle point on a bit that the Verilog ties to a constant (``assign x = 10'h000;``, the
constant fields of ``assign x = { 7'h00, y[2:0], 24'h000000 };``, ``assign x [31:1] = 31'h0;``,
a part that is itself such a constant, a bit on which every constant alternative agrees:
``c ? 8'h03 : 8'h02``, a procedural temporary set only to ``4'h0`` and ``4'ha``, or
``x * 5'h10`` for every value of a narrow ``x``) gets `TIED`
after its direction: it cannot toggle by construction.

Toggle points carry Verilator's mangled names (``__024`` for ``$``, ``___05F`` for ``__``);
`demangle` undoes that first. So ``if (\\$43 ) begin`` in the controller reads
``if ($(4'ha == $(k + 1'h1)) ) begin``, and the counter adder ``__02448[12]`` reads
``$(status__cycles_total + 1'h1)[12]``, whatever their numbers.
"""

from __future__ import annotations

import bisect
import re

__all__ = ["StableNames", "TIED", "demangle", "stable_scope"]

#: Appended to a toggle point's name when the Verilog ties its bit to a constant.
TIED = " (tied)"

_MODULE = re.compile(r"^\s*module\s+\\?(\S+?)\s*\(")
_ASSIGN = re.compile(r"^\s*assign\s+\\\$(\d+)\s*=\s*(.*?)\s*;\s*$")
_CLOCKED = re.compile(r"^\s*(\\?[^\s<=]+)\s*<=\s*\\\$(\d+)\s*;\s*$")
_PROCEDURAL = re.compile(r"^\s*\\\$(\d+)\s*=\s*(.*?)\s*;\s*$")
# Any other procedural assignment to a temporary (a slice, a concatenation, a statement on
# the line of an `if`): its values are then not all known.
_TARGET = re.compile(r"\\\$(\d+)\s*(?:\[[^\]]*\]\s*)?(?:,[^=]*)?\}?\s*<?=(?!=)")
# A whole temporary: `\$33 ` in Verilog text (escaped identifier, ends at white space), or
# `$33` as a demangled toggle name (then followed by `[`, `:` or the end).
_TEMP = re.compile(r"(?<![\w.\]$\\])\\?\$(\d+)(?=\s|\[|:|\)|$)")
# A numbered duplicate: digits after a `$` inside a longer name.
_DUPLICATE = re.compile(r"(?<=[A-Za-z0-9_.\]])\$\d+")
_ANY_ASSIGN = re.compile(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;\s*$")
_DECL = re.compile(r"^\s*(?:wire|reg|input|output|inout)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s*)?(\\?\S+)\s*[;=]")
_CONST = re.compile(r"^(\d+)'[hdbo][0-9a-fA-F_xzXZ]+$")
_VALUE = re.compile(r"^(\d+)'([hdbo])([0-9a-fA-F_]+)$")
_PRODUCT = re.compile(r"^(\\?[^\s*]+(?:\s*\[\d+(?::\d+)?\])?)\s*\*\s*(\d+'[hdbo][0-9a-fA-F_]+)$")
_CHOICE = re.compile(r"^[^?]+\?\s*(\d+'[hdbo][0-9a-fA-F_]+)\s*:\s*(\d+'[hdbo][0-9a-fA-F_]+)$")
_PART = re.compile(r"^(\\?\S+?)\s*(?:\[(\d+)(?::(\d+))?\])?$")
_BIT = re.compile(r"^(.*?)(?:\[(\d+)\])?(:(?:0->1|1->0))$")
_MANGLED = re.compile(r"__0([0-9A-Fa-f]{2})")
_DEPTH = 3
_LONGEST = 160   # characters of an expanded expression kept (long concatenations)


def _value(text: str) -> tuple[int, int] | None:
    """(width, value) of a sized constant without x or z digits, else None."""
    m = _VALUE.match(text.strip())
    if m is None:
        return None
    base = {"h": 16, "d": 10, "b": 2, "o": 8}[m.group(2)]
    try:
        return int(m.group(1)), int(m.group(3).replace("_", ""), base)
    except ValueError:
        return None


def demangle(name: str) -> str:
    """Verilator's encoding of non-identifier characters undone: ``__024`` -> ``$``,
    ``___05F`` -> ``__``."""
    return _MANGLED.sub(lambda m: chr(int(m.group(1), 16)), name)


def stable_scope(scope: str) -> str:
    """A hierarchy path with numbered duplicates renamed (``receiver.crc$39`` ->
    ``receiver.crc$n``)."""
    return _DUPLICATE.sub("$n", scope)


class StableNames:
    """The temporaries of one generated Verilog text (its lines), module by module."""

    def __init__(self, source_lines: list[str]):
        self._starts: list[int] = []
        self._modules: list[str] = []
        self._assigns: dict[str, dict[str, str]] = {}
        self._clocked: dict[str, dict[str, str]] = {}
        self._procedural: dict[str, dict[str, set[str]]] = {}
        self._widths: dict[str, dict[str, int]] = {}
        self._tied: dict[str, dict[str, set[int]]] = {}
        assigns: list[tuple[str, str, str]] = []
        partial: set[tuple[str, str]] = set()
        module = ""
        for n, line in enumerate(source_lines, 1):
            m = _MODULE.match(line)
            if m:
                module = m.group(1)
                self._starts.append(n)
                self._modules.append(module)
                continue
            m = _DECL.match(line)
            if m:
                width = int(m.group(1)) - int(m.group(2)) + 1 if m.group(1) else 1
                self._widths.setdefault(module, {})[m.group(3).lstrip("\\")] = width
                continue
            m = _ANY_ASSIGN.match(line)
            if m:
                assigns.append((module, m.group(1), m.group(2)))
            m = _ASSIGN.match(line)
            if m:
                self._assigns.setdefault(module, {})[m.group(1)] = m.group(2)
                continue
            m = _CLOCKED.match(line)
            if m:
                self._clocked.setdefault(module, {}).setdefault(m.group(2), m.group(1).lstrip("\\"))
                continue
            m = _PROCEDURAL.match(line)
            if m:
                self._procedural.setdefault(module, {}).setdefault(m.group(1), set()).add(m.group(2))
                continue
            if not line.lstrip().startswith("assign"):
                partial.update((module, n) for n in _TARGET.findall(line))
        for _ in range(2):   # a second pass sees the constants the first found (parts of parts)
            for module, lhs, rhs in assigns:
                self._tie(module, lhs, rhs)
        for module, temps in self._procedural.items():
            for number, values in temps.items():
                if (module, number) not in partial:   # every value it takes is in `values`
                    self._agree(module, f"${number}", list(values))

    def _agree(self, module: str, name: str, alternatives: list[str]) -> None:
        """Tie the bits on which all `alternatives` (each a sized constant) agree."""
        values = [_value(v) for v in alternatives]
        if not values or None in values:
            return
        width = min(w for w, _ in values)
        same = {b for b in range(width) if len({(v >> b) & 1 for _, v in values}) == 1}
        if same:
            self._tied.setdefault(module, {}).setdefault(name, set()).update(same)

    # -- constant bits ---------------------------------------------------------------------------

    def _part(self, module: str, text: str) -> tuple[int, set[int]] | None:
        """(width, tied bits counted from the part's LSB) of one concatenation part, or None
        when its width is unknown."""
        text = text.strip()
        m = _CONST.match(text)
        if m:
            return int(m.group(1)), set(range(int(m.group(1))))
        m = _PART.match(text)
        if m is None:
            return None
        name = m.group(1).lstrip("\\")
        if m.group(2) is None:
            width = self._widths.get(module, {}).get(name)
            if width is None:
                return None
            return width, set(self._tied.get(module, {}).get(name, set()))
        hi = int(m.group(2))
        lo = hi if m.group(3) is None else int(m.group(3))
        tied = self._tied.get(module, {}).get(name, set())
        return hi - lo + 1, {b - lo for b in tied if lo <= b <= hi}

    def _tie(self, module: str, lhs: str, rhs: str) -> None:
        tied = self._tied.setdefault(module, {})
        if _CONST.match(rhs) and not lhs.startswith("{"):
            m = _PART.match(lhs)
            if m is None:
                return
            name = m.group(1).lstrip("\\")
            if m.group(2) is None:
                width = self._widths.get(module, {}).get(name)
                if width is not None:
                    tied.setdefault(name, set()).update(range(width))
            else:
                hi = int(m.group(2))
                lo = hi if m.group(3) is None else int(m.group(3))
                tied.setdefault(name, set()).update(range(lo, hi + 1))
            return
        if _CONST.match(rhs):   # { a [31:2], a [0] } = 31'h0: every bit named on the left
            for part in lhs.strip("{} ").split(","):
                self._tie(module, part.strip(), rhs)
            return
        m = _PART.match(lhs)
        choice = _CHOICE.match(rhs)
        if choice and m is not None and m.group(2) is None:   # c ? K1 : K2
            self._agree(module, m.group(1).lstrip("\\"), [choice.group(1), choice.group(2)])
            return
        product = _PRODUCT.match(rhs)
        if product and m is not None and m.group(2) is None:   # x * K, x of w <= 10 bits
            part, k = self._part(module, product.group(1)), _value(product.group(2))
            width = self._widths.get(module, {}).get(m.group(1).lstrip("\\"))
            if part is not None and k is not None and width is not None and part[0] <= 10:
                mask = (1 << width) - 1
                values = {(i * k[1]) & mask for i in range(1 << part[0])}
                self._agree(module, m.group(1).lstrip("\\"),
                            [f"{width}'d{v}" for v in values])
            return
        if not (rhs.startswith("{") and rhs.endswith("}")) or m is None or m.group(2) is not None:
            return
        parts = [self._part(module, p) for p in rhs[1:-1].split(",")]
        bit, found = 0, set()
        for part in reversed(parts):   # the last part holds the LSBs
            if part is None:
                break
            width, bits = part
            found |= {bit + b for b in bits}
            bit += width
        if found:
            tied.setdefault(m.group(1).lstrip("\\"), set()).update(found)

    def tied(self, name: str, bit: int, line: int) -> bool:
        """Whether bit `bit` of signal `name` (as the Verilog spells it, without the escape) of
        the module at `line` is tied to a constant."""
        return bit in self._tied.get(self.module_at(line), {}).get(name, ())

    def module_at(self, line: int) -> str:
        """The module whose text holds `line` (1-based), "" before the first."""
        k = bisect.bisect_right(self._starts, line) - 1
        return self._modules[k] if k >= 0 else ""

    def _temp(self, module: str, number: str, depth: int) -> str:
        expr = self._assigns.get(module, {}).get(number)
        if expr is not None:
            if depth >= _DEPTH:
                return "$?"
            body = self._rewrite(expr, module, depth + 1)
            return f"$({body[:_LONGEST]}{'...' if len(body) > _LONGEST else ''})"
        sig = self._clocked.get(module, {}).get(number)
        if sig is not None:
            return f"$next({_DUPLICATE.sub('$n', sig)})"
        values = self._procedural.get(module, {}).get(number)
        if values and depth < _DEPTH:
            body = "|".join(sorted({self._rewrite(v, module, depth + 1) for v in values}))
            return f"$mux({body[:_LONGEST]}{'...' if len(body) > _LONGEST else ''})"
        return "$?"

    def _rewrite(self, text: str, module: str, depth: int) -> str:
        out = _TEMP.sub(lambda m: self._temp(module, m.group(1), depth), text)
        return re.sub(r"\s+", " ", _DUPLICATE.sub("$n", out)).strip()

    def text(self, text: str, line: int) -> str:
        """Source text of `line` with its temporaries and duplicates in stable form."""
        return self._rewrite(text, self.module_at(line), 0)

    def signal(self, name: str, line: int) -> str:
        """A toggle point's comment (``__02448[12]:0->1``, the signal declared at `line`) in
        stable form, with `TIED` after it when the Verilog ties that bit to a constant."""
        raw = demangle(name)
        stable = self._rewrite(raw, self.module_at(line), 0)
        m = _BIT.match(raw)
        if m and self.tied(m.group(1), int(m.group(2) or 0), line):
            return stable + TIED
        return stable
