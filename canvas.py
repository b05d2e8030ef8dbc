"""The drawing pad: a square streamlit-drawable-canvas with a pen-width control, Undo, Redo and
Clear.

Ink is white on an opaque black background, the way MNIST stores its digits, rather than the
component's default black ink on a transparent background. The preprocessing reads both
equally well (bench/bench_drawn.py, styles canvas and transparent), but a transparent canvas shows
whatever the page is behind it, so black ink disappears under Streamlit's dark theme, while
white on black looks the same in every theme and is exactly what the network was trained on.
"""

from __future__ import annotations

import json

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
PEN_WIDTH_KEY = "canvas_pen_width"
# Another page unmounts the pad and Streamlit forgets its strokes, so the page keeps its own copy
# of the drawing, (Fabric.js JSON, RGBA image), and gives a remounted pad the strokes back.
_SAVED = "canvas_saved"
# The strokes the pad on screen was mounted with: passed unchanged while it stays mounted, since a
# new initial drawing would make the component load it again and lose its undo history.
_MOUNTED_WITH = "canvas_mounted_with"


# The component's toolbar shows on hover only, so a phone never sees its undo and redo; its edit
# toggle turns the next stroke into a selection box, and its send and reset buttons repeat what
# the page does anyway. This hides it inside the component's shadow root and makes the page's own
# Undo and Redo buttons press its hidden ones, so the component keeps its own history.
_PAD_SCRIPT = """<script>
(() => {
  if (window.digitsPadWired) return;
  window.digitsPadWired = true;
  // The shadow roots of Streamlit's isolated components, styled whether or not the canvas has
  // filled its own yet (it does so after it is attached, unseen by the observer below).
  const roots = () => [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
    .map((el) => el.shadowRoot).filter((root) => root);
  const hide = () => roots().forEach((root) => {
    if (root.querySelector("style[data-digits-pad]")) return;
    const style = document.createElement("style");
    style.dataset.digitsPad = "";
    style.textContent = ".dc-toolbar { display: none !important; }";
    root.appendChild(style);
  });
  new MutationObserver(hide).observe(document.body, { childList: true, subtree: true });
  // A host can be added before it attaches its shadow root, and attaching one changes nothing
  // the observer sees: style each new root as soon as it is attached, too.
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    queueMicrotask(hide);
    return root;
  };
  hide();
  document.addEventListener("click", (event) => {
    for (const [key, label] of KEYS) {
      if (!event.target.closest(`.st-key-${key} button`)) continue;
      event.stopPropagation();
      event.preventDefault();
      roots().forEach((root) => root.querySelector(`button[aria-label="${label}"]`)?.click());
    }
  }, true);
})();
</script>"""
# The page's own buttons that press the toolbar's, by the label they share, with their keys.
_TOOLBAR_BUTTONS = {"Undo": "pad-undo", "Redo": "pad-redo"}


def _clear() -> None:
    """Forget the drawing by moving the canvas to a new key."""
    st.session_state[_GENERATION] = st.session_state.get(_GENERATION, 0) + 1
    st.session_state.pop(_SAVED, None)


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
    # follows the canvas directly instead of after them. The pen width lives in session state
    # (not value=), which app.py keeps across pages.
    st.session_state.setdefault(PEN_WIDTH_KEY, DEFAULT_PEN_WIDTH)
    with st.container(horizontal=True, vertical_alignment="bottom", width=CANVAS_SIDE):
        st.slider(
            "Pen width",
            min_value=PEN_WIDTH_RANGE[0],
            max_value=PEN_WIDTH_RANGE[1],
            step=2,
            key=PEN_WIDTH_KEY,
            help="Thinner for a small digit, thicker for a large one.",
        )
    with st.container(horizontal=True, gap="small", width=CANVAS_SIDE):
        # Pressed in the browser by _PAD_SCRIPT, which keeps the click from rerunning the page.
        for label, key in _TOOLBAR_BUTTONS.items():
            st.button(label, key=key, icon=f":material/{label.lower()}:")
        st.button("Clear", on_click=_clear, icon=":material/delete:")
    keys = json.dumps([[key, label] for label, key in _TOOLBAR_BUTTONS.items()])
    st.html(_PAD_SCRIPT.replace("KEYS", keys), unsafe_allow_javascript=True)
    key = canvas_key()
    if key not in st.session_state:  # a new pad: the first visit, or back from another page
        saved = st.session_state.get(_SAVED)
        st.session_state[_MOUNTED_WITH] = saved[0] if saved else None
    result = st_canvas(
        stroke_width=st.session_state[PEN_WIDTH_KEY],
        stroke_color=INK_COLOUR,
        background_color=BACKGROUND_COLOUR,
        width=CANVAS_SIDE,
        height=CANVAS_SIDE,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        initial_drawing=st.session_state[_MOUNTED_WITH],
        key=key,
    )
    return _drawing(result)


def _drawing(result) -> np.ndarray | None:
    """The picture on the pad, kept for the next visit; None when the pad is empty."""
    objects = (result.json_data or {}).get("objects") or []
    if not objects:
        st.session_state.pop(_SAVED, None)
        return None
    if result.image_data is None:
        # A pad given back its strokes sends no picture until the next one: use the kept copy.
        saved = st.session_state.get(_SAVED)
        return None if saved is None else saved[1]
    st.session_state[_SAVED] = (result.json_data, result.image_data)
    return result.image_data
