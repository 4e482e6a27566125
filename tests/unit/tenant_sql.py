"""Static check that every SQL statement in src/ names its tenant (docs/scale-out.md).

On Citus every tenant table is distributed by `tenant_id`; a statement reaches exactly one
shard group only if each tenant table it reads or writes is pinned by `tenant_id = <value>`,
directly or through an equi-join on `tenant_id` with a table that is. Anything else fans out
to every node (or, for joins, is refused). This module finds the SQL the package sends, with
PostgreSQL's own parser (pglast wraps libpg_query), and names each statement that does not.

How SQL is found: every string expression in src/ (constants, f-strings, `+` chains,
`sql.SQL("…").format(…)`) that starts with a statement keyword, plus the bodies of SQL
functions created by the migrations. Interpolated parts are resolved when they name a string
bound once in the same function or module; otherwise they become the identifier `__fmt__`,
which never counts as a tenant filter, so SQL that builds its WHERE clause at run time must
either keep the tenant filter literal or be listed, with a reason, in ALLOWED.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast as pg
from pglast.enums import A_Expr_Kind, BoolExprType

STATEMENT_START = re.compile(r"^\s*\(?\s*(SELECT|WITH|INSERT|UPDATE|DELETE|COPY)\b")
PLACEHOLDER = "__fmt__"


@dataclass(frozen=True)
class Finding:
    where: str  # "path:line" (or "migration N" for a function body)
    sql: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}\n    {' '.join(self.sql.split())[:240]}"


# --- which tables are tenant tables -------------------------------------------------------

def tenant_tables(migrations: list[tuple[int, str, str]]) -> set[str]:
    """Every table some migration creates with a `tenant_id` column."""
    tables = set()
    for _version, _name, text in migrations:
        for raw in pglast.parse_sql(text):
            stmt = raw.stmt
            if isinstance(stmt, pg.CreateStmt) and any(
                    isinstance(c, pg.ColumnDef) and c.colname == "tenant_id"
                    for c in stmt.tableElts or ()):
                tables.add(stmt.relation.relname)
    return tables


def function_bodies(migrations: list[tuple[int, str, str]]) -> list[tuple[str, str]]:
    """(where, body) of the latest definition of every LANGUAGE sql function."""
    bodies: dict[str, tuple[str, str]] = {}
    for version, _name, text in migrations:
        for raw in pglast.parse_sql(text):
            stmt = raw.stmt
            if not isinstance(stmt, pg.CreateFunctionStmt):
                continue
            options = {o.defname: o.arg for o in stmt.options or ()}
            language = getattr(options.get("language"), "sval", "")
            if language == "sql" and options.get("as"):
                name = ".".join(n.sval for n in stmt.funcname)
                bodies[name] = (f"migration {version} ({name})", options["as"][0].sval)
    return list(bodies.values())


# --- checking one statement ---------------------------------------------------------------

def _children(node):
    for name in node.__slots__:
        value = getattr(node, name, None)
        if isinstance(value, pg.Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, pg.Node):
                    yield item
                elif isinstance(item, tuple):
                    yield from (i for i in item if isinstance(i, pg.Node))


def _ranges(from_items) -> list[pg.RangeVar]:
    """The tables of a FROM list, through joins but not into subqueries (checked on their own)."""
    found = []
    for item in from_items or ():
        if isinstance(item, pg.RangeVar):
            found.append(item)
        elif isinstance(item, pg.JoinExpr):
            found += _ranges((item.larg, item.rarg))
    return found


def _join_quals(from_items) -> list:
    quals = []
    for item in from_items or ():
        if isinstance(item, pg.JoinExpr):
            if item.quals is not None:
                quals.append(item.quals)
            quals += _join_quals((item.larg, item.rarg))
    return quals


def _conjuncts(expr) -> list:
    """The ANDed parts of a predicate; an OR or NOT is one opaque part (it pins nothing)."""
    if isinstance(expr, pg.BoolExpr) and expr.boolop == BoolExprType.AND_EXPR:
        return [part for arg in expr.args for part in _conjuncts(arg)]
    if (_is_equality(expr) and isinstance(expr.lexpr, pg.RowExpr)
            and isinstance(expr.rexpr, pg.RowExpr) and len(expr.lexpr.args) == len(expr.rexpr.args)):
        # PostgreSQL itself rewrites (a, b) = (c, d) into a = c AND b = d before planning
        return [pg.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=expr.name, lexpr=a, rexpr=b)
                for a, b in zip(expr.lexpr.args, expr.rexpr.args)]
    return [expr] if expr is not None else []


def _is_equality(expr) -> bool:
    return (isinstance(expr, pg.A_Expr) and expr.kind == A_Expr_Kind.AEXPR_OP
            and [n.sval for n in expr.name] == ["="])


def _tenant_column(expr) -> tuple[str | None] | None:
    """(qualifier,) when expr is a reference to a tenant_id column, else None."""
    if isinstance(expr, pg.ColumnRef):
        fields = [getattr(f, "sval", None) for f in expr.fields]
        if fields and fields[-1] == "tenant_id":
            return (fields[-2] if len(fields) >= 2 else None,)
    return None


def _is_value(expr) -> bool:
    """A parameter or constant (possibly cast): what pins a statement to one tenant. A slot
    filled at run time (`sql.Literal(tenant)`) counts: only a value can stand there beside
    a column without an operator."""
    if isinstance(expr, pg.TypeCast):
        return _is_value(expr.arg)
    if isinstance(expr, pg.ColumnRef):
        return [getattr(f, "sval", None) for f in expr.fields] == [PLACEHOLDER]
    return isinstance(expr, (pg.ParamRef, pg.A_Const))


def _pinned(tables: list[pg.RangeVar], predicates: list, tenant: set[str]) -> list[str]:
    """Names (alias or table) of the tenant tables in `tables` that no predicate pins."""
    names = {(t.alias.aliasname if t.alias else t.relname): t.relname for t in tables}
    tenant_names = [n for n, rel in names.items() if rel in tenant]
    if not tenant_names:
        return []
    only = tenant_names[0] if len(names) == 1 else None

    def resolve(qualifier):
        return qualifier if qualifier is not None else only

    pinned, edges = set(), []
    for conjunct in (c for p in predicates for c in _conjuncts(p)):
        if not _is_equality(conjunct):
            continue
        left, right = _tenant_column(conjunct.lexpr), _tenant_column(conjunct.rexpr)
        for column, other, other_expr in ((left, right, conjunct.rexpr),
                                          (right, left, conjunct.lexpr)):
            if column is None:
                continue
            me = resolve(column[0])
            if _is_value(other_expr):
                pinned.add(me)
            elif other is not None:
                them = resolve(other[0])
                if them is not None and them not in names:
                    pinned.add(me)  # correlated to an outer query's tenant column
                else:
                    edges.append((me, them))
    changed = True
    while changed:  # an equi-join on tenant_id with a pinned table pins the other side
        changed = False
        for a, b in edges:
            for x, y in ((a, b), (b, a)):
                if x in pinned and y not in pinned and y is not None:
                    pinned.add(y)
                    changed = True
    return [n for n in tenant_names if n not in pinned]


def check_statement(sql: str, tenant: set[str]) -> list[str]:
    """`tenant`: the distributed tables (tenant tables less the reference tables)."""
    return _check(sql, tenant)


def _check(sql: str, tenant: set[str]) -> list[str]:
    """Problems of one SQL text (one or more statements); empty when every use is pinned."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError as e:
        try:  # a slot glued to a keyword (f"…{only}ORDER BY", `only` empty or ending in a space)
            parsed = pglast.parse_sql(sql.replace(PLACEHOLDER, f" {PLACEHOLDER} "))
        except pglast.parser.ParseError:
            return [f"cannot be parsed, so cannot be checked ({e})"]
    problems: list[str] = []

    def visit(node):
        if isinstance(node, pg.SelectStmt) and node.op.value == 0:  # SETOP_NONE
            predicates = [node.whereClause, *_join_quals(node.fromClause)]
            for name in _pinned(_ranges(node.fromClause), predicates, tenant):
                problems.append(f"reads tenant table {name!r} without `tenant_id = <value>`")
        elif isinstance(node, (pg.UpdateStmt, pg.DeleteStmt)):
            extra = node.fromClause if isinstance(node, pg.UpdateStmt) else node.usingClause
            tables = [node.relation, *_ranges(extra)]
            predicates = [node.whereClause, *_join_quals(extra)]
            verb = "updates" if isinstance(node, pg.UpdateStmt) else "deletes from"
            for name in _pinned(tables, predicates, tenant):
                problems.append(f"{verb} tenant table {name!r} without `tenant_id = <value>`")
        elif isinstance(node, pg.InsertStmt) and node.relation.relname in tenant:
            columns = [c.name for c in node.cols or ()]
            if "tenant_id" not in columns:
                problems.append(f"inserts into tenant table {node.relation.relname!r} "
                                "without naming tenant_id")
        elif (isinstance(node, pg.CopyStmt) and node.relation is not None
              and node.relation.relname in tenant):
            columns = [getattr(c, "sval", None) for c in node.attlist or ()]
            if "tenant_id" not in columns:
                problems.append(f"copies tenant table {node.relation.relname!r} "
                                "without a tenant_id column")
            if not node.is_from:
                problems.append(f"copies all of tenant table {node.relation.relname!r} out")
        for child in _children(node):
            visit(child)

    for raw in parsed:
        visit(raw.stmt)
    return problems


# --- finding the SQL in Python source -----------------------------------------------------

def _to_sql(text: str) -> str:
    text = re.sub(r"%\(\w+\)s|%s|%b|%t", "$1", text).replace("%%", "%")
    return re.sub(r"\{\w*\}", PLACEHOLDER, text)  # sql.SQL("…{}…").format(…) slots


class _Folder:
    """Folds string expressions of one module into text, resolving simple names."""

    def __init__(self, tree: ast.Module):
        self.module_names = self._bindings(tree.body)
        self.scope: dict[str, ast.expr] = {}

    @staticmethod
    def _bindings(body) -> dict[str, ast.expr]:
        seen: dict[str, list[ast.expr]] = {}
        for node in body:
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef,
                                                               ast.AsyncFunctionDef)) else ():
                if isinstance(sub, ast.Assign) and len(sub.targets) == 1 \
                        and isinstance(sub.targets[0], ast.Name):
                    seen.setdefault(sub.targets[0].id, []).append(sub.value)
        return {k: v[0] for k, v in seen.items() if len(v) == 1}

    def enter(self, func: ast.AST) -> None:
        self.scope = self._bindings(func.body)

    def fold(self, node: ast.expr, depth: int = 0) -> str | None:
        """The text of a string expression, or None when it is not one."""
        if depth > 5:
            return PLACEHOLDER
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant)
                           else self._part(v.value, depth) for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            if left is None and right is None:
                return None
            return (left if left is not None else self._part(node.left, depth)) + \
                (right if right is not None else self._part(node.right, depth))
        return None

    def _part(self, node: ast.expr, depth: int) -> str:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "join" and isinstance(node.func.value, ast.Constant)
                and len(node.args) == 1):
            items = node.args[0]
            if isinstance(items, ast.Name):
                items = self.scope.get(items.id) or self.module_names.get(items.id)
            if isinstance(items, (ast.Tuple, ast.List)) and all(
                    isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items.elts):
                return node.func.value.value.join(i.value for i in items.elts)
        if isinstance(node, ast.Name):
            bound = self.scope.get(node.id) or self.module_names.get(node.id)
            if bound is not None:
                text = self.fold(bound, depth + 1)
                if text is not None:
                    return text
        return PLACEHOLDER


def sql_in_source(path: Path, root: Path) -> list[tuple[str, str]]:
    """(path:line, SQL) of every statement-like string expression in one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    folder = _Folder(tree)
    found: list[tuple[str, str]] = []

    def visit(node, in_function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not in_function:
            folder.enter(node)
            for child in ast.iter_child_nodes(node):
                visit(child, True)
            folder.scope = {}
            return
        if isinstance(node, ast.expr):
            text = folder.fold(node)
            if text is not None:
                if STATEMENT_START.match(text):
                    found.append((f"{path.relative_to(root)}:{node.lineno}", _to_sql(text)))
                return
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return found


# Small, rarely written, read by every node: replicated to all of them (docs/scale-out.md).
REFERENCE_TABLES = frozenset({"tenants"})


def scan(src: Path, migrations, allowed: dict[tuple[str, str], str]) -> tuple[list[Finding],
                                                                                set]:
    """Findings not covered by `allowed` ({(path, snippet): reason}), and the allowances used."""
    tenant = tenant_tables(migrations) - REFERENCE_TABLES
    statements = [(where, sql) for path in sorted(src.rglob("*.py"))
                  for where, sql in sql_in_source(path, src.parent)]
    statements += function_bodies(migrations)
    findings, used = [], set()
    for where, sql in statements:
        for problem in check_statement(sql, tenant):
            key = next((k for k in allowed
                        if (where == k[0] or where.startswith(k[0] + ":")) and k[1] in sql), None)
            if key is not None:
                used.add(key)
            else:
                findings.append(Finding(where, sql, problem))
    return findings, used
