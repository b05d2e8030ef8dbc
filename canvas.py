"""The drawing pad: a square streamlit-drawable-canvas with a pen-width control and Clear.

Ink is white on an opaque black background, the way MNIST stores its digits, rather than the
component's default black ink on a transparent background. The preprocessing reads both
equally well (bench/bench_drawn.py, styles canvas and transparent), but a transparent canvas shows
whatever the page is behind it, so black ink disappears under Streamlit's dark theme, while
white on black looks the same in every theme and is exactly what the network was trained on.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from digits.data.pad import (
    BACKGROUND_COLOUR,
    CANVAS_SIDE,
    DEFAULT_PEN_WIDTH,
    INK_COLOUR,
    PEN_WIDTH_RANGE,
)

# Clear gives the canvas a new key, so Streamlit mounts a fresh, empty component and drops the
# old one's state (drawing and undo history) instead of keeping it for the next rerun.
_GENERATION = "canvas_generation"
_PEN_WIDTH = "canvas_pen_width"


def _clear() -> None:
    """Forget the drawing by moving the canvas to a new key."""
    st.session_state[_GENERATION] = st.session_state.get(_GENERATION, 0) + 1


def canvas_key() -> str:
    """The session-state key of the canvas component currently on screen."""
    return f"canvas-{st.session_state.get(_GENERATION, 0)}"


def drawing_pad() -> np.ndarray | None:
    """Show the canvas and its controls; returns the drawing as RGBA (H, W, 4) uint8, or None.

    None means nothing is drawn: before the first stroke, after Clear, or after undoing every
    stroke. The canvas sends its picture after every stroke (on mouse-up), rerunning the page.
    """
    # Imported here, not at the top: the component registers itself with the Streamlit runtime
    # as it loads, which fails outside `streamlit run`, and the constants above are wanted there.
    from streamlit_drawable_canvas import st_canvas

    # The controls sit above the pad, so that on a phone, where columns stack, the prediction
    # follows the canvas directly instead of after them.
    with st.container(horizontal=True, vertical_alignment="bottom", width=CANVAS_SIDE):
        st.slider(
            "Pen width",
            min_value=PEN_WIDTH_RANGE[0],
            max_value=PEN_WIDTH_RANGE[1],
            value=DEFAULT_PEN_WIDTH,
            step=2,
            key=_PEN_WIDTH,
            help="Thinner for a small digit, thicker for a large one.",
        )
        st.button("Clear", on_click=_clear, icon=":material/delete:")
    # The component's toolbar (send, undo, redo, edit, reset) pops up 2.65rem above the canvas
    # on hover; this spacer and the gaps around it (2.75rem) keep it off the controls.
    st.space("small")
    result = st_canvas(
        stroke_width=st.session_state[_PEN_WIDTH],
        stroke_color=INK_COLOUR,
        background_color=BACKGROUND_COLOUR,
        width=CANVAS_SIDE,
        height=CANVAS_SIDE,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=canvas_key(),
    )

    objects = (result.json_data or {}).get("objects") or []
    if not objects:
        return None
    return result.image_data
