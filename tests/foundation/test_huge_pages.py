"""Huge pages for memory that numpy does not allocate (`recsys.huge_pages`): found, advised, never failing."""

from __future__ import annotations

import ctypes
import mmap
import sys
import time
from pathlib import Path

import pytest

from recsys import huge_pages
from recsys.huge_pages import HUGE_PAGE, anonymous_mappings, huge_page_span, huge_pages_for_new_memory

MAPS = """\
55d0c8a00000-55d0c8a2c000 r--p 00000000 08:01 1835021                    /usr/bin/python3.11
7f1c3a000000-7f1c3e000000 rw-p 00000000 00:00 0
7f1c3e000000-7f1c3e021000 rw-p 00000000 00:00 0                          [heap]
7f1c40000000-7f1c40400000 r--p 00000000 00:00 0
7f1c50000000-7f1c54000000 rw-s 00000000 00:01 1034                       /dev/zero (deleted)
"""


def test_only_private_writable_unnamed_mappings_are_anonymous():
    assert anonymous_mappings(MAPS) == {(0x7F1C3A000000, 0x7F1C3E000000)}


def test_the_span_is_the_whole_huge_pages_inside():
    assert huge_page_span(HUGE_PAGE + 1, 4 * HUGE_PAGE + 5) == (2 * HUGE_PAGE, 4 * HUGE_PAGE)
    assert huge_page_span(HUGE_PAGE + 1, 2 * HUGE_PAGE + 5) is None


def _thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text[text.index("[") + 1 : text.index("]")]


def _eligible(address: int) -> str | None:
    """The THPeligible line of the mapping that holds `address`."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("THPeligible:"):
            return line.split()[1]
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="transparent huge pages are Linux's")
def test_a_large_mapping_made_inside_the_block_becomes_eligible_for_huge_pages():
    if _thp_mode() != "madvise":
        pytest.skip("this kernel's transparent huge pages are not in madvise mode")
    size = 16 << 20
    with huge_pages_for_new_memory():
        inside = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        inside.write(b"x" * size)
    outside = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    outside.write(b"x" * size)
    try:
        assert _eligible(_address(inside) + 2 * HUGE_PAGE) == "1"
        assert _eligible(_address(outside) + 2 * HUGE_PAGE) == "0"
    finally:
        inside.close()
        outside.close()


def _address(buffer: mmap.mmap) -> int:
    view = ctypes.c_char.from_buffer(buffer)
    try:
        return ctypes.addressof(view)
    finally:
        del view


def test_without_proc_maps_the_block_runs_and_nothing_fails(monkeypatch):
    monkeypatch.setattr(huge_pages, "MAPS", "/nonexistent/maps")
    ran = []
    with huge_pages_for_new_memory():
        ran.append(bytearray(8 << 20))
    assert len(ran[0]) == 8 << 20


@pytest.mark.skipif(sys.platform != "linux", reason="transparent huge pages are Linux's")
def test_a_fork_waits_for_the_collapses_under_way(monkeypatch):
    # a collapse after a fork would copy pages the children still share: the parent finishes them first
    started, done = [], []

    def slow_collapse(madvise, spans):
        started.append(spans)
        time.sleep(0.2)
        done.append(spans)

    monkeypatch.setattr(huge_pages, "_collapse", slow_collapse)
    memory = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        start = _address(memory)
        span = huge_page_span(start, start + (8 << 20))
        assert huge_pages._advise([span]) == 1
        huge_pages.finish_collapsing()  # what os.register_at_fork runs before a fork
        assert done == started == [[span]]
        assert not huge_pages._collapsing
    finally:
        memory.close()
