"""What the app needs beyond the network, free of Streamlit: readings, insights, runs, samples."""
