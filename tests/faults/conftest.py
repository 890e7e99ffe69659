"""Prints the fault-injection counts at the end of the run, whatever pytest's capture options (-q, no -s)."""

from . import REPORT


def pytest_terminal_summary(terminalreporter) -> None:
    if REPORT:
        terminalreporter.section("fault injection")
        for line in REPORT:
            terminalreporter.write_line(line)
