"""The least a drawing app can do, as the baseline for bench/bench_app_latency.py.

The same canvas as the app (size, colours, image data on every stroke) and a Clear button, but
no model, preprocessing, chart or images: a metric labelled "Ink" shows the ink's sum.

    streamlit run bench/bare_canvas_app.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digits.data.pad import BACKGROUND_COLOUR, CANVAS_SIDE, DEFAULT_PEN_WIDTH, INK_COLOUR

INK_LABEL = "Ink"

generation = st.session_state.setdefault("generation", 0)
# Keyed as the app's pad and its Clear button are (canvas.py), so the browser helpers find them.
with st.container(key="canvas-pad"):
    result = st_canvas(
        stroke_width=DEFAULT_PEN_WIDTH,
        stroke_color=INK_COLOUR,
        background_color=BACKGROUND_COLOUR,
        width=CANVAS_SIDE,
        height=CANVAS_SIDE,
        return_image_data=True,
        key=f"canvas-{generation}",
    )
if st.button("Clear", key="canvas-clear"):
    st.session_state["generation"] += 1
    st.rerun()
if (result.json_data or {}).get("objects"):
    st.metric(INK_LABEL, int(result.image_data[..., 0].sum()))
