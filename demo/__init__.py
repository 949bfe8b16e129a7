"""Example app: the questions, answers and comments of a small Q&A site."""
