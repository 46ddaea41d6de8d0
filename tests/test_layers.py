"""The layering rules of docs/channels.md, enforced by reading the source (no import is executed).

- Integrations never import the web pages, the API or the inbox's socket consumers.
- Accounts and conversations never import an integration.
- Core code (everything outside ``integrations/<kind>/`` and the registry) never compares a
  channel's kind: it asks ``adapter_for(kind)``.

Each checker is also run on a small made-up module that breaks its rule, so a checker that
stopped seeing anything would fail here rather than pass quietly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpdesk.conversations.models import ChannelKind

ROOT = Path(__file__).resolve().parent.parent
KINDS = frozenset(ChannelKind.values)

# (importer's package, a module it must never import, why)
RULES = [
    ("integrations", "helpdesk.web", "integrations never import the web pages"),
    ("integrations", "helpdesk.api", "integrations never import the API"),
    ("integrations", "helpdesk.realtime.consumers", "integrations never import the socket consumers"),
    ("helpdesk.accounts", "integrations", "accounts never import an integration"),
    ("helpdesk.conversations", "integrations", "conversations never import an integration"),
]
# Where a channel kind may be named in a comparison: the registry, and the kinds' own packages.
KIND_ALLOWED = {"helpdesk/conversations/adapters.py", "helpdesk/conversations/models/core.py"}
QUERY_CALLS = {"filter", "exclude", "get", "Q"}


def _python_files(*tops: str) -> list[Path]:
    files = [p for top in tops for p in (ROOT / top).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module the source imports, absolute, at any depth (inside functions too)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            found.add(base_name)
            # ``from helpdesk.realtime import consumers`` imports the module consumers.
            found.update(".".join(filter(None, (base_name, alias.name))) for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in ("import_module", "import_string") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def layer_violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    imported = imports_of(source, module, is_package=is_package)
    return [
        f"{module} imports {name}: {why}"
        for importer, forbidden, why in RULES
        if _within(module, importer)
        for name in sorted(imported)
        if _within(name, forbidden)
    ]


def _names_a_kind(node: ast.AST, context: str) -> bool:
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "ChannelKind"
            and sub.attr.isupper()
        ):
            return True
        if isinstance(sub, ast.Constant) and sub.value in KINDS and "kind" in context:
            return True
    return False


def kind_comparisons(source: str) -> list[int]:
    """Lines that compare a channel's kind: ``==``/``in`` tests, ``match`` cases, query filters."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and _names_a_kind(node, ast.unparse(node)):
            lines.append(node.lineno)
        elif isinstance(node, ast.match_case) and _names_a_kind(node.pattern, "kind"):
            lines.append(node.pattern.lineno)
        elif isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in QUERY_CALLS:
                lines += [
                    kw.value.lineno
                    for kw in node.keywords
                    if kw.arg and "kind" in kw.arg and _names_a_kind(kw.value, kw.arg)
                ]
    return sorted(lines)


TEMPLATE_KIND = re.compile(r"kind\s*(?:==|!=|in)\s*['\"](?:" + "|".join(sorted(KINDS)) + r")['\"]")
SCRIPT_KIND = re.compile(r"channel_kind\s*(?:===?|!==?)\s*['\"]")


def _core_files() -> list[Path]:
    files = _python_files("helpdesk", "smartchat") + sorted((ROOT / "integrations").glob("*.py"))
    return [p for p in files if str(p.relative_to(ROOT)) not in KIND_ALLOWED]


# --- The checkers catch what they are meant to catch -------------------------------------


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("integrations.pigeon.inbound", "from helpdesk.web import views"),
        ("integrations.pigeon.inbound", "import helpdesk.api.serializers"),
        ("integrations.pigeon.inbound", "from helpdesk.realtime import consumers"),
        ("integrations.pigeon.inbound", "def f():\n    from helpdesk.realtime.consumers import is_id"),
        ("helpdesk.conversations.actions.inbound", "from integrations.widget import outbound"),
        ("helpdesk.conversations.fanout", "def f():\n    from integrations import outbound"),
        ("helpdesk.accounts.services", "import importlib\nimportlib.import_module('integrations.outbound')"),
    ],
)
def test_the_import_checker_sees_a_forbidden_import(module, source):
    assert layer_violations(source, module)


def test_the_import_checker_allows_the_downward_imports():
    source = "from helpdesk.conversations import actions\nfrom helpdesk.realtime.sockets import is_id\n"
    assert layer_violations(source, "integrations.pigeon.inbound") == []
    assert layer_violations("from ..widget import outbound", "integrations.pigeon.inbound") == []
    assert "integrations.outbound" in imports_of("from ..outbound import customer_effect", "integrations.widget.a")
    assert "helpdesk.realtime.sockets" in imports_of("from .sockets import is_id", "helpdesk.realtime", is_package=True)
    assert layer_violations("from helpdesk.events import log", "helpdesk.conversations.actions.inbound") == []


@pytest.mark.parametrize(
    "source",
    [
        "if channel.kind == ChannelKind.WIDGET: pass",
        "if conversation['channel_kind'] != ChannelKind.WIDGET: pass",
        "ok = channel.kind in (ChannelKind.TELEGRAM, ChannelKind.VK)",
        "if channel.kind == 'telegram': pass",
        "match channel.kind:\n    case ChannelKind.VK:\n        pass",
        "Channel.objects.filter(kind=ChannelKind.WIDGET)",
        "Message.objects.exclude(channel__kind='vk')",
    ],
)
def test_the_kind_checker_sees_a_comparison(source):
    assert kind_comparisons(source)


def test_the_kind_checker_lets_messages_kinds_and_channel_creation_be():
    source = (
        "if message.kind == MessageKind.NOTE: pass\n"
        "Channel.objects.create(kind=ChannelKind.WIDGET)\n"
        "adapter = adapter_for(channel.kind)\n"
    )
    assert kind_comparisons(source) == []
    assert TEMPLATE_KIND.search('{% if channel.kind == "widget" %}')
    assert not TEMPLATE_KIND.search("{% if m.kind == 'note' %}")


# --- The code base keeps the rules -------------------------------------------------------


def test_integrations_accounts_and_conversations_keep_to_their_layers():
    files = _python_files("helpdesk", "integrations", "smartchat")
    assert len(files) > 100  # the walk found the code base
    violations = [
        violation
        for path in files
        for violation in layer_violations(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")
    ]
    assert violations == []


def test_core_code_never_compares_a_channels_kind():
    found = [
        f"{path.relative_to(ROOT)}:{line}" for path in _core_files() for line in kind_comparisons(path.read_text())
    ]
    found += [
        f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, match.start()) + 1}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for source in [path.read_text()]
        for match in TEMPLATE_KIND.finditer(source)
    ]
    found += [
        f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, match.start()) + 1}"
        for path in sorted((ROOT / "static" / "app").rglob("*.js"))
        for source in [path.read_text()]
        for match in SCRIPT_KIND.finditer(source)
    ]
    assert found == [], "ask adapter_for(kind) instead (docs/channels.md)"
