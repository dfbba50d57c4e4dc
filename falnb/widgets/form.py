"""An input form built from an endpoint's schema, whose Run is a ``%%fal`` cell.

::

    %fal form local/text-to-image          # or: falnb.form("local/text-to-image")

Fields come in ``x-fal-order-properties`` order with their defaults filled in: choices are
dropdowns, bounded numbers sliders (integer or not), booleans checkboxes, text a text box
(``prompt`` a text area), image/audio/video fields a URL or the name of a notebook variable
(a path, PIL image or bytes), or an uploaded file. Each field's description is its tooltip
and help line.

What the form holds *is* a cell: :meth:`Form.cell_text` writes the ``%%fal`` cell, and Run
parses that text and runs it through the magic's own path (``FalMagics._invoke``:
validation, the lock, the live view, the result, its cost), so the form and the cell it
shows can never disagree. Before that, the form checks the values against the schema and
marks the bad fields; nothing is sent then.

The view is composed of ipywidgets (which JupyterLab, Notebook 7 and VS Code all render
without an extension of falnb's own); where widgets do not render (GitHub, nbconvert), the
saved output is a table of the fields and the cell text.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from falnb._magic_parse import Invocation, parse, scalar
from falnb.client.storage import _uploadable as uploadable
from falnb.schemas import EndpointSchema, describe

if TYPE_CHECKING:
    from falnb.magics import FalMagics
    from falnb.result import Result

__all__ = ["Form", "build", "cell_value", "form"]

#: Fields shown as a multi-line text area.
_LONG_TEXT = frozenset({"prompt", "negative_prompt", "system_prompt", "text"})
_MEDIA_KINDS = ("image", "audio", "video", "file")
_MEDIA_NAME = re.compile(r"(image|audio|video|mask|file)s?_urls?$|^(image|audio|video)$")
#: A slider only where its range is one a hand can pick from.
_MAX_SLIDER_SPAN = 100_000
_REFERENCE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]\n]*\])*)\}")
_PLAIN_START = re.compile(r"^[A-Za-z0-9(_.,/~+]")


# -- the cell text ----------------------------------------------------------------------------


def _escaped(text: str) -> str:
    """``text`` with every ``{name}`` doubled, so the cell's parser reads it literally."""
    return _REFERENCE.sub(lambda m: "{{" + m[1] + "}}", text)


def cell_value(value: Any) -> str:
    """``value`` as a body line's YAML, which the ``%%fal`` parser reads back as ``value``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, str):
        plain = (
            _PLAIN_START.match(value) is not None
            and value == value.strip()
            and "\n" not in value
            and ": " not in value
            and " #" not in value
            and scalar(value) == value
        )
        return _escaped(value if plain else json.dumps(value, ensure_ascii=False))
    return _escaped(json.dumps(value, ensure_ascii=False))


# -- fields -----------------------------------------------------------------------------------


def _kind(name: str, schema: Mapping[str, Any], owner: EndpointSchema) -> str:
    """How a field is edited: choice, flag, slider, number, media, text, long-text or yaml."""
    ui = schema.get("ui")
    if (isinstance(ui, dict) and ui.get("field") in _MEDIA_KINDS) or (
        schema.get("type") == "string" and _MEDIA_NAME.search(name)
    ):
        return "media"
    if _choices(schema, owner):
        return "choice"
    kind = schema.get("type")
    if kind == "boolean":
        return "flag"
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (
            isinstance(low, (int, float))
            and isinstance(high, (int, float))
            and "default" in schema
            and 0 < high - low <= _MAX_SLIDER_SPAN
        ):
            return "slider"
        return "number"
    if kind == "string":
        return "long-text" if name in _LONG_TEXT else "text"
    return "yaml"


def _choices(schema: Mapping[str, Any], owner: EndpointSchema) -> list[Any]:
    """The enum of the field, or of its one enum branch (``image_size``'s presets)."""
    if "enum" in schema:
        return list(schema["enum"])
    branches = [owner.resolve(b) for b in [*schema.get("anyOf", []), *schema.get("oneOf", [])]]
    enums = [b["enum"] for b in branches if "enum" in b]
    return list(enums[0]) if len(enums) == 1 else []


def _step(low: float, high: float) -> float:
    return float(10 ** math.floor(math.log10((high - low) / 100))) if high > low else 0.1


class _Field:
    """One input field: its control, its help line, and the value it holds (or none)."""

    def __init__(
        self, name: str, schema: dict[str, Any], owner: EndpointSchema, *, required: bool
    ) -> None:
        import ipywidgets as w

        self.name, self.schema, self.required = name, schema, required
        self.kind = _kind(name, schema, owner)
        self.default = schema.get("default")
        about = str(schema.get("description") or "")
        allowed = describe(schema, owner)
        label = name + (" *" if required else "")
        common: dict[str, Any] = {
            "description": label,
            "tooltip": about or allowed,
            "style": {"description_width": "11em"},
            "layout": w.Layout(width="100%"),
        }
        self.upload: Any = None
        if self.kind == "choice":
            options = [(str(c), c) for c in _choices(schema, owner)]
            if self.default is None or not required:
                options = [("", None), *options] if self.default is None else options
            self.control: Any = w.Dropdown(options=options, value=self.default, **common)
        elif self.kind == "flag":
            self.control = w.Checkbox(value=bool(self.default), indent=True, **common)
        elif self.kind == "slider":
            low, high = schema["minimum"], schema["maximum"]
            if schema.get("type") == "integer":
                self.control = w.IntSlider(
                    min=low, max=high, value=self.default, continuous_update=False, **common
                )
            else:
                step = _step(low, high)
                self.control = w.FloatSlider(
                    min=low,
                    max=high,
                    step=step,
                    value=self.default,
                    readout_format=f".{max(0, -round(math.log10(step)))}f",
                    continuous_update=False,
                    **common,
                )
        elif self.kind == "long-text":
            self.control = w.Textarea(
                value=str(self.default or ""), placeholder=allowed, rows=3, **common
            )
        elif self.kind == "media":
            self.control = w.Combobox(
                value=str(self.default or ""),
                placeholder="a URL, or the name of a variable (path, PIL image, bytes)",
                ensure_option=False,
                **common,
            )
            self.upload = w.FileUpload(description="upload", multiple=False)
        else:  # text, number, yaml: typed as the cell would type it
            shown = "" if self.default is None else cell_value(self.default)
            if self.kind == "text":
                shown = str(self.default or "")
            self.control = w.Text(value=shown, placeholder=allowed, **common)
        self.control.add_class("falnb-form-input")
        help_text = " · ".join(t for t in (about, f"allowed: {allowed}") if t)
        self.help = w.HTML(f"<small>{html.escape(help_text)}</small>")
        self.help.add_class("falnb-form-help")
        parts = [self.control] if self.upload is None else [w.HBox([self.control, self.upload])]
        self.box = w.VBox([*parts, self.help])
        self.box.add_class("falnb-form-field")
        self.box.add_class(f"falnb-field-{name}")

    def text(self, namespace: Mapping[str, Any]) -> str | None:
        """The field's value as cell text (``{name}`` for a variable), None when left unset."""
        value = self.control.value
        if self.kind in ("text", "long-text"):
            if value == (self.default or "") and not (self.required and value):
                return None
            return cell_value(value)
        if self.kind == "media":
            text = str(value).strip()
            if not text or text == (self.default or ""):
                return None
            if text.isidentifier() and text in namespace:
                return "{" + text + "}"
            return cell_value(text)
        if self.kind in ("number", "yaml"):
            text = str(value).strip()
            shown = "" if self.default is None else cell_value(self.default)
            return None if not text or text == shown else _escaped(text)
        if value is None or (value == self.default and not self.required):
            return None
        if self.kind == "flag" and self.default is None and value is False:
            return None
        return cell_value(value)

    def mark(self, bad: bool) -> None:
        (self.box.add_class if bad else self.box.remove_class)("falnb-form-bad")


def _media_names(namespace: Mapping[str, Any]) -> list[str]:
    """Notebook variables a media field can take: paths to files, PIL images, bytes."""
    from pathlib import PurePath

    return sorted(
        name
        for name, value in namespace.items()
        if isinstance(name, str)
        and not name.startswith("_")
        and (isinstance(value, PurePath) or uploadable(value))
    )


# -- the form ---------------------------------------------------------------------------------


class _OutputHandle:
    """A display handle over the form's output area: what the live view updates at the end."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self.final = False

    def show(self, widget: Any) -> _OutputHandle:
        bundle, _ = widget._repr_mimebundle_()
        self.output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        return self

    def update(self, data: dict[str, Any], metadata: Any = None, raw: bool = True) -> None:  # noqa: ARG002 - display handle's signature
        self.final = True  # the view ends with the result (or a failed line) in its place
        item = {"output_type": "display_data", "data": data, "metadata": metadata or {}}
        self.output.outputs = (item,)


class Form:
    """An input form for one endpoint (see the module's docs); :func:`form` builds one."""

    def __init__(
        self,
        schema: EndpointSchema,
        *,
        options: str = "",
        magics: FalMagics,
        namespace: dict[str, Any],
    ) -> None:
        import ipywidgets as w

        self.schema = schema
        self.endpoint = schema.endpoint_id
        self.options = options.strip()
        self.namespace = namespace
        self._magics = magics
        self.result: Result | None = None
        """The last result Run returned."""
        self._worker: threading.Thread | None = None
        required = set(schema.input.get("required", []))
        self.fields = [
            _Field(name, field, schema, required=name in required)
            for name, field in schema.fields()
            if not (isinstance(field.get("ui"), dict) and field["ui"].get("hidden"))
        ]
        media = _media_names(namespace)
        for item in self.fields:
            if item.kind == "media":
                item.control.options = media
                item.upload.observe(lambda change, f=item: self._uploaded(f, change), "value")
        about = schema.document.get("info", {}).get("description") or ""
        title = f"<b>{html.escape(self.endpoint)}</b>" + (
            f" — {html.escape(str(about))}" if about else ""
        )
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.copy_button = w.Button(description="Copy as cell", icon="copy")
        self.run_button.on_click(lambda _b: self._start())
        self.copy_button.on_click(lambda _b: self._show_cell())
        self.message = w.HTML("")
        self.message.add_class("falnb-form-message")
        self.cell_view = w.Textarea(value="", layout=w.Layout(width="100%", display="none"), rows=6)
        self.cell_view.add_class("falnb-form-cell")
        self.output = w.Output()
        self.output.add_class("falnb-form-output")
        self.widget = w.VBox(
            [
                w.HTML(title),
                *(f.box for f in self.fields),
                w.HBox([self.run_button, self.copy_button]),
                self.message,
                self.cell_view,
                self.output,
            ]
        )
        self.widget.add_class("falnb-form")

    # -- what it holds

    @property
    def controls(self) -> dict[str, Any]:
        """Each field's input widget by field name (``form.controls["prompt"].value = ...``)."""
        return {f.name: f.control for f in self.fields}

    def cell_text(self) -> str:
        """The ``%%fal`` cell the form stands for: Run runs exactly this."""
        line = " ".join(p for p in ("%%fal", self.endpoint, self.options) if p)
        body = [
            f"{f.name}: {text}" for f in self.fields if (text := f.text(self.namespace)) is not None
        ]
        return "\n".join([line, *body])

    def invocation(self) -> Invocation:
        """The cell text, parsed as ``%%fal`` parses it (a UsageError if it cannot be)."""
        line, _, body = self.cell_text().partition("\n")
        call = parse(line.removeprefix("%%fal").strip(), body, self.namespace)
        assert isinstance(call, Invocation)  # the line always names an endpoint
        return call

    def problems(self) -> list[str]:
        """What the schema says is wrong with the values, one line each; marks those fields."""
        from IPython.core.error import UsageError

        try:
            arguments = self.invocation().arguments
        except UsageError as exc:
            return [str(exc).split("\n", 1)[0]]
        found = self.schema.problems(arguments)
        for item in self.fields:
            item.mark(any(p.split(":", 1)[0].split(".", 1)[0] == item.name for p in found))
        return found

    def insert_cell(self) -> None:
        """Put :meth:`cell_text` into a new cell below (from code run in a cell)."""
        shell = self._magics.shell
        if shell is not None:
            shell.set_next_input(self.cell_text())

    # -- running

    def run(self) -> Result | None:
        """Check, then run the cell text through ``%%fal``'s path; shows it in the form.

        Returns the Result, or None when the values were refused (nothing sent) or the
        request failed (the form shows why).
        """
        from IPython.core.error import UsageError

        from falnb.magics import FalCellError

        found = self.problems()
        if found:
            self._say(
                "Nothing was sent; fix these first:",
                found,
            )
            return None
        self._say("", [])
        handle = _OutputHandle(self.output)
        self.output.outputs = ()
        try:
            result: Result = self._magics._invoke(
                self.invocation(), self.namespace, show=handle.show
            )
        except FalCellError as exc:
            self._say(exc.title, exc.lines)
            return None
        except UsageError as exc:
            self._say(str(exc).split("\n", 1)[0], [])
            return None
        self.result = result
        if not handle.final and hasattr(result, "_repr_mimebundle_"):
            data, metadata = result._repr_mimebundle_()
            self.output.outputs = (
                *self.output.outputs,
                {"output_type": "display_data", "data": data, "metadata": metadata},
            )
        return result

    def _start(self) -> None:
        """Run (the button): in a thread, so the kernel stays free and Cancel is handled."""
        if self._worker is not None and self._worker.is_alive():
            return
        self.run_button.disabled = True

        def work() -> None:
            try:
                self.run()
            except Exception as exc:  # noqa: BLE001 - a thread's error has no cell to go to
                self._say(f"{self.endpoint} failed:", [str(exc) or type(exc).__name__])
            finally:
                self.run_button.disabled = False

        self._worker = threading.Thread(target=work, name="falnb-form", daemon=True)
        self._worker.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run the Run button started."""
        if self._worker is not None:
            self._worker.join(timeout)

    def _show_cell(self) -> None:
        self.cell_view.value = self.cell_text()
        self.cell_view.layout.display = ""

    def _uploaded(self, item: _Field, change: Mapping[str, Any]) -> None:
        files = change.get("new") or ()
        if not files:
            return
        name = f"form_{item.name}"
        self.namespace[name] = bytes(files[0]["content"])
        item.control.options = sorted({*item.control.options, name})
        item.control.value = name

    def _say(self, title: str, lines: list[str]) -> None:
        if not title:
            self.message.value = ""
            return
        rows = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines)
        self.message.value = (
            f'<div class="falnb-form-error" style="color:#b00020">'
            f"<b>{html.escape(title)}</b><ul>{rows}</ul></div>"
        )

    # -- display

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle or {})
        cell = self.cell_text()
        data["text/plain"] = f"falnb form: {self.endpoint}\n{cell}"
        data["text/html"] = self._static_html(cell)
        return data, {}

    def _static_html(self, cell: str) -> str:
        """What a saved notebook shows where widgets do not render: the fields and the cell."""
        rows = "".join(
            f"<tr><td><code>{html.escape(f.name)}</code>{' *' if f.required else ''}</td>"
            f"<td>{html.escape(describe(f.schema, self.schema))}</td>"
            f"<td>{html.escape(str(f.schema.get('description') or ''))}</td></tr>"
            for f in self.fields
        )
        return (
            f'<div class="falnb-form-static"><p>falnb form: <b>{html.escape(self.endpoint)}'
            f"</b></p><table><tr><th>field</th><th>allowed</th><th>about</th></tr>{rows}"
            f"</table><pre>{html.escape(cell)}</pre></div>"
        )

    def __repr__(self) -> str:
        return f"falnb form: {self.endpoint}"


def form(endpoint: str, options: str = "") -> Form:
    """An input form for ``endpoint`` built from its schema (``%fal form ENDPOINT``).

    ``options`` are ``%%fal`` options for the cell it runs (``"--seed 42 -q"``). Raises
    :class:`~falnb.schemas.UnknownEndpointError` (with a "did you mean") for an id the target
    does not serve, and ValueError when the target publishes no schema for it.
    """
    from falnb._environment import ipython_shell
    from falnb.magics import FalMagics

    shell = ipython_shell()
    magics = shell.magics_manager.registry.get("FalMagics") if shell is not None else None
    return build(endpoint, options, magics or FalMagics(shell=shell))


def build(endpoint: str, options: str, magics: FalMagics) -> Form:
    """:func:`form` for the magics ``magics`` (whose session and namespace it uses)."""
    from falnb._magic_parse import usage_error

    shell = magics.shell
    namespace: dict[str, Any] = shell.user_ns if shell is not None else {}
    call = parse(f"{endpoint} {options}", None, namespace)
    if not isinstance(call, Invocation) or call.options.sweep is not None or call.arguments:
        usage_error("%fal form takes one endpoint and %%fal options, e.g. %fal form local/echo -q")
    if not call.options.wait:
        usage_error("%fal form shows its run in the form: --no-wait does not apply")
    session = magics.session
    target = call.options.target or session.config.target
    client = session.client_for(target)
    schema = session.schemas.get(client, call.endpoint)
    if schema is None or not schema.input.get("properties"):
        near = session.schemas.near(client, call.endpoint) if schema is None else []
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        raise ValueError(
            f"{call.endpoint} publishes no input schema here, so there is no form to build;"
            f"{hint} (or write a %%fal cell)"
        )
    return Form(schema, options=options, magics=magics, namespace=namespace)
