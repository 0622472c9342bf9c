"""The ``--when`` expression language: a parser into a small tree and its evaluator.

EXPR uses ``== != < > <= >=``, ``and``, ``or``, ``not``, parentheses, integers (``12``,
``0x1f``, ``0b101``), signal patterns (each must name exactly one signal) and FSM state names
(``ctrl_state == DRIVE``). A signal that is x or z never satisfies a comparison.
"""

from __future__ import annotations

import re
from typing import Callable

from .errors import WavesError
from .reader import Vcd

__all__ = ["Expression", "parse"]

_TOKEN = re.compile(r"\s*(?:(?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d+)|(?P<op>==|!=|<=|>=|<|>|\(|\))"
                    r"|(?P<name>[A-Za-z_\\][\w.$\\\[\]*?]*))")
_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


class Expression:
    """A node of a parsed expression: num, sig (a VCD name), state (an unresolved name), not,
    and, or, cmp."""

    def __init__(self, kind, *args):
        self.kind, self.args = kind, args

    def signals(self) -> set[str]:
        """The VCD names the expression reads."""
        if self.kind == "sig":
            return {self.args[0]}
        return set().union(*(a.signals() for a in self.args if isinstance(a, Expression)))

    def eval(self, value_of) -> int | bool | None:
        """Its value, with value_of(name) giving each signal's integer (None for x or z)."""
        k, a = self.kind, self.args
        if k == "num":
            return a[0]
        if k == "sig":
            return value_of(a[0])
        if k == "not":
            v = a[0].eval(value_of)
            return None if v is None else not v
        if k == "and":
            return all(x.eval(value_of) for x in a)
        if k == "or":
            return any(x.eval(value_of) for x in a)
        lhs, rhs = a[1].eval(value_of), a[2].eval(value_of)
        if lhs is None or rhs is None:
            return False      # x or z never satisfies a comparison
        return _OPS[a[0]](int(lhs), int(rhs))


def parse(text: str, vcd: Vcd, fsms: dict[str, dict[int, str]]) -> Expression:
    """The tree of `text`; names resolve against `vcd`, state names against `fsms`
    ({FSM register: {code: state name}})."""
    return _Parser(text, vcd, fsms).parse()


class _Parser:
    """expr := and ('or' and)*; and := not ('and' not)*; not := 'not' not | cmp;
    cmp := atom (op atom)?; atom := number | signal | FSM state name | '(' expr ')'."""

    def __init__(self, text: str, vcd: Vcd, fsms: dict[str, dict[int, str]]):
        self.text, self.vcd, self.fsms, self.pos = text, vcd, fsms, 0
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise WavesError(f"bad expression '{text}': cannot read '{text[pos:].strip()}'")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        if not self.tokens:
            raise WavesError("empty --when expression")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise WavesError(f"bad expression '{self.text}': ends too early")
        self.pos += 1
        return tok

    def parse(self) -> Expression:
        node = self._or()
        if self._peek() is not None:
            raise WavesError(f"bad expression '{self.text}': unexpected '{self._peek()[1]}'")
        return node

    def _or(self) -> Expression:
        return self._chain("or", self._and)

    def _and(self) -> Expression:
        return self._chain("and", self._not)

    def _chain(self, op: str, operand) -> Expression:
        """operand (op operand)*: one operand as is, several as one `op` node."""
        items = [operand()]
        while self._peek() == ("name", op):
            self._take()
            items.append(operand())
        return items[0] if len(items) == 1 else Expression(op, *items)

    def _not(self) -> Expression:
        if self._peek() == ("name", "not"):
            self._take()
            return Expression("not", self._not())
        return self._cmp()

    def _cmp(self) -> Expression:
        left = self._atom()
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in _OPS:
            op = self._take()[1]
            right = self._atom()
            left, right = self._states(left, right), self._states(right, left)
            for side in (left, right):
                if side.kind == "state":
                    raise WavesError(f"bad expression '{self.text}': '{side.args[0]}' is neither a "
                                     f"signal nor a state of the FSM it is compared with")
            return Expression("cmp", op, left, right)
        if left.kind == "state":
            raise WavesError(f"bad expression '{self.text}': no signal matches '{left.args[0]}'")
        return left

    def _states(self, node: Expression, other: Expression) -> Expression:
        """A bare name compared with an FSM register is one of its state names."""
        if node.kind == "state" and other.kind == "sig" and other.args[0] in self.fsms:
            for code, name in self.fsms[other.args[0]].items():
                if name.upper() == node.args[0].upper():
                    return Expression("num", code)
        return node

    def _atom(self) -> Expression:
        kind, text = self._take()
        if kind == "num":
            return Expression("num", int(text.replace("_", ""), 0))
        if kind == "op" and text == "(":
            node = self._or()
            if self._take() != ("op", ")"):
                raise WavesError(f"bad expression '{self.text}': missing ')'")
            return node
        if kind == "name" and text not in ("and", "or", "not"):
            hits = self.vcd.match(text)
            if len(hits) == 1:
                return Expression("sig", hits[0])
            if len(hits) > 1:
                raise WavesError(f"'{text}' matches {len(hits)} signals in --when "
                                 f"({', '.join(self.vcd.short(h) for h in hits[:4])}, ...): "
                                 f"name one")
            return Expression("state", text)
        raise WavesError(f"bad expression '{self.text}': unexpected '{text}'")
