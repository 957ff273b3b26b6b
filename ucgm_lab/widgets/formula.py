"""Formulas in ``t`` typed by a learner, parsed into an expression tree and never executed.

A formula such as ``"sin(pi * t / 2)"`` is parsed with :func:`ast.parse` (mode ``"eval"``)
and the tree is checked against a whitelist: numbers, the name ``t``, the constants ``pi`` and
``e``, the operators ``+ - * / **``, unary ``-`` and ``+``, one comparison (``<``, ``<=``,
``>``, ``>=``, ``==``, ``!=``, for ``where``) and calls of the fixed functions of
:data:`FUNCTIONS`. Everything else (attributes, subscripts, other names, keywords, lambdas,
comprehensions, strings, ...) is refused with a message that lists what is allowed. The
checked tree is then evaluated node by node with torch operations: no Python code from the
formula ever runs, so a shared formula cannot reach ``os`` through ``torch.serialization.os``
or the like.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ALLOWED", "CONSTANTS", "FUNCTIONS", "MAX_LENGTH", "coefficient_from_expression"]

MAX_LENGTH = 400
"""Longest formula accepted (characters)."""

_MAX_NODES = 200
_MAX_EXPONENT = 100.0
"""Largest |constant exponent| of ``**`` (a larger one only overflows)."""


@dataclass(frozen=True)
class _Function:
    fn: Callable[..., Tensor]
    arity: int


FUNCTIONS: dict[str, _Function] = {
    "sin": _Function(torch.sin, 1),
    "cos": _Function(torch.cos, 1),
    "tan": _Function(torch.tan, 1),
    "exp": _Function(torch.exp, 1),
    "log": _Function(torch.log, 1),
    "sqrt": _Function(torch.sqrt, 1),
    "abs": _Function(torch.abs, 1),
    "tanh": _Function(torch.tanh, 1),
    "sigmoid": _Function(torch.sigmoid, 1),
    "minimum": _Function(torch.minimum, 2),
    "maximum": _Function(torch.maximum, 2),
    "where": _Function(torch.where, 3),
    "clamp": _Function(torch.clamp, 3),
}
"""The functions a formula may call, with their number of arguments."""

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

ALLOWED = (
    "numbers, t, pi, e, + - * / **, unary -, one comparison (< <= > >= == !=) and the "
    "functions " + ", ".join(f"{n}({', '.join('xyz'[: f.arity])})" for n, f in FUNCTIONS.items())
)
"""What a formula may use, as shown in error messages."""

_DESCRIBE = {
    ast.Subscript: "a subscript ([...])",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.IfExp: "an if-else (use where(condition, x, y))",
    ast.BoolOp: "and/or",
    ast.NamedExpr: "an assignment (:=)",
    ast.JoinedStr: "a string",
    ast.Starred: "a *argument",
    ast.Await: "await",
}

Value = float | bool | Tensor


class _Checker:
    """Walks a parsed formula and raises ValueError at the first node not allowed."""

    def __init__(self, label: str, text: str) -> None:
        self.label, self.text = label, text

    def fail(self, what: str) -> ValueError:
        return ValueError(
            f"{self.label}: {self.text!r} uses {what}, which a formula may not use; allowed: "
            f"{ALLOWED}."
        )

    def check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"the constant {value!r} (only numbers are allowed)")
            if isinstance(value, int) and value.bit_length() > 1000 or not math.isfinite(value):
                raise self.fail(f"a number too large for a float ({str(value)[:20]}...)")
        elif isinstance(node, ast.Name):
            if node.id != "t" and node.id not in CONSTANTS:
                hint = " (call it: name(x))" if node.id in FUNCTIONS else ""
                raise self.fail(f"the name {node.id!r}{hint}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise self.fail(f"the operator {type(node.op).__name__}")
            if isinstance(node.op, ast.Pow):
                exponent = _constant(node.right)
                if exponent is not None and abs(exponent) > _MAX_EXPONENT:
                    raise self.fail(f"the exponent {exponent:g} (|exponent| <= {_MAX_EXPONENT:g})")
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise self.fail(f"the operator {type(node.op).__name__}")
            self.check(node.operand)
        elif isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
                raise self.fail("a chained or non-numeric comparison")
            self.check(node.left)
            self.check(node.comparators[0])
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if isinstance(node.func, ast.Attribute):
                raise self.fail(f"an attribute (.{node.func.attr})")
            if name not in FUNCTIONS:
                raise self.fail(f"a call of {name!r}" if name else "a call of an expression")
            if node.keywords:
                raise self.fail(f"a keyword argument in {name}(...)")
            arity = FUNCTIONS[name].arity
            if len(node.args) != arity:
                raise self.fail(f"{name}(...) with {len(node.args)} argument(s) ({arity} expected)")
            for arg in node.args:
                self.check(arg)
        elif isinstance(node, ast.Attribute):
            raise self.fail(f"an attribute (.{node.attr})")
        else:
            raise self.fail(_DESCRIBE.get(type(node), f"a {type(node).__name__} expression"))


def _constant(node: ast.AST) -> float | None:
    """The value of a (signed) number literal, else None."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return sign * float(node.value)
    return None


def _evaluate(node: ast.AST, t: Tensor) -> Value:
    """Evaluate a checked tree: Python floats for constants, torch ops on tensors."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return t if node.id == "t" else CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, t), _evaluate(node.right, t))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, t))
    if isinstance(node, ast.Compare):
        op = _COMPARE[type(node.ops[0])]
        return op(_evaluate(node.left, t), _evaluate(node.comparators[0], t))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_evaluate(a, t) for a in node.args]
    tensors = [
        a if isinstance(a, Tensor) else torch.tensor(a, dtype=t.dtype, device=t.device)
        for a in args
    ]
    if node.func.id == "where":
        tensors[0] = tensors[0].to(torch.bool)
    return FUNCTIONS[node.func.id].fn(*tensors)


def coefficient_from_expression(
    expression: str, label: str = "coefficient"
) -> Callable[[Tensor], Tensor]:
    """Turn a formula in ``t`` such as ``"sin(pi * t / 2)"`` into a coefficient function.

    The formula is parsed into an expression tree and checked against a whitelist (see the
    module docstring and :data:`ALLOWED`); it is evaluated with torch operations, never
    executed as Python. A constant such as ``"1"`` is broadcast to the shape of ``t``.

    Args:
        expression: The formula (at most :data:`MAX_LENGTH` characters).
        label: Name used in error messages (e.g. ``"alpha"``).

    Returns:
        A function mapping a tensor ``t`` to a tensor of the same shape and dtype.

    Raises:
        ValueError: If the formula is not a string, empty, too long, not valid syntax, or
            uses anything outside the whitelist (the message says what, and what is allowed).
    """
    if not isinstance(expression, str):
        raise ValueError(
            f"{label}: a formula must be a string such as '1 - t', got {type(expression).__name__}."
        )
    text = expression.strip()
    if not text:
        raise ValueError(f"{label}: the formula is empty; write a function of t such as 1 - t.")
    if len(text) > MAX_LENGTH:
        raise ValueError(
            f"{label}: the formula has {len(text)} characters; at most {MAX_LENGTH} are allowed."
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"{label}: {text!r} is not a valid formula ({exc.msg}).") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError(f"{label}: {text[:40]!r}... is nested too deeply.") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise ValueError(f"{label}: the formula has more than {_MAX_NODES} parts; simplify it.")
    _Checker(label, text).check(tree.body)
    body = tree.body

    def coefficient(t: Tensor) -> Tensor:
        try:
            value = _evaluate(body, t)
        except (OverflowError, ZeroDivisionError) as exc:
            raise ValueError(
                f"{label}: {text!r} cannot be evaluated ({exc}): a constant part overflows "
                "or divides by zero."
            ) from None
        return torch.as_tensor(value, dtype=t.dtype, device=t.device) + torch.zeros_like(t)

    coefficient.__name__ = label
    return coefficient
