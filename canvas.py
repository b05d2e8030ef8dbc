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

# Clear gives a pad a new key, so Streamlit mounts a fresh, empty component and drops the old
# one's state (drawing and undo history) instead of keeping it for the next rerun. Each pad's
# session-state keys start with its name, so several pads keep apart.
_GENERATION = "{name}_generation"
_PEN_WIDTH = "{name}_pen_width"
# Another page unmounts a pad and Streamlit forgets its strokes, so the page keeps its own copy
# of the drawing, (Fabric.js JSON, RGBA image), and gives a remounted pad the strokes back.
_SAVED = "{name}_saved"
# The strokes the pad on screen was mounted with: passed unchanged while it stays mounted, since a
# new initial drawing would make the component load it again and lose its undo history.
_MOUNTED_WITH = "{name}_mounted_with"


# The component's toolbar shows on hover only, so a phone never sees its undo and redo; its edit
# toggle turns the next stroke into a selection box, and its send and reset buttons repeat what
# the page does anyway. This hides it inside the component's shadow root and makes each pad's
# own Undo and Redo buttons press the hidden ones of that pad, so the component keeps its own
# history. A pad wider than the screen is shown scaled down to fit (Fabric.js maps the pointer
# through the scale), so a wide pad stays usable on a phone.
_PAD_SCRIPT = """<script>
(() => {
  // Every pad's buttons, by key: [the toolbar button's label, the key of the pad's container].
  window.digitsPadButtons = Object.assign(window.digitsPadButtons || {}, BUTTONS);
  if (window.digitsPadWired) return;
  window.digitsPadWired = true;
  // The shadow roots of Streamlit's isolated components inside `host`, styled whether or not
  // the canvas has filled its own yet (it does so after it is attached, unseen by the observer).
  const roots = (host) => [...host.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
    .map((el) => el.shadowRoot).filter((root) => root);
  const hide = () => roots(document).forEach((root) => {
    if (root.querySelector("style[data-digits-pad]")) return;
    const style = document.createElement("style");
    style.dataset.digitsPad = "";
    style.textContent = `.dc-toolbar { display: none !important; }
      .dc-container {
        max-width: 100%; height: auto !important; aspect-ratio: var(--pad-ratio);
      }
      .dc-container canvas, .dc-container .canvas-container {
        width: 100% !important; height: 100% !important;
      }`;
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
    for (const [key, [label, pad]] of Object.entries(window.digitsPadButtons)) {
      if (!event.target.closest(`.st-key-${key} button`)) continue;
      event.stopPropagation();
      event.preventDefault();
      const host = document.querySelector(`.st-key-${pad}`);
      if (!host) continue;
      roots(host).forEach((root) => root.querySelector(`button[aria-label="${label}"]`)?.click());
    }
  }, true);
})();
</script>"""
# The toolbar buttons each pad has its own copy of, by label.
_TOOLBAR_LABELS = ("Undo", "Redo")


def _state_key(template: str, name: str) -> str:
    return template.format(name=name)


def pen_width_key(name: str) -> str:
    """The session-state key of pad `name`'s pen width (a widget's, which pages must keep)."""
    return _state_key(_PEN_WIDTH, name)


PEN_WIDTH_KEY = pen_width_key("canvas")


def _clear(name: str) -> None:
    """Forget a pad's drawing by moving its canvas to a new key."""
    generation = _state_key(_GENERATION, name)
    st.session_state[generation] = st.session_state.get(generation, 0) + 1
    st.session_state.pop(_state_key(_SAVED, name), None)


def canvas_key(name: str = "canvas") -> str:
    """The session-state key of the pad `name`'s canvas component currently on screen."""
    return f"{name}-{st.session_state.get(_state_key(_GENERATION, name), 0)}"


def drawing_pad(
    name: str = "canvas",
    width: int = CANVAS_SIDE,
    height: int = CANVAS_SIDE,
    pen_width: int = DEFAULT_PEN_WIDTH,
) -> np.ndarray | None:
    """Show a pad and its controls; returns the drawing as RGBA (H, W, 4) uint8, or None.

    None means nothing is drawn: before the first stroke, after Clear, or after undoing every
    stroke. The canvas sends its picture after every stroke (on mouse-up), rerunning the page.
    `name` keeps several pads on one page apart; `width` and `height` are in canvas pixels,
    `pen_width` the pen's until the user moves the slider.
    """
    # Imported here, not at the top: the component registers itself with the Streamlit runtime
    # as it loads, which fails outside `streamlit run`, and the constants above are wanted there.
    from streamlit_drawable_canvas import st_canvas

    # The controls sit above the pad, so that on a phone, where columns stack, the reading
    # follows the canvas directly instead of after them. The pen width lives in session state
    # (not value=), which app.py keeps across pages.
    pen_key = pen_width_key(name)
    st.session_state.setdefault(pen_key, pen_width)
    with st.container(horizontal=True, vertical_alignment="bottom", width=min(width, CANVAS_SIDE)):
        st.slider(
            "Pen width",
            min_value=PEN_WIDTH_RANGE[0],
            max_value=PEN_WIDTH_RANGE[1],
            step=2,
            key=pen_key,
            help="Thinner for a small digit, thicker for a large one.",
        )
    with st.container(horizontal=True, gap="small", width=min(width, CANVAS_SIDE)):
        # Pressed in the browser by _PAD_SCRIPT, which keeps the click from rerunning the page.
        for label in _TOOLBAR_LABELS:
            st.button(label, key=f"{name}-{label.lower()}", icon=f":material/{label.lower()}:")
        st.button("Clear", key=f"{name}-clear", on_click=_clear, args=(name,),
                  icon=":material/delete:")  # fmt: skip
    buttons = {f"{name}-{label.lower()}": [label, f"{name}-pad"] for label in _TOOLBAR_LABELS}
    st.html(_PAD_SCRIPT.replace("BUTTONS", json.dumps(buttons)), unsafe_allow_javascript=True)
    key = canvas_key(name)
    mounted_with = _state_key(_MOUNTED_WITH, name)
    if key not in st.session_state:  # a new pad: the first visit, or back from another page
        saved = st.session_state.get(_state_key(_SAVED, name))
        st.session_state[mounted_with] = saved[0] if saved else None
    with st.container(key=f"{name}-pad"):
        # The pad's shape, for the style that scales a pad wider than the screen.
        st.html(f"<style>.st-key-{name}-pad {{ --pad-ratio: {width} / {height}; }}</style>")
        result = st_canvas(
            stroke_width=st.session_state[pen_key],
            stroke_color=INK_COLOUR,
            background_color=BACKGROUND_COLOUR,
            width=width,
            height=height,
            drawing_mode="freedraw",
            update_streamlit=True,
            return_image_data=True,
            initial_drawing=st.session_state[mounted_with],
            key=key,
        )
    return _drawing(result, name)


def _drawing(result, name: str) -> np.ndarray | None:
    """The picture on the pad, kept for the next visit; None when the pad is empty."""
    saved_key = _state_key(_SAVED, name)
    objects = (result.json_data or {}).get("objects") or []
    if not objects:
        st.session_state.pop(saved_key, None)
        return None
    if result.image_data is None:
        # A pad given back its strokes sends no picture until the next one: use the kept copy.
        saved = st.session_state.get(saved_key)
        return None if saved is None else saved[1]
    st.session_state[saved_key] = (result.json_data, result.image_data)
    return result.image_data
