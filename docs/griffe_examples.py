"""A griffe extension for the API reference: tf_mtl's docstrings title their doctest
blocks ``Example:`` (Google style reads that as an admonition of Markdown text, where
``>>>`` lines become block quotes and ``x["a"]`` a reference link); this reads them as
``Examples:`` sections, so the ``>>>`` lines render as Python code."""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Renames ``Example:`` section titles to ``Examples:`` before the docstring is parsed."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
