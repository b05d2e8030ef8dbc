"""The Streamlit app: `streamlit run app.py`. It only declares the pages; each lives in pages/.

The model is `model_params.pkl` beside this file, or the file named by the environment variable
DIGITS_MODEL (the tests point it at broken files).
"""

import streamlit as st


def navigation() -> dict[str, list]:
    """The app's pages by section, in the order the sidebar lists them."""
    return {
        "Read digits": [
            st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:", default=True),
        ],
        "Look inside": [
            st.Page("pages/inside.py", title="Inside the network", icon=":material/hub:"),
            st.Page("pages/weights.py", title="Weights", icon=":material/grid_on:"),
            st.Page("pages/model_evaluation.py", title="Evaluation", icon=":material/fact_check:"),
            st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
            st.Page("pages/history.py", title="Training history", icon=":material/show_chart:"),
        ],
        "Teach": [
            st.Page("pages/training.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/samples.py", title="Your samples", icon=":material/collections:"),
        ],
    }


def main() -> None:
    """Set up the page and run the one the user picked."""
    st.set_page_config(page_title="Digit recognizer", page_icon=":material/draw:")
    st.navigation(navigation()).run()


if __name__ == "__main__":
    main()
