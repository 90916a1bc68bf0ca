"""Sphinx directives that write the options reference from the argparse parsers.

The magics declare their options with IPython's `@magic_arguments()`, which
leaves an argparse parser on each method (`NbkerasMagics.fit.parser`); the
console commands build theirs with `build_parser()`. The reference pages are
made from those parsers at build time, so they say what `--help` says and
cannot drift from it. Nothing here imports Keras (`nbkeras.magics` does not).

    ```{nbkeras-magics}
    ```
    ```{nbkeras-commands}
    ```
"""

from __future__ import annotations

import argparse
import re

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

_CODE = re.compile(r"`([^`]+)`")


def magic_parsers():
    """[(title, anchor, parser)] for every magic that declares its options."""
    from nbkeras.magics import NbkerasMagics

    found = []
    for name in sorted(NbkerasMagics.magics["line"]):
        parser = getattr(getattr(NbkerasMagics, name, None), "parser", None)
        if parser is None:
            continue
        title = f"%%{name} / %{name}" if name in NbkerasMagics.magics["cell"] else f"%{name}"
        found.append((title, f"magic-{name}", parser))
    return found


def command_parsers():
    """[(title, anchor, parser)] for the `nbkeras` console commands."""
    from nbkeras.serve.command import build_parser as serve_parser
    from nbkeras.tune.worker import build_parser as worker_parser

    return [("nbkeras serve", "command-serve", serve_parser()),
            ("nbkeras tune-worker", "command-tune-worker", worker_parser())]


def documented_actions(parser):
    """The actions `--help` shows (hidden ones and -h left out)."""
    return [a for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def usage(parser) -> str:
    text = parser.format_usage()
    text = text[len("usage: "):] if text.startswith("usage: ") else text
    return text.replace("::\n", "", 1).strip("\n")


def _text(value: str):
    """Plain text with `code` spans as literals."""
    out, pos = [], 0
    for m in _CODE.finditer(value):
        if m.start() > pos:
            out.append(nodes.Text(value[pos:m.start()]))
        out.append(nodes.literal(m.group(1), m.group(1)))
        pos = m.end()
    if pos < len(value):
        out.append(nodes.Text(value[pos:]))
    return out


def _cell(*children):
    entry = nodes.entry()
    para = nodes.paragraph()
    para.extend(children)
    entry += para
    return entry


def _table(parser):
    formatter = parser._get_formatter()
    table = nodes.table(classes=["nbkeras-options"])
    group = nodes.tgroup(cols=4)
    table += group
    for width in (22, 16, 12, 50):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for label in ("option", "value", "default", "what it does"):
        row += _cell(nodes.Text(label))
    head += row
    group += head
    body = nodes.tbody()
    for action in documented_actions(parser):
        names = ", ".join(action.option_strings) or action.dest
        if action.nargs == 0:
            value = ""
        elif action.option_strings:
            value = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
        else:
            value = {"?": "optional", "*": "any number", "+": "one or more"}.get(action.nargs, "")
        default = "" if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0 \
            else repr(action.default) if isinstance(action.default, str) else str(action.default)
        help_text = formatter._expand_help(action) if action.help else ""
        if action.required and action.option_strings:
            help_text = (help_text + " Required.").strip()
        row = nodes.row()
        row += _cell(nodes.literal(names, names))
        row += _cell(nodes.literal(value, value) if value else nodes.Text(""))
        row += _cell(nodes.literal(default, default) if default else nodes.Text(""))
        row += _cell(*_text(help_text))
        body += row
    group += body
    return table


class _ParsersDirective(SphinxDirective):
    has_content = False
    source = staticmethod(magic_parsers)

    def run(self):
        out = []
        for title, anchor, parser in self.source():
            section = nodes.section(ids=[anchor], names=[anchor])
            section += nodes.title(title, "", nodes.literal(title, title))
            if parser.description:
                section += nodes.paragraph("", "", *_text(parser.description))
            text = usage(parser)
            section += nodes.literal_block(text, text, language="text")
            section += _table(parser)
            if parser.epilog:
                section += nodes.paragraph("", "", *_text(parser.epilog))
            self.state.document.note_explicit_target(section)
            out.append(section)
        return out


class MagicsDirective(_ParsersDirective):
    source = staticmethod(magic_parsers)


class CommandsDirective(_ParsersDirective):
    source = staticmethod(command_parsers)



def package_layout(root):
    """[(module path, first line of its docstring)] for nbkeras/, read with ast."""
    import ast
    import pathlib

    out = []
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        if "labextension" in path.parts:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = doc.strip().split("\n\n")[0].replace("\n", " ")
        out.append((path.relative_to(pathlib.Path(root).parent).as_posix(), first))
    return out


class LayoutDirective(SphinxDirective):
    """The package's modules, each with the first paragraph of its docstring."""

    def run(self):
        import pathlib

        root = pathlib.Path(self.env.srcdir) / "nbkeras"
        items = nodes.bullet_list()
        for module, first in package_layout(root):
            self.env.note_dependency(str(pathlib.Path(self.env.srcdir) / module))
            para = nodes.paragraph()
            para += nodes.literal(module, module)
            if first:
                para += nodes.Text(": ")
                para.extend(_text(first))
            item = nodes.list_item()
            item += para
            items += item
        return [items]


def setup(app):
    app.add_directive("nbkeras-magics", MagicsDirective)
    app.add_directive("nbkeras-commands", CommandsDirective)
    app.add_directive("nbkeras-layout", LayoutDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
