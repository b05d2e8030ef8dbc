"""The drawing pad's geometry and ink: what the app's canvas draws and the drawn digits imitate."""

# 280 px fits a 390 px phone screen beside Streamlit's margins, with no horizontal scrolling,
# and is 10x the network's 28 px input.
CANVAS_SIDE = 280
# A digit drawn to fill most of the pad is about 200 px tall. MNIST strokes are 2-3 px in its
# 20 px digit box, 10-15% of the height, so a 20 px pen gives the same proportions; the range
# covers digits drawn from half to full height.
DEFAULT_PEN_WIDTH = 20
PEN_WIDTH_RANGE = (8, 40)
INK_COLOUR = "#FFFFFF"
BACKGROUND_COLOUR = "#000000"

# The number pad: as wide as the page's column on a desktop, room for about ten digits of
# 70 px; a digit drawn on it is about 150 px tall, so a thinner pen keeps MNIST's proportions.
# On a narrower screen it is shown scaled down to fit (canvas.py).
NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT = 700, 200
NUMBER_PEN_WIDTH = 16
