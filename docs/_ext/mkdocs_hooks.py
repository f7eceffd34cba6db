"""MkDocs hooks: links from the guides to repository files outside docs/.

docs/plugins.md and docs/nir.md are read on GitHub too, where a link such as
``../plugins/snnkit-triangle`` opens that folder. The built site holds only docs/, so for the
site such a link becomes the path in code (``plugins/snnkit-triangle``) — but only when the
target exists in the repository: a link to a missing file is left alone and fails
``mkdocs build --strict`` as a broken link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<href>\.\./[^)#\s]+)\)")


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """Replace links that leave docs/ for an existing repository file by its path in code."""
    docs = Path(config["docs_dir"]).resolve()
    repo = docs.parent
    here = (docs / page.file.src_path).parent

    def replace(match: re.Match[str]) -> str:
        target = (here / match["href"]).resolve()
        if target.is_relative_to(docs) or not target.is_relative_to(repo) or not target.exists():
            return match.group(0)
        text = match["text"]
        rel = target.relative_to(repo).as_posix()
        return text if text.strip("`") == rel else f"{text} (`{rel}`)"

    return LINK.sub(replace, markdown)
