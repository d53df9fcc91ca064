"""OData query options as Graph applies them to directory objects: $filter, $select, $top, tokens.

`compile_filter` parses a `$filter` string, checks every clause against the entity's documented
operator table (schema.py), decides whether the query is "advanced" (needs `ConsistencyLevel:
eventual`), and returns a Python predicate plus an index hint for `eq`/`in` on keyed properties.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from emulator.clock import format_datetime, parse_datetime
from emulator.errors import GraphError, bad_request, unsupported_query
from emulator.schema import (
    ANY,
    BOOLEAN,
    COLLECTION,
    DATETIME,
    ENDS,
    EQ,
    GE,
    IN,
    LE,
    NE,
    NOT,
    NULL,
    NUMBER,
    STARTS,
    STRING,
    EntitySchema,
)

# ---- tokens --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_$@][\w.$@]*(?:/[A-Za-z_$@][\w.$@]*)*)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"startswith": STARTS, "endswith": ENDS, "contains": "contains"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string | boolean | null | datetime | date | guid | number
    value: Any


def _invalid(detail: str) -> GraphError:
    return bad_request(f"Invalid filter clause: {detail}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise _invalid(f"syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        raw = match.group()
        position = match.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("literal", raw, Literal("string", raw[1:-1].replace("''", "'"))))
        elif kind in ("datetime", "date", "guid", "number"):
            value: Any = raw
            if kind == "number":
                value = float(raw) if "." in raw else int(raw)
            tokens.append(Token("literal", raw, Literal(kind, value)))
        elif kind == "name":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                tokens.append(Token("literal", raw, Literal("boolean", lowered == "true")))
            elif lowered == "null":
                tokens.append(Token("literal", raw, Literal("null", None)))
            else:
                tokens.append(Token("name", raw))
        else:
            tokens.append(Token(raw, raw))
    return tokens


# ---- parser: tuples as AST -----------------------------------------------------------------------
# ("or", [nodes]) ("and", [nodes]) ("not", node)
# ("cmp", op, path, Literal)            op in eq ne gt ge lt le
# ("in", path, [Literal])
# ("func", name, path, Literal)         startsWith / endsWith / contains
# ("any", collection_path, var, node)   inside: paths are ("item", subpath or None)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _invalid(f"unexpected end of '{self.text}'.")
        self.index += 1
        return token

    def expect(self, kind: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise _invalid(f"expected '{kind}' but found '{token.text}'.")
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def parse(self) -> tuple:
        node = self.parse_or(None)
        if self.peek() is not None:
            raise _invalid(f"unexpected '{self.peek().text}'.")  # type: ignore[union-attr]
        return node

    def parse_or(self, var: str | None) -> tuple:
        nodes = [self.parse_and(var)]
        while self.keyword("or"):
            nodes.append(self.parse_and(var))
        return nodes[0] if len(nodes) == 1 else ("or", nodes)

    def parse_and(self, var: str | None) -> tuple:
        nodes = [self.parse_unary(var)]
        while self.keyword("and"):
            nodes.append(self.parse_unary(var))
        return nodes[0] if len(nodes) == 1 else ("and", nodes)

    def parse_unary(self, var: str | None) -> tuple:
        if self.keyword("not"):
            return ("not", self.parse_unary(var))
        return self.parse_primary(var)

    def parse_primary(self, var: str | None) -> tuple:
        token = self.take()
        if token.kind == "(":
            node = self.parse_or(var)
            self.expect(")")
            return node
        if token.kind != "name":
            raise _invalid(f"unexpected '{token.text}'.")
        lowered = token.text.lower()
        nxt = self.peek()
        if lowered in _FUNCTIONS and nxt is not None and nxt.kind == "(":
            self.take()
            path = self.path(self.expect("name").text, var)
            self.expect(",")
            literal = self.literal()
            self.expect(")")
            node: tuple = ("func", _FUNCTIONS[lowered], path, literal)
            return self.boolean_suffix(node)
        if (lowered.endswith("/any") or lowered.endswith("/all")) and nxt is not None and nxt.kind == "(":
            self.take()
            collection = self.path(token.text.rsplit("/", 1)[0], var)
            if lowered.endswith("/all"):
                raise unsupported_query("Lambda operator 'all' is not supported on directory objects.")
            inner_var = self.expect("name").text
            self.expect(":")
            body = self.parse_or(inner_var)
            self.expect(")")
            return ("any", collection, inner_var, body)
        path = self.path(token.text, var)
        operator = self.take()
        op = operator.text.lower()
        if operator.kind == "name" and op in _COMPARISONS:
            return ("cmp", op, path, self.literal())
        if operator.kind == "name" and op == "in":
            self.expect("(")
            values = [self.literal()]
            while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
                self.take()
                values.append(self.literal())
            self.expect(")")
            return ("in", path, values)
        raise _invalid(f"expected an operator after '{token.text}' but found '{operator.text}'.")

    def boolean_suffix(self, node: tuple) -> tuple:
        # `startsWith(mail,'a') eq true` is the long form of `startsWith(mail,'a')`.
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() in ("eq", "ne"):
            self.take()
            literal = self.literal()
            if literal.kind != "boolean":
                raise _invalid("a function result compares only with true or false.")
            if (token.text.lower() == "eq") != literal.value:
                return ("not", node)
        return node

    def path(self, text: str, var: str | None) -> Any:
        if var is not None:
            if text == var:
                return ("item", None)
            if text.startswith(var + "/"):
                return ("item", text[len(var) + 1 :])
        return text

    def literal(self) -> Literal:
        token = self.take()
        if token.kind != "literal":
            raise _invalid(f"expected a literal value but found '{token.text}'.")
        return token.value


def parse_filter(text: str) -> tuple:
    if not text.strip():
        raise _invalid("the filter is empty.")
    return _Parser(text).parse()


# ---- compiler ------------------------------------------------------------------------------------

Getter = Callable[[Any], Any]
Predicate = Callable[[Any], bool]


class Accessors:
    """How the compiler reads a property path from a stored object; one subclass per storage shape."""

    def value(self, path: str) -> Getter:  # pragma: no cover - interface
        raise NotImplementedError

    def item(self, collection: str, sub: str | None) -> Getter:
        if sub is None:
            return lambda item: item
        return lambda item: item.get(sub) if isinstance(item, dict) else None


@dataclass(slots=True)
class CompiledFilter:
    predicate: Predicate
    advanced: bool  # needs ConsistencyLevel: eventual
    paths: frozenset[str]
    index: tuple[str, list[Any]] | None  # (path, values) of a top-level eq / in on one property
    or_width: int = 1  # the most alternatives one `or` chain or `in` list offers (MAX_OR_CLAUSES)


# "The maximum number of expressions in a filter clause when using the in operator is 15 items by
# default"; Graph counts an `in` list as `or` clauses ("Too many child clauses specified in search filter
# expression containing 'OR' operators: 16. Max allowed: 15"). Advanced queries lift it.
MAX_OR_CLAUSES = 15


def or_width(node: tuple) -> int:
    """The widest `or` chain or `in` list anywhere in a parsed filter."""
    kind = node[0]
    if kind == "in":
        return len(node[2])
    if kind in ("and", "or"):
        widest = max(or_width(child) for child in node[1])
        return max(widest, len(node[1])) if kind == "or" else widest
    if kind == "not":
        return or_width(node[1])
    if kind == "any":
        return or_width(node[3])
    return 1


def too_many_or_clauses(width: int) -> GraphError:
    return unsupported_query(
        f"Too many child clauses specified in search filter expression containing 'OR' operators: {width}. "
        f"Max allowed: {MAX_OR_CLAUSES}."
    )


IDENTITY_ISSUERS_ALONE = {"google.com", "facebook.com", "mail", "phone"}  # objectIdentity rules


class _Compiler:
    def __init__(self, schema: EntitySchema, accessors: Accessors) -> None:
        self.schema = schema
        self.accessors = accessors
        self.advanced = False
        self.paths: set[str] = set()

    def canonical(self, path: str) -> str:
        lowered = path.lower()
        for name in self.schema.filters:
            if name.lower() == lowered:
                return name
        if self.schema.canonical(path.split("/", 1)[0]) is not None:
            raise unsupported_query(
                f"Unsupported or invalid query filter clause specified for property '{path}' of resource "
                f"'{self.schema.name[0].upper() + self.schema.name[1:]}'."
            )
        raise bad_request(f"Could not find a property named '{path}' on type 'microsoft.graph.{self.schema.name}'.")

    def allow(self, path: str, op: str) -> None:
        rule = self.schema.filters[path]
        if op in rule.default:
            return
        if op in rule.advanced:
            self.advanced = True
            return
        raise unsupported_query(f"Unsupported filter operator '{op}' for property '{path}'.")

    def compile(self, node: tuple, negated: bool = False) -> Predicate:
        kind = node[0]
        if kind in ("and", "or"):
            parts = [self.compile(child, negated) for child in node[1]]
            if kind == "and":
                return lambda obj: all(part(obj) for part in parts)
            return lambda obj: any(part(obj) for part in parts)
        if kind == "not":
            self.advanced = True  # NOT is an advanced query (docs/graph-contract.md#advanced-queries)
            inner = self.compile(node[1], True)
            return lambda obj: not inner(obj)
        if kind == "any":
            return self.compile_any(node, negated)
        if kind == "cmp":
            _, op, path, literal = node
            path = self.canonical(path)
            self.paths.add(path)
            key = NULL if literal.kind == "null" else op
            if op in ("gt", "lt"):
                raise unsupported_query(f"Unsupported filter operator '{op}' for property '{path}'.")
            self.allow(path, key if key != EQ or literal.kind != "null" else NULL)
            if negated:
                self.allow(path, NOT)
            getter = self.accessors.value(path)
            return self.comparison(op, getter, literal, self.schema.type_of(path), path)
        if kind == "in":
            _, path, literals = node
            path = self.canonical(path)
            self.paths.add(path)
            self.allow(path, IN)
            if negated:
                self.allow(path, NOT)
            getter = self.accessors.value(path)
            value_type = self.schema.type_of(path)
            wanted = {self.coerce(literal, value_type, path) for literal in literals}
            if value_type == STRING:
                return lambda obj: _lower(getter(obj)) in wanted
            return lambda obj: getter(obj) in wanted
        if kind == "func":
            _, name, path, literal = node
            if name == "contains":
                raise unsupported_query("The 'contains' function is not supported on directory objects.")
            path = self.canonical(path)
            self.paths.add(path)
            self.allow(path, name)
            if negated:
                self.allow(path, NOT)
            return self.function(name, self.accessors.value(path), self.coerce(literal, STRING, path))
        raise _invalid(f"unsupported expression '{kind}'.")

    def compile_any(self, node: tuple, negated: bool) -> Predicate:
        _, collection, _var, body = node
        collection = self.canonical(collection)
        self.paths.add(collection)
        self.allow(collection, ANY)
        if negated:
            self.allow(collection, NOT)
        items = self.accessors.value(collection)
        subs: set[str | None] = set()
        issuers: list[str] = []

        def inner(item_node: tuple) -> Predicate:
            kind = item_node[0]
            if kind in ("and", "or"):
                parts = [inner(child) for child in item_node[1]]
                if kind == "and":
                    return lambda item: all(part(item) for part in parts)
                return lambda item: any(part(item) for part in parts)
            if kind == "cmp" and isinstance(item_node[2], tuple):
                _, op, (_, sub), literal = item_node
                if op != EQ:
                    raise unsupported_query(f"Unsupported operator '{op}' inside any() on '{collection}'.")
                subs.add(sub)
                value = self.coerce(literal, STRING, collection)
                if sub == "issuer":
                    issuers.append(value or "")
                getter = self.accessors.item(collection, sub)
                return lambda item: _lower(getter(item)) == value
            if kind == "func" and isinstance(item_node[2], tuple):
                _, name, (_, sub), literal = item_node
                if name != STARTS:
                    raise unsupported_query(f"Unsupported function '{name}' inside any() on '{collection}'.")
                subs.add(sub)
                prefix = self.coerce(literal, STRING, collection) or ""
                getter = self.accessors.item(collection, sub)
                return lambda item: (_lower(getter(item)) or "").startswith(prefix)
            raise unsupported_query(f"Unsupported expression inside any() on '{collection}'.")

        predicate = inner(body)
        if collection == "identities":
            # objectIdentity: issuerAssignedId needs issuer too; issuer alone only for a few issuers.
            if "issuerAssignedId" in subs and "issuer" not in subs:
                raise unsupported_query("Filtering identities on issuerAssignedId requires issuer as well.")
            if subs == {"issuer"} and not all(i in IDENTITY_ISSUERS_ALONE for i in issuers):
                raise unsupported_query(
                    "Filtering identities on issuer alone is supported only for google.com, facebook.com, "
                    "mail and phone."
                )
        return lambda obj: any(predicate(item) for item in (items(obj) or ()))

    def coerce(self, literal: Literal, value_type: str, path: str) -> Any:
        if literal.kind == "null":
            return None
        expected = {
            STRING: ("string",),
            BOOLEAN: ("boolean",),
            DATETIME: ("datetime",),
            NUMBER: ("number",),
            COLLECTION: ("string",),
        }.get(value_type, ("string",))
        if literal.kind not in expected:
            raise bad_request(
                f"A binary operator with incompatible types was detected. Found operand types "
                f"'{_edm(value_type)}' and '{_edm_literal(literal.kind)}' for property '{path}'."
            )
        if literal.kind == "string":
            return literal.value.lower()
        return literal.value

    def comparison(self, op: str, getter: Getter, literal: Literal, value_type: str, path: str) -> Predicate:
        if literal.kind == "null":
            if op == EQ:
                return lambda obj: getter(obj) in (None, "", ())
            if op == NE:
                return lambda obj: getter(obj) not in (None, "", ())
            raise _invalid("null compares only with eq or ne.")
        if value_type == DATETIME:
            return _datetime_comparison(op, getter, self.coerce(literal, DATETIME, path))
        value = self.coerce(literal, value_type, path)
        read = (lambda obj: _lower(getter(obj))) if value_type == STRING else getter
        if op == EQ:
            return lambda obj: read(obj) == value
        if op == NE:
            return lambda obj: read(obj) != value
        if op == GE:
            return lambda obj: (v := read(obj)) is not None and v >= value
        if op == LE:
            return lambda obj: (v := read(obj)) is not None and v <= value
        raise unsupported_query(f"Unsupported filter operator '{op}'.")

    def function(self, name: str, getter: Getter, value: str) -> Predicate:
        if name == STARTS:
            return lambda obj: (_lower(getter(obj)) or "").startswith(value)
        return lambda obj: (_lower(getter(obj)) or "").endswith(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _edm(value_type: str) -> str:
    return {
        STRING: "Edm.String",
        BOOLEAN: "Edm.Boolean",
        DATETIME: "Edm.DateTimeOffset",
        NUMBER: "Edm.Int32",
    }.get(value_type, "Edm.String")


def _edm_literal(kind: str) -> str:
    return {
        "string": "Edm.String",
        "boolean": "Edm.Boolean",
        "datetime": "Edm.DateTimeOffset",
        "date": "Edm.Date",
        "guid": "Edm.Guid",
        "number": "Edm.Int32",
    }.get(kind, kind)


def _datetime_comparison(op: str, getter: Getter, text: str) -> Predicate:
    # Stored timestamps have second precision; round the literal so ge/le keep their meaning.
    moment = parse_datetime(text)
    whole = moment.replace(microsecond=0)
    exact = whole == moment
    floor = format_datetime(whole)
    ceil = floor if exact else format_datetime(whole + timedelta(seconds=1))
    if op == EQ:
        return (lambda obj: getter(obj) == floor) if exact else (lambda obj: False)
    if op == NE:
        return (lambda obj: getter(obj) != floor) if exact else (lambda obj: True)
    if op == GE:
        return lambda obj: (v := getter(obj)) is not None and v >= ceil
    if op == LE:
        return lambda obj: (v := getter(obj)) is not None and v <= floor
    raise unsupported_query(f"Unsupported filter operator '{op}'.")


def compile_filter(text: str, schema: EntitySchema, accessors: Accessors) -> CompiledFilter:
    tree = parse_filter(text)
    compiler = _Compiler(schema, accessors)
    predicate = compiler.compile(tree)
    exclusive = [p for p in compiler.paths if schema.filters[p].exclusive]
    if exclusive and any(not schema.filters[p].exclusive for p in compiler.paths):
        # signInActivity filters work "but not with any other filterable properties"
        # (docs/graph-contract.md#sign-in-activity).
        raise unsupported_query(f"Filtering on '{exclusive[0]}' is not supported in combination with other properties.")
    return CompiledFilter(predicate, compiler.advanced, frozenset(compiler.paths), _index_hint(tree), or_width(tree))


def _index_hint(tree: tuple) -> tuple[str, list[Any]] | None:
    """A top-level `p eq v`, `p in (...)`, or an `and` containing one, usable with a dictionary."""
    nodes = tree[1] if tree[0] == "and" else [tree]
    for node in nodes:
        if node[0] == "cmp" and node[1] == EQ and isinstance(node[2], str) and node[3].kind == "string":
            return node[2].lower(), [node[3].value]
        if node[0] == "in" and isinstance(node[1], str) and all(lit.kind == "string" for lit in node[2]):
            return node[1].lower(), [lit.value for lit in node[2]]
    if tree[0] == "or":
        paths: set[str] = set()
        values: list[Any] = []
        for node in tree[1]:
            hint = _index_hint(node) if node[0] != "and" else None
            if hint is None:
                return None
            paths.add(hint[0])
            values.extend(hint[1])
        if len(paths) == 1:
            return paths.pop(), values
    return None


# ---- $select, $top, query options ----------------------------------------------------------------


def parse_select(text: str | None, schema: EntitySchema, *, single: bool = False) -> tuple[str, ...]:
    if text is None or not text.strip():
        return schema.default_select
    names: list[str] = []
    for raw in text.split(","):
        raw = raw.strip()
        if not raw:
            continue
        name = schema.canonical(raw)
        if name is None:
            raise bad_request(
                f"Parsing OData Select and Expand failed: Could not find a property named '{raw}' on type "
                f"'microsoft.graph.{schema.name}'."
            )
        if name in schema.single_only and not single:
            raise GraphError(
                501,
                "NotImplemented",
                f"This operation target is not yet supported. Property '{name}' can only be returned for "
                f"a single {schema.name}.",
            )
        if name not in names:
            names.append(name)
    if "id" not in names:
        names.append("id")  # Graph always returns id
    return tuple(names)


def parse_top(text: str | None, default: int, maximum: int, *, what: str = "page size") -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"Invalid {what} specified: '{text}'.") from None
    if value < 1 or value > maximum:
        raise unsupported_query(f"Invalid page size specified: '{value}'. Must be between 1 and {maximum} inclusive.")
    return value


def query_options(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """System query options keyed by lower-case name with the `$` (Graph accepts any casing)."""
    options: dict[str, str] = {}
    for key, value in params:
        lowered = key.lower()
        if lowered.startswith("$"):
            options[lowered] = value
    return options


# ---- opaque tokens -------------------------------------------------------------------------------


def encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, *, what: str = "skip token") -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError(what)
        return payload
    except (ValueError, UnicodeDecodeError):
        raise bad_request(f"The {what} is malformed or not valid for this request.") from None
