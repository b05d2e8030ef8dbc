"""The Streamlit app: `streamlit run app.py`. It only declares the pages; each lives in pages/.

The model is `model_params.pkl` beside this file, or the file named by the environment variable
DIGITS_MODEL (the tests point it at broken files), unless the user chose one of their own runs
on the Train page.
"""

import streamlit as st

from digits.app.server_memory import return_large_blocks
from pages.shared import keep_widget_state

# (file, title, short title for the phone's page bar, icon) of each page, by sidebar section.
PAGES = {
    "Read digits": [
        ("pages/draw.py", "Draw a digit", "Draw", ":material/draw:"),
    ],
    "Look inside": [
        ("pages/inside.py", "Inside the network", "Inside", ":material/hub:"),
        ("pages/explain.py", "Why did it say that?", "Why?", ":material/help:"),
        ("pages/weights.py", "Weights", "Weights", ":material/grid_on:"),
        ("pages/model_evaluation.py", "Evaluation", "Evaluation", ":material/fact_check:"),
        ("pages/dataset.py", "Dataset", "Dataset", ":material/dataset:"),
        ("pages/history.py", "Training history", "History", ":material/show_chart:"),
    ],
    "Teach": [
        ("pages/training.py", "Train", "Train", ":material/model_training:"),
        ("pages/samples.py", "Your samples", "Samples", ":material/collections:"),
    ],
}
# Below this width Streamlit's sidebar covers the page and stays open after a link, so a phone
# gets a bar of page links at the top instead: changing page is then one tap.
PHONE_BAR_CSS = """<style>
@media (min-width: 640px) { .st-key-phone-pages { display: none; } }
.st-key-phone-pages a { padding: 0 0.25rem; }
</style>"""


def navigation() -> dict[str, list]:
    """The app's pages by section, in the order the sidebar lists them."""
    return {
        section: [
            st.Page(file, title=title, icon=icon, default=file == "pages/draw.py")
            for file, title, _, icon in pages
        ]
        for section, pages in PAGES.items()
    }


def phone_bar(pages: dict[str, list]) -> None:
    """Every page as a short link in one wrapping row, shown on narrow screens only."""
    short = {title: name for section in PAGES.values() for _, title, name, _ in section}
    st.html(PHONE_BAR_CSS)
    with st.container(horizontal=True, gap=None, key="phone-pages"):
        for section in pages.values():
            for page in section:
                st.page_link(page, label=short[page.title], icon=page.icon)


def main() -> None:
    """Set up the page and run the one the user picked."""
    return_large_blocks()  # for the server process; setting it again on every run costs nothing
    st.set_page_config(page_title="Digit recognizer", page_icon=":material/draw:")
    keep_widget_state()
    pages = navigation()
    current = st.navigation(pages)
    phone_bar(pages)
    current.run()


if __name__ == "__main__":
    main()
