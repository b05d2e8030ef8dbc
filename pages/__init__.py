"""The app's pages; what they share lives in pages/shared.py."""
