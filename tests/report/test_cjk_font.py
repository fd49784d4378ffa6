"""Chinese class names in report figures are drawn with the CJK font (fonts-wqy-zenhei), no missing glyphs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from polymodal.report.figures import CJK_FONTS, confusion_figure, use_cjk_font


@pytest.mark.skipif(not any(p.is_file() for _, p in CJK_FONTS), reason="fonts-wqy-zenhei is not installed (.ci/run installs it)")
def test_chinese_labels_render_without_missing_glyphs() -> None:
    assert use_cjk_font() == "WenQuanYi Zen Hei"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for each one
        png = confusion_figure(np.eye(3, dtype=int), ["短靴", "外套", "红色圆形"], title="混淆矩阵")
    assert png[:4] == b"\x89PNG"
