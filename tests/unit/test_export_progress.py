"""The progress line of `chatapp export` and `import`: shown on a terminal only."""

from __future__ import annotations

import io

from chatapp.bootstrap.archive import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_rewritten_line_counting_each_kind() -> None:
    """On a terminal the line is rewritten in place and ends with the totals by kind."""
    stream = Terminal()
    progress = Progress("exported", stream)
    progress.tick("user")
    progress.tick("message", 1500)
    progress.done()
    assert stream.getvalue().startswith("\r")
    assert stream.getvalue().endswith("\rexported: 1 user, 1,500 message\n")
    assert progress.summary() == "exported: 1 user, 1,500 message"


def test_a_pipe_or_a_file_gets_nothing() -> None:
    """Redirected, stderr stays empty: the counts are only in the summary."""
    stream = io.StringIO()
    progress = Progress("imported", stream)
    progress.tick("inbox", 3)
    progress.done()
    assert stream.getvalue() == ""
    assert progress.summary() == "imported: 3 inbox"
