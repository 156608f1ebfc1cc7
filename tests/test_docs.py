"""The documentation stays true to the tree: links resolve, and every setting the code reads is documented.

Settings are found in the code, not in a hand-kept list: the environment reads of gateway/config.py and
deploy/gunicorn.conf.py (parsed with ast), the variables deploy/docker-entrypoint.sh and the compose files
expand, and, as a cross-check on the parser, every name gateway.config.load_settings asks its mapping for.
A setting added to any of them without a line in env.example and a row in docs/configuration.md fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gateway.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIG_DOC = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / "env.example"
PYTHON_READERS = [ROOT / "gateway" / "config.py", ROOT / "deploy" / "gunicorn.conf.py"]
SHELL_READERS = [ROOT / "deploy" / "docker-entrypoint.sh", *sorted(ROOT.glob("docker-compose*.yml"))]
# Read from the environment but not settings: gunicorn.conf.py's marker for a metrics directory it created.
INTERNAL = {"DOMINION_OWNED_METRICS_DIR"}

SETTING_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{2,}")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
SHELL_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)|\$([A-Z][A-Z0-9_]*)")


# --- Markdown: headings, anchors, links ---------------------------------------------------------

def prose_lines(path: Path):
    """(line number, text) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 ... suffixes for repeats."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(path: Path):
    """(line number, target) of every link that points inside the repository."""
    for number, line in prose_lines(path):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                yield number, target


def broken_links(path: Path) -> list[str]:
    """Each relative link of path whose file or heading does not exist, as 'file:line: target (why)'."""
    problems = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        where = f"{shown}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and destination.suffix != ".md":
            problems.append(f"{where} (anchor into a file that is not Markdown)")
        elif anchor and anchor not in anchors(destination):
            problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def test_github_slugs_match_githubs_rules():
    assert github_slug("POST /v1/llm/complete") == "post-v1llmcomplete"
    assert github_slug("Against LiteLLM (`make bench-compare`)") == "against-litellm-make-bench-compare"
    assert github_slug("What the drop-in endpoints support") == "what-the-drop-in-endpoints-support"
    assert github_slug("[Keys](docs/api.md) and limits") == "keys-and-limits"


def test_the_link_checker_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nope) [web](https://example.com)\n"
                    "```\n[in code](ignored.md)\n```\n`[inline](ignored.md)`\n", encoding="utf-8")
    problems = broken_links(page)
    assert len(problems) == 2
    assert "missing.md (no such file)" in problems[0] and "#nope (no heading" in problems[1]


def test_documentation_exists():
    names = {path.name for path in DOCS}
    for required in ("README.md", "api.md", "compat.md", "admin.md", "configuration.md", "deployment.md",
                     "reliability.md", "performance.md"):
        assert required in names


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_readme_is_read_in_ten_minutes():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


# --- Settings: what the code reads --------------------------------------------------------------

def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "string" assignments, so reads through a named constant are seen too."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


def _string(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def python_env_reads(path: Path) -> set[str]:
    """Setting names a module reads from the environment.

    A read is a name passed to `<mapping>.get(...)`, `os.getenv(...)` or to one of the module's own
    helper functions (config.py's `_integer(env, "PORT", ...)`, gunicorn.conf.py's `_int("PORT", ...)`),
    or a subscript `os.environ["NAME"]` that is read rather than assigned.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _module_constants(tree)
    helpers = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    names = set()
    for node in ast.walk(tree):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Call):
            func = node.func
            reads = ((isinstance(func, ast.Attribute) and func.attr in ("get", "getenv"))
                     or (isinstance(func, ast.Name) and (func.id in helpers or func.id == "getenv")))
            if reads:
                candidates = list(node.args[:2])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            candidates = [node.slice]
        for candidate in candidates:
            value = _string(candidate, constants)
            if value and SETTING_NAME.fullmatch(value):
                names.add(value)
    return names - INTERNAL


def shell_env_reads(path: Path) -> set[str]:
    """Variables a shell script or compose file expands: ${NAME...} and $NAME."""
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))
    return {braced or bare for braced, bare in SHELL_VARIABLE.findall(text)}


class RecordingEnv(dict):
    """An empty environment that remembers every name it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.asked.add(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self.asked.add(name)
        return super().__contains__(name)


def settings_read_by_code() -> set[str]:
    names = set()
    for path in PYTHON_READERS:
        names |= python_env_reads(path)
    for path in SHELL_READERS:
        names |= shell_env_reads(path)
    return names


def test_the_parser_sees_every_setting_the_config_asks_for():
    """If config.py's reading helpers change shape, the static parser must still find every name."""
    env = RecordingEnv()
    load_settings(env)
    parsed = python_env_reads(ROOT / "gateway" / "config.py")
    assert env.asked, "load_settings read nothing from the mapping it was given"
    assert env.asked <= parsed, f"read by load_settings but not found by the parser: {sorted(env.asked - parsed)}"


def test_the_parser_finds_reads_in_every_form(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text(
        "import os\nMARK = 'VIA_CONSTANT'\n"
        "def _int(name, default):\n    return int(os.environ.get(name) or default)\n"
        "def _text(env, name, default):\n    return env.get(name, default)\n"
        "a = os.environ.get('FROM_GET')\nb = os.getenv('FROM_GETENV')\nc = os.environ['FROM_SUBSCRIPT']\n"
        "d = _int('FROM_HELPER', 1)\ne = _text({}, 'FROM_ENV_HELPER', None)\nf = os.environ.get(MARK)\n"
        "os.environ['ASSIGNED_ONLY'] = '1'\ng = {'NOT_A_READ': 1}\n", encoding="utf-8")
    assert python_env_reads(module) == {"FROM_GET", "FROM_GETENV", "FROM_SUBSCRIPT", "FROM_HELPER",
                                        "FROM_ENV_HELPER", "VIA_CONSTANT"}
    script = tmp_path / "entry.sh"
    script.write_text('# ${COMMENTED}\nif [ "${RUN_IT:-1}" != 0 ]; then echo $OTHER; fi\n', encoding="utf-8")
    assert shell_env_reads(script) == {"RUN_IT", "OTHER"}


def documented_in_env_example() -> set[str]:
    """NAME=... lines, commented out or not."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE))


def documented_in_configuration() -> set[str]:
    """`NAME` in a row of a table in docs/configuration.md."""
    names = set()
    for _, line in prose_lines(CONFIG_DOC):
        if line.lstrip().startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line))
    return names


def test_code_reads_the_settings_we_know_of():
    """Guards the parsers against finding nothing: a few settings every version of the gateway reads."""
    assert {"DATABASE_URL", "ADMIN_TOKEN", "RATE_LIMIT_MAX", "GUNICORN_THREADS", "RUN_MIGRATIONS"} <= (
        settings_read_by_code())


def test_every_setting_is_in_env_example():
    missing = settings_read_by_code() - documented_in_env_example()
    assert not missing, f"settings the code reads that env.example does not list: {sorted(missing)}"


def test_every_setting_is_in_the_configuration_table():
    missing = settings_read_by_code() - documented_in_configuration()
    assert not missing, f"settings the code reads that docs/configuration.md has no row for: {sorted(missing)}"


def test_env_example_lists_only_settings_the_code_reads():
    stale = documented_in_env_example() - settings_read_by_code()
    assert not stale, f"env.example lists settings nothing reads: {sorted(stale)}"
