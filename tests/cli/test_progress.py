"""The progress bar: silent unless someone listens, drawn on a terminal, gone when done."""

import io

import numpy as np

import fastseg
from fastseg.progress import progress_bar, report


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_report_without_a_bar_is_a_no_op():
    report("lloyd", 1, 10)  # nothing listens: must not fail or print


def test_bar_draws_stages_on_a_terminal_and_clears_its_line():
    stream = FakeTerminal()
    X = np.random.default_rng(0).standard_normal((5000, 3))
    with progress_bar(stream=stream):
        fastseg.KMeans(3, random_state=0, max_iter=5).fit(X)
    text = stream.getvalue()
    assert "reading" in text and "lloyd" in text and "%" in text
    assert text.endswith("\r")  # the last line was wiped


def test_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    with progress_bar(stream=stream):
        fastseg.KMeans(2, random_state=0, max_iter=3).fit(np.arange(20.0).reshape(10, 2))
    assert stream.getvalue() == ""


def test_disabled_bar_prints_nothing(capsys):
    with progress_bar(enabled=False):
        report("lloyd", 1, 2)
    assert capsys.readouterr().err == ""
