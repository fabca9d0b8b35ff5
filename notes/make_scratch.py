"""Build notes/pstar-test-scratch.md: Chapter 3's install cell, then the sections of notes/03a-pstar-test.md."""
from pathlib import Path

here = Path(__file__).parent
head = (here.parent / "book" / "03_ilc.md").read_text()
head = head[: head.index("# Iterative latent clustering")]
body = (here / "03a-pstar-test.md").read_text()
body = body[body.index("-->") + 3 :]
(here / "pstar-test-scratch.md").write_text(head + "# Scratch: the P* model's out-of-sample test\n" + body)
