"""bench/_plot.py: the ``--plot`` charts of the bench scripts' ratio tables."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench._plot import LABEL, write_ratio_chart

SVG = "{http://www.w3.org/2000/svg}"
ratios = st.floats(0.01, 20, allow_nan=False)
labels = st.text(min_size=1, max_size=12)


@given(
    st.lists(
        st.tuples(labels, st.lists(st.tuples(st.sampled_from(["a<b", "c&d", "e"]), ratios),
                                   min_size=1, max_size=3, unique_by=lambda b: b[0])),
        min_size=1, max_size=6,
    )
)  # fmt: skip
def test_one_bar_per_ratio_scaled_against_the_baseline_line(
    tmp_path_factory: pytest.TempPathFactory, groups: list[tuple[str, list[tuple[str, float]]]]
) -> None:
    path = tmp_path_factory.mktemp("plot") / "chart.svg"
    write_ratio_chart(path, title="t <&>", baseline="plain", groups=groups, note="n")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file; well-formed: labels escaped
    assert root.find(f"{SVG}title").text == "t <&>"  # type: ignore[union-attr]
    bars = root.findall(f"{SVG}rect")
    flat = [r for _, bs in groups for _, r in bs]
    assert len(bars) == len(flat)
    one = float(root.find(f"{SVG}path").get("d").split()[0][1:])  # type: ignore[union-attr]
    for bar, ratio in zip(bars, flat, strict=True):
        width = float(bar.get("width", "0"))
        # bars share one scale, on which a ratio of 1 ends on the dashed line (both rounded to .1)
        assert width == 1 or abs(width - (one - LABEL) * ratio) <= 0.05 + 0.05 * ratio
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert all(f"{r:.2f}" in desc for r in flat)  # the text alternative carries every number
