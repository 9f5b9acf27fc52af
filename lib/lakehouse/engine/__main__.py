"""``python -m lakehouse.engine``: the engine gaps and their workarounds, as Markdown."""

from lakehouse.engine.compat import gaps_markdown

print(gaps_markdown(), end="")
