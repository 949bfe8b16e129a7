"""The dashboard's figures and charts."""
