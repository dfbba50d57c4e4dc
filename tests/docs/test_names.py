"""What the README names exists, and what falnb offers is named in the README.

Options and subcommands of ``%fal`` (against ``%fal --help``) and of ``falnb`` (against its
argparse tree), environment variables, make targets, and the ``falnb.`` API the prose names.
"""

from __future__ import annotations

import argparse
import re
import subprocess

import pytest
from docsource import ROOT, help_forms, readme_blocks, readme_prose, readme_spans, readme_text

import falnb
from falnb._settings import target_from_env
from falnb.cli import build_parser
from falnb.magics import USAGE

FLAG = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)")


def _section(title: str) -> str:
    prose = readme_prose()
    start = prose.index(f"## {title}\n")
    end = prose.find("\n## ", start + 1)
    return prose[start : end if end != -1 else None]


def _bullet(section: str, lead: str) -> str:
    text = _section(section)
    start = text.index(f"- {lead}")
    end = text.find("\n- ", start + 1)
    return text[start : end if end != -1 else None]


# -- %fal ------------------------------------------------------------------------------------

HELP_FLAGS = {flag for form in help_forms(USAGE) for flag in form.flags}


def test_the_readme_options_are_the_help_options() -> None:
    listed = set(FLAG.findall(_bullet("In a notebook", "Options:")))
    assert listed == HELP_FLAGS, (listed - HELP_FLAGS, HELP_FLAGS - listed)


def test_the_readme_fal_subcommands_are_the_help_subcommands() -> None:
    def subcommand(form: str) -> str | None:
        words = form.split()
        second = words[1] if len(words) > 1 else ""
        return second if re.fullmatch(r"[a-z]+|--help", second) else None

    shown = {subcommand(f.text) for f in help_forms(USAGE) if f.text.startswith("%fal ")} - {None}
    named = {subcommand(s) for s in readme_spans("%fal ")} - {None}
    assert named == shown, (named - shown, shown - named)


def test_every_option_the_readme_names_exists() -> None:
    """A span like `--seed auto` or `--list` is an option of %fal or of a falnb command."""
    known = HELP_FLAGS | {flag for _, parser in _commands() for flag in _flags(parser)}
    spans = [s for s in re.findall(r"`([^`]+)`", readme_prose()) if s.startswith("-")]
    named = {flag for span in spans for flag in FLAG.findall(span)}
    assert named - known == set()


# -- falnb ---------------------------------------------------------------------------------------


def _commands(
    parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command of ``falnb`` that does something: ("serve",), ("lock", "show"), ..."""
    parser = parser or build_parser()
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub, (*path, name))
                found += nested or [((*path, name), sub)]
    return found


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        flag
        for action in parser._actions
        for flag in action.option_strings
        if flag not in ("-h", "--help")
    }


def _spans_of(path: tuple[str, ...]) -> list[str]:
    prefix = " ".join(("falnb", *path))
    return [s for s in readme_spans("falnb ") if s == prefix or s.startswith(prefix + " ")]


def test_every_falnb_command_and_option_the_readme_names_exists() -> None:
    commands = dict(_commands())
    for span in readme_spans("falnb "):
        words = span.split()[1:]
        path = next(
            (p for p in sorted(commands, key=len, reverse=True) if tuple(words[: len(p)]) == p),
            None,
        )
        assert path is not None, f"{span!r}: no such falnb command"
        unknown = set(FLAG.findall(" ".join(words[len(path) :]))) - _flags(commands[path])
        assert unknown == set(), f"{span!r}: falnb {' '.join(path)} has no {unknown}"


@pytest.mark.parametrize(
    ("path", "parser"), [pytest.param(p, c, id=" ".join(p)) for p, c in _commands()]
)
def test_the_readme_shows_every_falnb_command_and_option(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    spans = _spans_of(path)
    assert spans, f"the README never shows falnb {' '.join(path)}"
    # An option is shown in the command's synopsis, or as `--option ...` in a paragraph
    # that shows the command.
    command = "`" + " ".join(("falnb", *path))
    spans += [
        span
        for paragraph in readme_prose().split("\n\n")
        if command + " " in paragraph or command + "`" in paragraph
        for span in re.findall(r"`(-[^`]+)`", paragraph)
    ]
    named = {flag for span in spans for flag in FLAG.findall(span)}
    assert _flags(parser) - named == set(), f"falnb {' '.join(path)}: options the README omits"


# -- environment, make, the Python API -----------------------------------------------------------


def _configuration_variables() -> set[str]:
    return set(re.findall(r"`(FALNB_[A-Z_]+)`", _section("Configuration")))


def test_every_variable_falnb_reads_is_in_the_configuration_table() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "falnb").rglob("*.py"))
    read = set(re.findall(r"[\"'](FALNB_[A-Z_]+)[\"']", source))
    from falnb._settings import _URL_ENV  # the URL variables are built

    read |= set(_URL_ENV.values())
    assert read == _configuration_variables(), (
        read - _configuration_variables(),
        _configuration_variables() - read,
    )


def test_the_url_variables_point_the_fal_target() -> None:
    urls = {v: f"http://example.invalid/{v.lower()}" for v in _configuration_variables()}
    urls = {v: u for v, u in urls.items() if v.endswith("_URL")}
    if "FALNB_REALTIME_URL" in urls:
        urls["FALNB_REALTIME_URL"] = "ws://example.invalid/realtime"
    target = target_from_env({"FALNB_TARGET": "fal", "FAL_KEY": "id:secret", **urls})
    assert target is not None
    shown = {target.run_url, target.queue_url, target.rest_url, target.cdn_url, target.realtime_url}
    assert set(urls.values()) == {u.rstrip("/") for u in shown}


def test_every_make_target_the_readme_names_exists() -> None:
    text = "\n".join([readme_prose(), *(b.source for b in readme_blocks())])
    targets = set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", text, re.MULTILINE))
    assert {"demo", "test"} <= targets
    for target in sorted(targets):
        dry = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert dry.returncode == 0, f"make {target}: {dry.stderr}"


def _exists(dotted: str) -> bool:
    value: object = falnb
    for name in dotted.split(".")[1:]:
        if not hasattr(value, name):
            return False
        value = getattr(value, name)
    return True


def test_every_falnb_name_the_readme_uses_exists() -> None:
    names = set(re.findall(r"\bfalnb(?:\.[A-Za-z_]\w*)+", readme_text()))
    names -= {"falnb.lock"}  # the lock file's name, not an attribute
    assert [name for name in sorted(names) if not _exists(name)] == []


def test_the_async_twins_exist() -> None:
    """'Every function has an async twin (`run_async`, `subscribe_async`, ...)'."""
    used = set(re.findall(r"\bfalnb\.([a-z_]+)\(", readme_text()))
    functions = {n for n in used if callable(getattr(falnb, n, None)) and n != "default_session"}
    assert {"run", "subscribe", "submit", "stream", "upload_file", "realtime"} <= functions
    assert [f for f in sorted(functions) if not hasattr(falnb, f"{f}_async")] == [
        "compare",  # builds a view of results already in hand, no I/O to await
        "form",  # a widget: its Run is a %%fal cell, which is sync as every cell is
        "usage",  # reads the session's own ledger, no I/O to await
        "verify_webhook",  # pure computation, no I/O to await
    ]


ERRORS = re.compile(r"`(\w+Error)`(?: \(([^)]*)\))?")


def _errors() -> list[tuple[str, list[str]]]:
    paragraph = _section("The Python API")
    paragraph = paragraph[paragraph.index("Errors form one hierarchy") :].split("\n\n")[0]
    return [(name, _attributes(said)) for name, said in ERRORS.findall(paragraph)]


def _attributes(said: str) -> list[str]:
    """`(status, detail)` lists attributes; in other words, `field_errors`-like names are."""
    said = " ".join(said.split())
    if re.fullmatch(r"[a-z_]+(, [a-z_]+)*", said):
        return said.split(", ")
    return re.findall(r"`([a-z_]+)`", said)


def _instance(cls: type[Exception]) -> Exception:
    status = {"ValidationError": 422, "RateLimitedError": 429}.get(cls.__name__, 500)
    if issubclass(cls, falnb.HTTPError):
        return cls("m", status_code=status, detail=[], request_id="r", error_type="t")
    return cls("m")


ERROR_ATTRIBUTES = [
    pytest.param(
        name,
        attribute,
        id=f"{name}.{attribute}",
    )
    for name, attributes in _errors()
    for attribute in attributes
]


def test_the_error_hierarchy_is_as_the_readme_says() -> None:
    named = [name for name, _ in _errors()]
    assert len(named) >= 8
    assert dict(_errors())["HTTPError"], "the attributes in HTTPError (...) were not read"
    for name in named:
        assert issubclass(getattr(falnb, name), falnb.FalError), name


@pytest.mark.parametrize(("name", "attribute"), ERROR_ATTRIBUTES)
def test_the_error_attributes_the_readme_names(name: str, attribute: str) -> None:
    assert hasattr(_instance(getattr(falnb, name)), attribute)


def test_the_context_has_what_the_readme_names() -> None:
    import falnb.local

    named = set(re.findall(r"`ctx\.(\w+)`", readme_text()))
    assert named >= {"log", "store", "cancelled", "request_id"}
    context = falnb.local.Context
    fields = set(getattr(context, "__annotations__", {})) | set(dir(context))
    assert named - fields == set()


def test_the_readme_links_exist() -> None:
    for link in re.findall(r"\]\(([^)#:]+)\)", readme_text()):
        assert (ROOT / link).exists(), link
